"""A throwaway Knot DNS server on loopback, for tests, benchmarks and demos.

Everything Knot writes (config, zone files, journal/timer databases, control
socket, log) lives under one work directory, so labs never touch the
machine's own Knot setup and several labs can run side by side.

Only dnspython is used to talk to the server, always with an explicit
address and port: the system resolver and /etc/resolv.conf play no part.
"""

import base64
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import time

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone

# STOP_TIMEOUT is imported from here by __main__ (waiting for a detached knotd).
from ._service import STOP_TIMEOUT, LoopbackEndpoint, ProcessServer  # noqa: F401  pylint: disable=unused-import

KEY_ALGORITHM = 'hmac-sha256'
KEY_NAME = 'mailsec-lab'
START_TIMEOUT = 10.0
# Keys made at once when a signed zone loads (automatic key management), one
# combined key per zone (the KSK is also the ZSK: one trust anchor, no
# rollover to wait for), ECDSA P-256 because it signs fast.
SIGNING_POLICY_ID = 'mailsec_lab'
SIGNING_POLICY = [
    'policy:',
    f'  - id: {SIGNING_POLICY_ID}',
    '    algorithm: ecdsap256sha256',
    '    single-type-signing: on',
    '    nsec3: off',
    '    dnskey-ttl: 300',
    '',
]


class LabError(RuntimeError):
    """The lab server could not be started, reached or updated."""


def free_port(address='127.0.0.1'):
    """Return a port that is free for both TCP and UDP on ``address``.

    The kernel picks a free TCP port; UDP is checked separately because
    the two port spaces are independent.  There is an unavoidable window
    between closing these sockets and Knot binding the port, which
    ``KnotLab.start`` covers by retrying with another port.
    """
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    for _attempt in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise LabError(f'no free TCP+UDP port found on {address}')


def _check_loopback(address):
    # The lab must never be reachable from outside this machine.
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f'lab address must be loopback, got {address!r}')


def zone_file_text(zone):
    """Minimal zone contents: SOA, NS with in-zone glue, and an MX."""
    origin = zone.rstrip('.') + '.'
    return (
        f'$ORIGIN {origin}\n'
        '$TTL 300\n'
        f'@    IN SOA ns1.{origin} hostmaster.{origin} 1 3600 900 604800 300\n'
        f'@    IN NS  ns1.{origin}\n'
        f'@    IN MX  10 mx1.{origin}\n'
        'ns1  IN A   127.0.0.1\n'
    )


class KnotLab(LoopbackEndpoint, ProcessServer):
    """One ``knotd`` process serving ``zones`` on ``address@port``.

    Dynamic updates and zone transfers are allowed only with a per-lab
    random TSIG key (``key_name``/``key_secret``/``key_algorithm``).

    ``signed_zones`` (a subset of ``zones``) are DNSSEC-signed by Knot
    itself: one ECDSA P-256 key per zone, made when the zone loads, and
    every dynamic update re-signed at once.  ``ksk(zone)`` is the key a
    validating resolver takes as its trust anchor.
    """

    _error = LabError
    _start_timeout = START_TIMEOUT
    _no_log = '(no knot log)'

    def __init__(self, workdir, zones, port=None, address='127.0.0.1', signed_zones=()):
        _check_loopback(address)
        super().__init__()
        if not zones:
            raise ValueError('a lab needs at least one zone')
        self.workdir = os.path.abspath(workdir)
        self._zones = [z.rstrip('.').lower() for z in zones]
        if len(set(self._zones)) != len(self._zones):
            raise ValueError('duplicate zones')
        self._signed_zones = [z.rstrip('.').lower() for z in signed_zones]
        unknown = sorted(set(self._signed_zones) - set(self._zones))
        if unknown:
            raise ValueError(f'signed_zones must be among zones; not a zone: {unknown}')
        self._address = address
        self._port = port
        # 32 random bytes, the size of an HMAC-SHA256 output (RFC 8945 4.5.2).
        self._key_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self._log = None

    # -- facts (address and port: LoopbackEndpoint) -------------------------

    @property
    def key_name(self):
        return KEY_NAME

    @property
    def key_secret(self):
        return self._key_secret

    @property
    def key_algorithm(self):
        return KEY_ALGORITHM

    @property
    def zones(self):
        return list(self._zones)

    @property
    def signed_zones(self):
        return list(self._signed_zones)

    @property
    def keyring(self):
        """A dnspython keyring holding the lab key."""
        return dns.tsigkeyring.from_text({KEY_NAME: (KEY_ALGORITHM, self._key_secret)})

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    @property
    def conf_path(self):
        return os.path.join(self.workdir, 'knot.conf')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'knot.log')

    def facts(self):
        """The facts a client needs, as plain strings (for lab.env/lab.json)."""
        return {
            'LAB_DNS_SERVER': self._address,
            'LAB_DNS_PORT': str(self._port),
            'LAB_TSIG_NAME': KEY_NAME,
            'LAB_TSIG_SECRET': self._key_secret,
            'LAB_TSIG_ALGORITHM': KEY_ALGORITHM,
            'LAB_ZONES': ' '.join(self._zones),
        }

    # -- configuration -----------------------------------------------------

    def config_text(self, user=None):
        """knot.conf for this lab.

        Speed over durability: this is throwaway data, so the journal is not
        fsync'ed and zone files are never rewritten (``zonefile-sync: -1``);
        updates live in the journal (``journal-content: changes``).  All
        zones share one template, so the file stays small with 200 zones.
        """
        w = self.workdir
        lines = [
            'server:',
            f'    rundir: "{w}/run"',
            f'    listen: {self._address}@{self._port}',
        ]
        if user:
            lines.append(f'    user: {user}')
        lines += [
            '',
            'log:',
            '  - target: stderr',
            '    any: info',
            '',
            'database:',
            f'    storage: "{w}/db"',
            '    journal-db-mode: asynchronous',
            # LMDB maps its whole maximum size; keep it modest so many labs
            # (and 32-bit address spaces) are no problem.
            '    journal-db-max-size: 256M',
            '    kasp-db-max-size: 16M',
            '    timer-db-max-size: 16M',
            '    catalog-db-max-size: 16M',
            '',
            'key:',
            f'  - id: {KEY_NAME}',
            f'    algorithm: {KEY_ALGORITHM}',
            f'    secret: {self._key_secret}',
            '',
            'acl:',
            '  - id: lab_key',
            f'    key: {KEY_NAME}',
            '    action: [update, transfer]',
            '',
            'template:',
            '  - id: default',
            f'    storage: "{w}/zones"',
            '    file: "%s.zone"',
            '    zonefile-sync: -1',
            '    zonefile-load: whole',
            '    journal-content: changes',
            '    acl: lab_key',
            '',
        ]
        if self._signed_zones:
            lines += SIGNING_POLICY
        lines.append('zone:')
        for zone in self._zones:
            lines.append(f'  - domain: {zone}.')
            if zone in self._signed_zones:
                lines += ['    dnssec-signing: on', f'    dnssec-policy: {SIGNING_POLICY_ID}']
        return '\n'.join(lines) + '\n'

    def _write_files(self):
        # Start from scratch: a journal left by an earlier lab in the same
        # directory would be replayed on top of the fresh zone files.
        for sub in ('run', 'db', 'zones'):
            shutil.rmtree(os.path.join(self.workdir, sub), ignore_errors=True)
            os.makedirs(os.path.join(self.workdir, sub), exist_ok=True)
        for zone in self._zones:
            path = os.path.join(self.workdir, 'zones', f'{zone}.zone')
            with open(path, 'w', encoding='ascii') as f:
                f.write(zone_file_text(zone))
        # Knot refuses to start as root unless told which user to run as.
        user = 'root:root' if os.geteuid() == 0 else None
        with open(self.conf_path, 'w', encoding='ascii') as f:
            f.write(self.config_text(user))
        # The secret is in the config: keep it to ourselves.
        os.chmod(self.conf_path, 0o600)

    # -- lifecycle ---------------------------------------------------------

    def start(self, detach=False):
        """Start knotd and return once every zone answers its SOA.

        ``detach=True`` puts knotd in its own session so it outlives this
        Python process (used by ``python -m tests.lab up``).
        """
        if self._proc is not None:
            raise LabError('lab already started')
        knotd = shutil.which('knotd') or '/usr/sbin/knotd'
        if not os.path.exists(knotd):
            raise LabError('knotd not found (apt-get install knot)')
        os.makedirs(self.workdir, exist_ok=True)
        # A port we picked can be taken by someone else before knotd binds
        # it; then pick another.  A port the caller chose is not retried.
        attempts = 3 if self._port is None else 1
        for attempt in range(attempts):
            if attempts > 1:
                self._port = free_port(self._address)
            try:
                self._launch(knotd, detach)
                return self
            except LabError:
                if attempt + 1 == attempts or 'address already in use' not in self.log_tail():
                    raise
        raise AssertionError('unreachable')

    def _launch(self, knotd, detach):
        self._write_files()
        began = time.monotonic()
        self._log = open(self.log_path, 'wb')
        self._spawn([knotd, '-c', self.conf_path], detach=detach,
                    stdout=self._log, stderr=subprocess.STDOUT)
        self._await_ready(began)

    def _wait_ready(self, deadline):
        # Zones load in background workers; until then Knot answers SERVFAIL
        # (or nothing while it binds).
        self._wait_for(
            deadline, self._zones, self._soa_ok, 0.01,
            exited=lambda code: f'knotd exited with {code}\n{self.log_tail()}',
            late=lambda pending: (f'knotd not ready, zones still loading: {pending[:5]}...\n'
                                  f'{self.log_tail()}'))

    def _soa_ok(self, zone):
        # Signed with the lab key, so that only *our* knotd can pass: an
        # other server that grabbed the port answers BADKEY or BADSIG.
        # TCP, because a refused connection fails at once while a UDP query
        # to a port nobody listens on yet just times out.
        # A zone to be signed is ready once its SOA comes with an RRSIG.
        signed = zone in self._signed_zones
        q = dns.message.make_query(zone + '.', 'SOA', want_dnssec=signed)
        q.use_tsig(self.keyring, algorithm=dns.tsig.HMAC_SHA256)
        try:
            r = dns.query.tcp(q, self._address, port=self._port, timeout=1)
        except (OSError, EOFError, dns.exception.DNSException):
            return False
        types = {rr.rdtype for rr in r.answer}
        return r.rcode() == dns.rcode.NOERROR and dns.rdatatype.SOA in types and (
            not signed or dns.rdatatype.RRSIG in types)

    def stop(self):
        """Terminate knotd and wait for it to exit (killing it if it hangs)."""
        self._stop_process()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- talking to the server ---------------------------------------------

    def add_records(self, zone, lines):
        """Add records (presentation lines with owner, TTL, class, type, data)
        to ``zone`` in one TSIG-signed UPDATE; raise LabError unless NOERROR.
        """
        return self._update(zone, lines, dns.update.UpdateMessage.add)

    def remove_records(self, zone, lines):
        """Delete the records given as presentation lines (as for
        ``add_records``; the TTL is ignored) from ``zone`` in one UPDATE."""
        return self._update(zone, lines, dns.update.UpdateMessage.delete)

    def _update(self, zone, lines, operation):
        if isinstance(lines, str):
            lines = [lines]
        origin = dns.name.from_text(zone)
        update = dns.update.UpdateMessage(origin, keyring=self.keyring,
                                          keyalgorithm=dns.tsig.HMAC_SHA256)
        for line in lines:
            rrset = _rrset_from_line(line, origin)
            operation(update, rrset.name, rrset)
        response = dns.query.tcp(update, self._address, port=self._port, timeout=5)
        if response.rcode() != dns.rcode.NOERROR:
            raise LabError(f'update of {zone} refused: {dns.rcode.to_text(response.rcode())}')
        return response

    def query(self, name, rdtype):
        """Rdata texts of the answer for ``name``/``rdtype``, sorted.

        Asked over TCP (TXT sets can be large), straight at Knot.  An empty
        list means NXDOMAIN or no data; any other rcode raises LabError.
        """
        q = dns.message.make_query(name, rdtype)
        r = dns.query.tcp(q, self._address, port=self._port, timeout=5)
        if r.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise LabError(f'query {name} {rdtype}: {dns.rcode.to_text(r.rcode())}')
        wanted = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
        qname = dns.name.from_text(name)
        return sorted(rd.to_text() for rrset in r.answer
                      if rrset.name == qname and rrset.rdtype == wanted
                      for rd in rrset)

    def ksk(self, zone):
        """The signed ``zone``'s key-signing key (flags 257) as a DNSKEY
        rdata, read from Knot: what a resolver's trust anchor holds."""
        zone = zone.rstrip('.').lower()
        if zone not in self._signed_zones:
            raise LabError(f'{zone} is not a signed zone of this lab')
        keys = [rd for rd in (dns.rdata.from_text('IN', 'DNSKEY', text)
                              for text in self.query(zone + '.', 'DNSKEY'))
                if rd.flags & dns.rdtypes.ANY.DNSKEY.SEP]
        if len(keys) != 1:
            raise LabError(f'{zone}: expected one key-signing key, Knot has {len(keys)}')
        return keys[0]

    def axfr(self, zone):
        """Whole zone as a ``dns.zone.Zone`` via TSIG-signed AXFR."""
        xfr = dns.query.xfr(self._address, zone, port=self._port, keyring=self.keyring,
                            keyalgorithm=dns.tsig.HMAC_SHA256, timeout=5)
        return dns.zone.from_xfr(xfr)


def _rrset_from_line(line, origin):
    """'owner ttl [IN] type rdata' -> rrset (names relative to ``origin``)."""
    try:
        owner, ttl, rest = line.split(None, 2)
        first, tail = rest.split(None, 1)
        if first.upper() == 'IN':
            rest = tail
        rdtype, rdata = rest.split(None, 1)
        ttl = int(ttl)
    except ValueError:
        raise ValueError(f'expected "owner ttl [IN] type data": {line!r}') from None
    return dns.rrset.from_text_list(dns.name.from_text(owner, origin), ttl,
                                    dns.rdataclass.IN, rdtype, [rdata],
                                    origin=origin, relativize=False)
