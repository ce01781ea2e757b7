"""Real deliveries for the Postfix role's tests: a sending Postfix, receiving
MX hosts, the MTA-STS resolver, and destination domains built from one
description (DNS records in the DNSSEC lab, policies on the policy web, MX
certificates, TLSA records).

Everything runs inside the private network namespace of ``tests/postfix``
(``scripts/lab-netns``), so fixed loopback ports are ours.

* ``SendingPostfix`` is a ``tests.lab.mail.MailLab`` (same queue layout,
  foreground ``master`` under the reaper, log file) configured to *send*:
  ``smtpd`` listeners for submission from 127.0.0.0/8, the ``smtp`` client,
  ``showq``/``flush`` for ``postqueue``.  Its TLS settings are left to the
  role; ``postfix -c DIR reload`` works on it (master writes its pid file).
* The receivers are a ``MailLab(accept=True)``: every MX takes the message
  and discards it, logging ``message-id=<...>``, so "the receiver got it"
  is a line in its log and "never sent, in clear or otherwise" is its
  absence.
* ``Destinations`` describes domains (MX kind and names, MTA-STS policy,
  TLSA) and puts them live.
* ``StsResolver`` runs ``mta-sts-daemon`` from the venv and with the
  configuration the role made, trusting the lab CA (``SSL_CERT_FILE``).

Outcomes are read from the sender's log (``outcome``): the queue id of a
Message-ID, each delivery attempt's ``status=`` and the TLS line logged for
the same relay by the same ``smtp`` process.
"""

import dataclasses
import hashlib
import json
import os
import re
import secrets
import smtplib
import socket
import subprocess
import time
from email.message import EmailMessage

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab._service import ProcessServer, terminate
from tests.lab.mail import MailLab
from tests.lab.pki import new_key

SUBMISSION = ('127.0.0.1', 2525)
SENDER_NAME = 'sender.lab.invalid'
RESOLVER = ('127.0.0.1', 8461)
# On SIGTERM mta-sts-daemon waits up to its shutdown_timeout for clients (Postfix
# keeps socketmap connections open); the tests give it this long, then kill it.
RESOLVER_STOP_SECONDS = 2
DNS_TTL = 30
# Main.cf settings the role manages, left out of the sender's own main.cf
# so that the role's run is what puts them there.
ROLE_MANAGED = ('smtpd_tls_security_level', 'smtpd_tls_cert_file', 'smtpd_tls_key_file',
                'smtpd_tls_chain_files', 'smtp_tls_security_level')


class SendingPostfix(MailLab):
    """A Postfix that takes mail on ``listeners`` and sends it with ``smtp``.

    ``listeners``: ``[(address, port, [master.cf -o options])]``.
    ``settings``: extra main.cf settings (e.g. cipher lists a control needs).
    """

    def __init__(self, workdir, listeners=((SUBMISSION[0], SUBMISSION[1], ()),),
                 myhostname=SENDER_NAME, settings=None):
        super().__init__(workdir, ca=None, myhostname=myhostname)
        self.extra_settings = dict(settings or {})
        self._options = {}
        for address, port, options in listeners:
            # Kind 'no_starttls' only tells MailLab to issue no certificate:
            # the listener's TLS is whatever main.cf (the role) says.
            self.add_mx(address, kind='no_starttls', port=port)
            self._options[(address, int(port))] = list(options)

    def main_settings(self):
        settings = super().main_settings()
        for name in ROLE_MANAGED:
            settings.pop(name)
        settings.update({
            'default_transport': 'smtp',
            'relay_transport': 'smtp',
            'smtpd_relay_restrictions': 'permit_mynetworks, reject',
            'smtpd_recipient_restrictions': 'permit_mynetworks, reject',
            'smtp_tls_loglevel': '1',
            'smtp_address_preference': 'ipv4',
            'smtp_connect_timeout': '5s',
            'smtp_tls_session_cache_database': '',
            # Deferred mail is retried within seconds (the resolver tests
            # redeliver after a policy change), never warned or bounced.
            'queue_run_delay': '2s',
            'minimal_backoff_time': '2s',
            'maximal_backoff_time': '4s',
            'delay_warning_time': '0',
        })
        settings.update(self.extra_settings)
        return settings

    def listener_lines(self, m):
        return ([f'{m.endpoint} inet n - n - - smtpd', f'  -o syslog_name=postfix/{m.endpoint}']
                + [f'  -o {option}' for option in self._options[(m.address, m.port)]])

    def services(self):
        return super().services() + [
            'smtp      unix - - n - - smtp',
            'showq     unix n - n - - showq',
            'flush     unix n - n 1000? 0 flush',
        ]

    # -- what the role gets --------------------------------------------------

    @property
    def check_command(self):
        return f'postfix -c {self.conf_dir} check'

    @property
    def reload_command(self):
        return f'postfix -c {self.conf_dir} reload'

    def postconf(self, *args):
        """``postconf -c DIR ARGS...``'s output (raises on failure)."""
        return subprocess.run(['postconf', '-c', self.conf_dir, *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    def config_files(self):
        """``{file name: bytes}`` of everything in the configuration directory."""
        files = {}
        for name in sorted(os.listdir(self.conf_dir)):
            with open(os.path.join(self.conf_dir, name), 'rb') as f:
                files[name] = f.read()
        return files

    # -- sending and watching ----------------------------------------------

    def submit(self, recipient, tag, address=SUBMISSION):
        """Submit one message to ``recipient``; return its Message-ID (without <>)."""
        message_id = f'{tag}.{secrets.token_hex(6)}@{SENDER_NAME}'
        msg = EmailMessage()
        msg['From'] = f'test@{SENDER_NAME}'
        msg['To'] = recipient
        msg['Subject'] = f'mailsec delivery test {tag}'
        msg['Message-ID'] = f'<{message_id}>'
        msg.set_content(f'Delivery case {tag}.\n')
        with smtplib.SMTP(address[0], address[1], local_hostname='client.lab.invalid',
                          timeout=10) as smtp:
            smtp.send_message(msg)
        return message_id

    def flush(self):
        subprocess.run(['postqueue', '-c', self.conf_dir, '-f'], capture_output=True, timeout=30,
                       check=False)

    def queued_ids(self):
        """Queue ids of the messages still in the queue (``postqueue -j``)."""
        out = subprocess.run(['postqueue', '-c', self.conf_dir, '-j'], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return {json.loads(line)['queue_id'] for line in out.splitlines() if line.strip()}

    def log_text(self):
        return read_text(self.log_path)


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return ''


# -- reading the sender's log (pure) ------------------------------------------

_CLEANUP = re.compile(r'postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=<([^>]+)>')
_STATUS = re.compile(r'postfix/smtp\[(\d+)\]: ([0-9A-F]+): to=<([^>]*)>, relay=(\S+?),'
                     r'.* status=(\w+) \((.*)\)$')
_TLS = re.compile(r'postfix/smtp\[(\d+)\]: (\w+) TLS connection established to (\S+?): (.*)$')


@dataclasses.dataclass
class Attempt:
    status: str        # sent, deferred, bounced
    relay: str         # host[address]:port, or none
    reason: str        # the text in parentheses after status=
    tls: str           # the "... TLS connection established" line for this relay, or ''
    line: str          # the status line itself


@dataclasses.dataclass
class Outcome:
    queue_id: str
    attempts: list

    @property
    def final(self):
        return self.attempts[-1] if self.attempts else None

    @property
    def status(self):
        return self.final.status if self.final else None


def outcome(log, message_id):
    """The ``Outcome`` of the message with ``message_id`` in a sender log
    (None before cleanup logged it).  A TLS line belongs to an attempt when
    the same ``smtp`` process logged it for the same relay before the status."""
    queue_id = next((q for q, mid in _CLEANUP.findall(log) if mid == message_id), None)
    if queue_id is None:
        return None
    attempts, tls_seen = [], {}
    for line in log.splitlines():
        tls = _TLS.search(line)
        if tls:
            tls_seen[(tls.group(1), tls.group(3))] = line
            continue
        status = _STATUS.search(line)
        if status and status.group(2) == queue_id:
            pid, relay = status.group(1), status.group(4)
            attempts.append(Attempt(status.group(5), relay, status.group(6),
                                    tls_seen.pop((pid, relay), ''), line))
    return Outcome(queue_id, attempts)


def wait_for_outcomes(sender, message_ids, done, timeout=60.0, interval=0.25):
    """Poll the sender's log until ``done(outcome)`` holds for every message
    (flushing the queue now and then); return ``{message_id: Outcome}``.
    After ``timeout`` the last outcomes are returned as they are: the
    assertions that follow say what is missing."""
    deadline = time.monotonic() + timeout
    next_flush = time.monotonic() + 5
    while True:
        log = sender.log_text()
        outcomes = {mid: outcome(log, mid) for mid in message_ids}
        if all(o is not None and done(o) for o in outcomes.values()):
            return outcomes
        if time.monotonic() > deadline:
            return outcomes
        if time.monotonic() > next_flush:
            sender.flush()
            next_flush = time.monotonic() + 5
        time.sleep(interval)


def received(receivers, message_id):
    """The receivers' log lines about ``message_id`` (empty: never received)."""
    return [line for line in read_text(receivers.log_path).splitlines() if f'message-id=<{message_id}>' in line]


def sessions(receivers, address):
    """The SMTP command counts of every finished session with the MX on ``address``,
    e.g. ``ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7`` (the lab's own
    readiness probe is ``quit=1 commands=1``)."""
    marker = f'postfix/{address}/smtpd['
    return [line.split(']: disconnect from ', 1)[1].split(' ', 1)[1]
            for line in read_text(receivers.log_path).splitlines()
            if marker in line and ']: disconnect from ' in line]


# -- destinations -------------------------------------------------------------

def policy_text(mode, patterns, max_age=86400):
    return ''.join([f'version: STSv1\r\nmode: {mode}\r\n']
                   + [f'mx: {p}\r\n' for p in patterns] + [f'max_age: {max_age}\r\n'])


def tlsa_3_1_1(cert_pem):
    """The DANE-EE SPKI SHA-256 association data of the leaf in ``cert_pem``."""
    leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def unrelated_tlsa():
    """Well-formed 3 1 1 data that matches no certificate in the lab."""
    spki = new_key().public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclasses.dataclass
class Destination:
    domain: str
    zone: str
    mx_name: str
    mx_kind: str
    cert_names: list
    address: str
    policy: tuple = None      # (mode, [patterns]) or None: no MTA-STS
    policy_id: str = None
    tlsa: str = None          # 'match', 'mismatch' or None

    @property
    def recipient(self):
        return f'user@{self.domain}'


class Destinations:
    """Domains with one MX each on ``receivers`` (a ``MailLab(accept=True)``),
    their DNS in ``dns`` (a ``DnssecLab``) and policies on ``web`` (a
    ``PolicyWeb`` on 127.0.0.1:443)."""

    def __init__(self, dns, web, receivers, addresses):
        self.dns, self.web, self.receivers = dns, web, receivers
        self._free = list(addresses)
        self.domains = {}

    def add(self, label, zone, mx_kind='good', mx_label='mx1', cert_names=None,
            policy=None, tlsa=None):
        """Destination ``label.zone`` with MX ``mx_label.label.zone`` of
        ``mx_kind`` (a ``MailLab`` kind; ``cert_names`` overrides the names in
        its certificate), an MTA-STS ``policy`` ``(mode, patterns)`` and
        ``tlsa`` ``'match'``/``'mismatch'``."""
        domain = f'{label}.{zone.rstrip(".")}'
        mx_name = f'{mx_label}.{domain}'
        dest = Destination(domain, zone.rstrip('.') + '.', mx_name, mx_kind, cert_names,
                           self._free.pop(0), policy, '1' if policy else None, tlsa)
        self.receivers.add_mx(dest.address, mx_kind, name=mx_name, names=cert_names)
        self.domains[label] = dest
        return dest

    def records(self, dest):
        """The DNS records of ``dest`` (after the receivers started: TLSA needs the certificate)."""
        lines = [f'{dest.domain}. {DNS_TTL} MX 10 {dest.mx_name}.',
                 f'{dest.mx_name}. {DNS_TTL} A {dest.address}']
        if dest.policy:
            lines += [f'_mta-sts.{dest.domain}. {DNS_TTL} TXT "v=STSv1; id={dest.policy_id}"',
                      f'mta-sts.{dest.domain}. {DNS_TTL} A {self.web.address}']
        if dest.tlsa:
            data = (tlsa_3_1_1(self.receivers.certificate(dest.address)) if dest.tlsa == 'match'
                    else unrelated_tlsa())
            lines.append(f'_25._tcp.{dest.mx_name}. {DNS_TTL} TLSA 3 1 1 {data}')
        return lines

    def start(self):
        """Start the receivers, publish every domain's DNS and policies."""
        self.receivers.start()
        by_zone = {}
        for dest in self.domains.values():
            by_zone.setdefault(dest.zone, []).extend(self.records(dest))
            if dest.policy:
                self.web.serve(f'mta-sts.{dest.domain}', policy_text(*dest.policy))
        for zone, lines in by_zone.items():
            self.dns.add_records(zone, lines)
        self.web.apply()

    def change_policy(self, label, policy, new_id=True):
        """Serve ``policy`` for ``label`` now; then, with ``new_id``, publish a
        new id (the order RFC 8461 §4 asks for)."""
        dest = self.domains[label]
        self.web.serve(f'mta-sts.{dest.domain}', policy_text(*policy))
        self.web.apply()
        dest.policy = policy
        if new_id:
            old = f'_mta-sts.{dest.domain}. {DNS_TTL} TXT "v=STSv1; id={dest.policy_id}"'
            dest.policy_id = str(int(dest.policy_id) + 1)
            self.dns.remove_records(dest.zone, [old])
            self.dns.add_records(
                dest.zone, [f'_mta-sts.{dest.domain}. {DNS_TTL} TXT "v=STSv1; id={dest.policy_id}"'])
            self.dns.flush()


# -- the MTA-STS resolver -----------------------------------------------------

class StsResolver(ProcessServer):
    """``mta-sts-daemon -c CONFIG`` from ``venv``, trusting ``ca_file`` for
    policy fetches; ready once ``address:port`` accepts connections."""

    _error = RuntimeError
    _start_timeout = 20.0
    _no_log = '(no resolver log)'

    def __init__(self, venv, config, ca_file, log_path, address=RESOLVER[0], port=RESOLVER[1]):
        super().__init__()
        self.venv, self.config, self.ca_file = venv, config, ca_file
        self.log_path, self.address, self.port = log_path, address, port
        self._log = None

    def start(self):
        env = dict(os.environ, SSL_CERT_FILE=self.ca_file)
        self._log = open(self.log_path, 'ab')  # pylint: disable=consider-using-with
        began = time.monotonic()
        self._spawn([os.path.join(self.venv, 'bin', 'mta-sts-daemon'), '-c', self.config,
                     '-v', 'debug'], stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._await_ready(began)
        return self

    def _wait_ready(self, deadline):
        self._wait_for(deadline, [None], lambda _: self._accepts(), 0.05,
                       exited=lambda code: f'mta-sts-daemon exited ({code})\n{self.log_tail()}',
                       late=lambda _: f'mta-sts-daemon not listening\n{self.log_tail()}')

    def _accepts(self):
        try:
            with socket.create_connection((self.address, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        if self._proc is not None:
            terminate(self._proc, timeout=RESOLVER_STOP_SECONDS)
        self._stop_process()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def map_name(self):
        return f'socketmap:inet:{self.address}:{self.port}:postfix'

    def query(self, domain):
        """What Postfix gets for ``domain`` (``postmap -q``): the answer, or '' when not
        found; RuntimeError when the lookup itself fails (postmap exits 1 then too, but says why)."""
        out = subprocess.run(['postmap', '-q', domain, self.map_name], capture_output=True,
                             text=True, timeout=30, check=False)
        if out.returncode not in (0, 1) or out.stderr.strip():
            raise RuntimeError(f'postmap -q {domain} failed: {out.stderr}')
        return out.stdout.strip()
