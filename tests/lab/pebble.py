"""Pebble, Let's Encrypt's ACME test CA, as a child process on loopback.

``PebbleLab`` writes ``pebble.json`` under its work directory, gives Pebble a
TLS certificate of its own for the directory (from a throwaway ``LabCA``:
``directory_ca_path`` is what an ACME client must trust, e.g. through
``SSL_CERT_FILE``) and starts ``pebble -config ... -dnsserver ...`` with
``PEBBLE_VA_NOSLEEP=1`` (no random validation delays). HTTP-01 challenges
are validated by connecting to the address the lab DNS gives for the name,
on ``http_port``.

Pebble makes a new issuing root at each start: after start it is fetched
from the management port (``/roots/0``) into ``root_path``; a client that
checks an issued certificate trusts that file.

``issued()`` counts the certificates this Pebble issued, read from its log,
so a test can tell "nothing was ordered" from "ordered again".
"""

import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from ._service import LoopbackEndpoint, ProcessServer
from .knot import _check_loopback, free_port
from .pki import LabCA, write_pair

START_TIMEOUT = 15.0
# Pebble logs one line per certificate it signs.
_ISSUED = re.compile(r'Issued certificate serial ([0-9a-f]+) for order')


class PebbleError(RuntimeError):
    """Pebble could not be started or reached."""


class PebbleLab(LoopbackEndpoint, ProcessServer):
    """One ``pebble`` serving its ACME directory at ``directory_url``.

    ``dns_server``/``dns_port``: the nameserver Pebble resolves challenge
    names with (the Knot lab). ``http_port``: where it connects for HTTP-01.
    ``validity_seconds``: lifetime of issued certificates (Pebble's default
    is about five years). ``eab_keys``: ``{kid: base64url HMAC key}``; when
    given, an account needs external account binding.
    """

    _error = PebbleError
    _start_timeout = START_TIMEOUT
    _no_log = '(no pebble log)'

    def __init__(self, workdir, dns_server, dns_port, http_port, address='127.0.0.1',
                 validity_seconds=None, eab_keys=None):
        _check_loopback(address)
        _check_loopback(dns_server)
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self._address = address
        self._dns = f'{dns_server}:{dns_port}'
        self.http_port = http_port
        self.validity_seconds = validity_seconds
        self.eab_keys = dict(eab_keys or {})
        self.management_port = None
        self._ca = LabCA(name='mailsec pebble directory root CA', intermediate=False)
        self._log = None

    # -- facts ---------------------------------------------------------------

    @property
    def directory_url(self):
        return f'https://{self._address}:{self._port}/dir'

    @property
    def directory_ca_path(self):
        """The root that signed Pebble's own TLS certificate (not its issuing root)."""
        return os.path.join(self.workdir, 'directory-ca.pem')

    @property
    def root_path(self):
        """Pebble's issuing root, fetched after start."""
        return os.path.join(self.workdir, 'issuing-root.pem')

    @property
    def conf_path(self):
        return os.path.join(self.workdir, 'pebble.json')

    @property
    def log_path(self):
        return os.path.join(self.workdir, 'pebble.log')

    def config(self):
        cert = os.path.join(self.workdir, 'tls', 'pebble.crt')
        key = os.path.join(self.workdir, 'tls', 'pebble.key')
        conf = {
            'listenAddress': f'{self._address}:{self._port}',
            'managementListenAddress': f'{self._address}:{self.management_port}',
            'certificate': cert,
            'privateKey': key,
            'httpPort': self.http_port,
            # TLS-ALPN-01 is not used; the port only has to be something.
            'tlsPort': self.http_port,
            'ocspResponderURL': '',
            'externalAccountBindingRequired': bool(self.eab_keys),
            'externalAccountMACKeys': self.eab_keys,
        }
        if self.validity_seconds is not None:
            conf['certificateValidityPeriod'] = int(self.validity_seconds)
        return {'pebble': conf}

    # -- lifecycle -------------------------------------------------------------

    def start(self):
        if self._proc is not None:
            raise PebbleError('pebble already started')
        pebble = shutil.which('pebble') or '/usr/bin/pebble'
        if not os.path.exists(pebble):
            raise PebbleError('pebble not found (apt-get install pebble)')
        os.makedirs(self.workdir, exist_ok=True)
        self._port = free_port(self._address)
        self.management_port = free_port(self._address)
        write_pair(os.path.join(self.workdir, 'tls'), 'pebble',
                   self._ca.issue([self._address, 'localhost']))
        self._ca.write_bundle(self.directory_ca_path)
        with open(self.conf_path, 'w', encoding='utf-8') as f:
            json.dump(self.config(), f, indent=2)
        os.chmod(self.conf_path, 0o600)
        began = time.monotonic()
        self._log = open(self.log_path, 'wb')
        env = dict(os.environ, PEBBLE_VA_NOSLEEP='1')
        self._spawn([pebble, '-config', self.conf_path, '-dnsserver', self._dns],
                    stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._await_ready(began)
        with open(self.root_path, 'wb') as f:
            f.write(self._get(self.management_port, '/roots/0'))
        return self

    def _get(self, port, path):
        context = ssl.create_default_context(cafile=self.directory_ca_path)
        url = f'https://{self._address}:{port}{path}'
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return response.read()

    def _answers(self, endpoint):
        try:
            self._get(*endpoint)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, [(self._port, '/dir'), (self.management_port, '/roots/0')], self._answers, 0.05,
            exited=lambda code: f'pebble exited with {code}\n{self.log_tail()}',
            late=lambda pending: f'pebble not answering on {pending}\n{self.log_tail()}')

    def stop(self):
        self._stop_process()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- what it did -----------------------------------------------------------

    def issued(self):
        """Serials (hex) of the certificates issued so far, in order."""
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                return _ISSUED.findall(f.read())
        except OSError:
            return []
