"""A validating unbound resolver on loopback, in front of the lab's Knot.

Debian's ``unbound`` (1.17) in the foreground with a configuration of its
own in a work directory: no chroot, no user switch, no syslog, no root trust
anchor.  Each lab zone is a ``stub-zone`` pointing at Knot; a zone with a
``trust-anchor`` is validated (answers carry AD, a bad signature or a wrong
anchor gives SERVFAIL), any other zone is insecure (answers without AD).
Caches are kept to a second or two so that a record changed in Knot is seen
at once by the next query.
"""

import ipaddress
import os
import shutil
import subprocess
import time

import dns.exception
import dns.message
import dns.query

from ._service import LoopbackEndpoint, ProcessServer

START_TIMEOUT = 10.0


class UnboundError(RuntimeError):
    """unbound could not be started, reached or controlled."""


class UnboundLab(LoopbackEndpoint, ProcessServer):
    """One ``unbound -d`` answering on ``address``:``port``.

    ``stubs``: zone -> (address, port) of its authoritative server.
    ``trust_anchors``: presentation lines (``"zone. DNSKEY 257 3 13 ..."`` or
    ``"zone. DS ..."``), one ``trust-anchor:`` each.
    """

    _error = UnboundError
    _start_timeout = START_TIMEOUT
    _no_log = '(no unbound log)'

    def __init__(self, workdir, stubs, trust_anchors=(), address='127.0.0.1', port=53):
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f'resolver address must be loopback, got {address!r}')
        for zone, (stub_address, _stub_port) in stubs.items():
            if not ipaddress.ip_address(stub_address).is_loopback:
                raise ValueError(f'stub for {zone} must be on loopback, got {stub_address!r}')
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self._stubs = {zone.rstrip('.').lower() + '.': target for zone, target in stubs.items()}
        self._trust_anchors = list(trust_anchors)
        self._address = address
        self._port = port
        self._log = None

    @property
    def conf_path(self):
        return os.path.join(self.workdir, 'unbound.conf')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'unbound.log')

    @property
    def control_socket(self):
        return os.path.join(self.workdir, 'unbound.ctl')

    def config_text(self):
        w = self.workdir
        lines = [
            'server:',
            f'    directory: "{w}"',
            '    chroot: ""',
            '    username: ""',
            f'    pidfile: "{w}/unbound.pid"',
            f'    logfile: "{w}/unbound.log"',
            '    use-syslog: no',
            '    verbosity: 1',
            '    val-log-level: 2',
            '    num-threads: 1',
            f'    interface: {self._address}@{self._port}',
            f'    do-ip6: {"yes" if ":" in self._address else "no"}',
            '    access-control: 127.0.0.0/8 allow',
            '    access-control: ::1/128 allow',
            # The authoritative server is on loopback too.
            '    do-not-query-localhost: no',
            '    module-config: "validator iterator"',
            '    qname-minimisation: no',
            # Changes in Knot must show within a second or two: no answer,
            # negative answer, bogus verdict or NSEC proof outlives that.
            '    cache-max-ttl: 2',
            '    cache-max-negative-ttl: 1',
            '    val-bogus-ttl: 1',
            '    aggressive-nsec: no',
            '    prefetch: no',
            # A Knot that was briefly away is asked again at once.
            '    infra-host-ttl: 1',
        ]
        for zone in self._stubs:
            # unbound answers some special-use names itself (test., invalid.,
            # ...); a lab zone is always resolved.
            lines.append(f'    local-zone: "{zone}" transparent')
        lines += [f'    trust-anchor: "{anchor}"' for anchor in self._trust_anchors]
        lines += [
            '',
            'remote-control:',
            '    control-enable: yes',
            f'    control-interface: "{self.control_socket}"',
            '    control-use-cert: no',
        ]
        for zone, (stub_address, stub_port) in self._stubs.items():
            lines += ['', 'stub-zone:', f'    name: "{zone}"', f'    stub-addr: {stub_address}@{stub_port}']
        return '\n'.join(lines) + '\n'

    def start(self):
        if self._proc is not None:
            raise UnboundError('unbound already started')
        unbound = shutil.which('unbound') or '/usr/sbin/unbound'
        if not os.path.exists(unbound):
            raise UnboundError('unbound not found (apt-get install unbound)')
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.conf_path, 'w', encoding='ascii') as f:
            f.write(self.config_text())
        for stale in (self.log_path, self.control_socket):
            if os.path.exists(stale):
                os.unlink(stale)
        began = time.monotonic()
        # Messages before the log file is open (a bad config) go to stderr.
        self._log = open(os.path.join(self.workdir, 'unbound.stderr'), 'wb')
        self._spawn([unbound, '-d', '-c', self.conf_path], stdout=self._log, stderr=subprocess.STDOUT)
        self._await_ready(began)
        return self

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, ['.'], self._answers, 0.02,
            exited=lambda code: f'unbound exited with {code}\n{self.log_tail()}',
            late=lambda _pending: f'unbound not answering on {self._address}@{self._port}\n'
                                  f'{self.log_tail()}')

    def _answers(self, _item):
        # Any answer will do: unbound answers only once its listeners and
        # its trust anchors are set up.  TCP, so that nobody listening is
        # known at once.  A zone of the lab, not the root: nothing leaves.
        zone = next(iter(self._stubs), 'localhost.')
        try:
            dns.query.tcp(dns.message.make_query(zone, 'SOA'), self._address,
                          port=self._port, timeout=1)
        except (OSError, EOFError, dns.exception.DNSException):
            return False
        return True

    def _tail_path(self):
        if os.path.exists(self.log_path):
            return self.log_path
        return os.path.join(self.workdir, 'unbound.stderr')

    def stop(self):
        self._stop_process()
        if self._log is not None:
            self._log.close()
            self._log = None

    def control(self, *args):
        """Run ``unbound-control`` with ``args``; its output."""
        result = subprocess.run(['unbound-control', '-c', self.conf_path, *args],
                                capture_output=True, text=True, timeout=10, check=False)
        if result.returncode != 0 or result.stdout.startswith('error'):
            raise UnboundError(f'unbound-control {" ".join(args)}: '
                               f'{(result.stdout + result.stderr).strip()}')
        return result.stdout

    def flush(self, name=None):
        """Forget cached answers for ``name`` and below (everything when
        None), and all negative and bogus verdicts."""
        self.control('flush_zone', name or '.')
        self.control('flush_negative')
        self.control('flush_bogus')

    def query(self, name, rdtype, dnssec=True):
        """Ask unbound directly (not through resolv.conf): the response."""
        q = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
        return dns.query.tcp(q, self._address, port=self._port, timeout=5)
