"""A real Dovecot IMAP server on loopback, for the TLS-RPT report tests.

Debian's ``dovecot-imapd`` (2.3) run as ``dovecot -F -c CONF``: a
configuration of its own, nothing read from or written to /etc/dovecot, no
system service touched.  It speaks IMAP over TLS only (``imaps``, with a
certificate from the lab CA for ``imap.lab.invalid`` and the listening
address); plain IMAP is off, and the lab's own client (``deliver``, ``uids``)
uses imaps too.  One user (``user``/``password``, from a passwd-file) owns a
maildir; ``capabilities`` replaces what Dovecot announces after login, so a
test can take MOVE (or UIDPLUS) away and see the client's fallback.

Facts from this machine (Debian 12, Dovecot 2.3.19) this module is built on:

* Dovecot refuses to give mail to uid 0 ("userdb returned 0 as uid"), so the
  mail user is the ``dovecot`` system user (``first_valid_uid`` lowered to
  it).  The auth process (also ``dovecot``) reads the passwd-file, the mail
  processes the maildir, and pytest's work directories sit below 0700
  directories: both live in a directory of their own under the system temp
  directory (``shared_dir``, mode 0711), removed on stop.
* The configuration, ``base_dir`` (sockets), ``state_dir`` and the log stay
  in the work directory: only root-started processes open them.
* A SIGTERMed master ends before all its children, which PID 1 here does not
  reap: master runs under the Postfix lab's reaper (``tests.lab.mail.REAPER``).
"""

import imaplib
import os
import pwd
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from ._service import LoopbackEndpoint, ProcessServer
from .mail import REAPER
from .pki import write_pair
from .web import check_loopback

START_TIMEOUT = 10.0
DOVECOT = '/usr/sbin/dovecot'
MAIL_OWNER = 'dovecot'
SERVER_NAME = 'imap.lab.invalid'
CLIENT_TIMEOUT = 10


class DovecotError(RuntimeError):
    """Dovecot could not be configured, started or reached."""


def _quoted(name):
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"')


class DovecotLab(LoopbackEndpoint, ProcessServer):
    """One ``dovecot -F`` serving imaps on ``address``:``port``.

    ``ca``: the ``tests.lab.pki.LabCA`` whose certificate the server shows.
    ``capabilities``: None for Dovecot's own list, or the full list of
    capabilities to announce after login (``imap_capability``).
    """

    _error = DovecotError
    _start_timeout = START_TIMEOUT
    _no_log = '(no dovecot log)'

    def __init__(self, workdir, ca, address='127.0.0.1', port=993, user='tlsrpt',
                 password=None, capabilities=None):
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self.ca = ca
        self._address = check_loopback(address)
        self._port = port
        self.user = user
        self.password = password or 'imap-' + secrets.token_hex(12)
        self.capabilities = capabilities
        self.shared_dir = None
        self._stderr = None

    # -- layout --------------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    @property
    def conf_path(self):
        return self._path('dovecot.conf')

    @property
    def log_path(self):
        return self._path('dovecot.log')

    @property
    def passwd_path(self):
        return os.path.join(self.shared_dir, 'passwd')

    @property
    def ca_file(self):
        """The lab CA's root as a bundle file: what a client should trust."""
        return self._path('ca.pem')

    def config_text(self):
        owner = pwd.getpwnam(MAIL_OWNER)
        lines = [
            f'base_dir = {self._path("run")}',
            f'state_dir = {self._path("state")}',
            f'log_path = {self.log_path}',
            'protocols = imap',
            f'listen = {self._address}',
            'ssl = required',
            f'ssl_cert = <{self._path("tls", "imap.crt")}',
            f'ssl_key = <{self._path("tls", "imap.key")}',
            'ssl_min_protocol = TLSv1.2',
            'auth_mechanisms = plain',
            # A wrong password is answered at once, not after Dovecot's 2 s penalty.
            'auth_failure_delay = 0',
            f'first_valid_uid = {owner.pw_uid}',
            'passdb {',
            '  driver = passwd-file',
            f'  args = scheme=PLAIN username_format=%u {self.passwd_path}',
            '}',
            'userdb {',
            '  driver = static',
            f'  args = uid={owner.pw_uid} gid={owner.pw_gid} home={self.shared_dir}/mail/%u',
            '}',
            'mail_location = maildir:~/Maildir',
            'namespace inbox {',
            '  inbox = yes',
            '  separator = /',
            '}',
            'service imap-login {',
            '  inet_listener imap {',
            '    port = 0',
            '  }',
            '  inet_listener imaps {',
            f'    port = {self._port}',
            '    ssl = yes',
            '  }',
            '}',
        ]
        if self.capabilities is not None:
            lines += ['protocol imap {', f'  imap_capability = {" ".join(self.capabilities)}', '}']
        return '\n'.join(lines) + '\n'

    # -- life ----------------------------------------------------------------

    def start(self):
        if self._proc is not None:
            raise DovecotError('dovecot already started')
        if not os.path.exists(DOVECOT):
            raise DovecotError('dovecot not found (apt-get install dovecot-imapd)')
        os.makedirs(self.workdir, exist_ok=True)
        write_pair(self._path('tls'), 'imap', self.ca.issue([SERVER_NAME, self._address]))
        self.ca.write_bundle(self.ca_file)
        self._make_shared_dir()
        with open(self.conf_path, 'w', encoding='ascii') as f:
            f.write(self.config_text())
        began = time.monotonic()
        self._stderr = open(self._path('dovecot.stderr'), 'wb')
        self._spawn([sys.executable, '-c', REAPER, DOVECOT, '-F', '-c', self.conf_path], stdout=self._stderr,
                    stderr=subprocess.STDOUT)
        self._await_ready(began)
        return self

    def _make_shared_dir(self):
        owner = pwd.getpwnam(MAIL_OWNER)
        self.shared_dir = tempfile.mkdtemp(prefix='mailsec-dovecot-')
        os.chmod(self.shared_dir, 0o711)
        fd = os.open(self.passwd_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, 'w', encoding='ascii') as f:
            f.write(f'{self.user}:{{PLAIN}}{self.password}\n')
        os.chown(self.passwd_path, 0, owner.pw_gid)
        os.mkdir(os.path.join(self.shared_dir, 'mail'), 0o711)
        home = os.path.join(self.shared_dir, 'mail', self.user)
        os.mkdir(home, 0o700)
        os.chown(home, owner.pw_uid, owner.pw_gid)

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, ['greeting'], self._greets, 0.05,
            exited=lambda code: f'dovecot exited with {code}\n{self.log_tail()}',
            late=lambda _pending: f'dovecot not answering imaps on {self._address}:{self._port}\n'
                                  f'{self.log_tail()}')

    def _greets(self, _item):
        try:
            with imaplib.IMAP4_SSL(self._address, self._port, ssl_context=self.ca.client_context(),
                                   timeout=1) as conn:
                return conn.welcome.startswith(b'* OK')
        except (OSError, ssl.SSLError, imaplib.IMAP4.error):
            return False

    def _tail_path(self):
        if os.path.exists(self.log_path):
            return self.log_path
        return self._path('dovecot.stderr')

    def stop(self):
        self._stop_process()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.shared_dir is not None:
            shutil.rmtree(self.shared_dir, ignore_errors=True)
            self.shared_dir = None

    # -- the lab's own client --------------------------------------------------

    def connect(self):
        """A logged-in ``imaplib.IMAP4_SSL`` (trusting the lab CA only); close it with ``logout()``."""
        conn = imaplib.IMAP4_SSL(self._address, self._port, ssl_context=self.ca.client_context(),
                                 timeout=CLIENT_TIMEOUT)
        conn.login(self.user, self.password)
        return conn

    def deliver(self, message, mailbox='INBOX'):
        """APPEND ``message`` (bytes) to ``mailbox`` (created if missing); its UID."""
        conn = self.connect()
        try:
            if mailbox != 'INBOX':
                conn.create(_quoted(mailbox))   # NO when it exists already: fine
            typ, data = conn.append(_quoted(mailbox), None, None, message)
            if typ != 'OK':
                raise DovecotError(f'APPEND to {mailbox}: {data!r}')
            match = re.search(rb'APPENDUID \d+ (\d+)', data[0] or b'')
            return int(match.group(1))
        finally:
            conn.logout()

    def uids(self, mailbox='INBOX', criteria='ALL'):
        """The UIDs in ``mailbox`` matching the IMAP search ``criteria``, or None if there is no such mailbox."""
        conn = self.connect()
        try:
            typ, _data = conn.select(_quoted(mailbox), readonly=True)
            if typ != 'OK':
                return None
            _typ, data = conn.uid('SEARCH', criteria)
            return [int(uid) for uid in data[0].split()]
        finally:
            conn.logout()
