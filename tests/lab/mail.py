"""A real Postfix answering SMTP (with or without STARTTLS) as lab MX hosts.

``MailLab`` runs one Postfix instance with its own configuration, queue and
data directories under a work directory; the machine's /etc/postfix is
only read by Postfix itself as a template source (``meta_directory``), never
written.  Every MX is an ``smtpd`` listener of its own in ``master.cf``
(``127.0.0.21:25 inet ... smtpd -o ...``) with its own host name, TLS level
and certificate, so one ``master`` serves many MX hosts on one port.

By default Postfix here only answers: every recipient is rejected
(``smtpd_recipient_restrictions = reject``), all transports are ``error``,
``relayhost`` is empty and there is no ``smtp`` client service, so no mail
can be accepted, queued or sent.  With ``accept=True`` the MX hosts take
mail from 127.0.0.0/8 for any recipient and hand it to the ``discard``
transport: the sender sees ``250 ... queued as``, the lab's log shows the
message (``cleanup ... message-id=<...>``, ``discard ... status=sent``) and
still nothing leaves.  Nothing listens beyond the MX addresses.

Layout of the work directory::

    conf/main.cf, conf/master.cf   configuration (master -c conf; postconf -c
                                   conf -n shows it)
    queue/                         queue_directory (root 0755, subdirs as
                                   post-install makes them)
    queue/data/                    data_directory (postfix 0700)
    tls/<address>-<port>.key|.crt  per-MX key and full chain
    maillog                        Postfix's log (postlogd opens it as root)

Facts from this machine (Debian 12, Postfix 3.7) this module is built on:

* ``inet_interfaces`` must name addresses configured on an interface, and
  127.0.0.21 is routed to ``lo`` but not configured on it ("no local
  interface found for 127.0.0.21").  So ``inet_interfaces =
  loopback-only`` and each listener names its address in ``master.cf``;
  Postfix binds exactly those (a ``host:port`` service ignores
  ``inet_interfaces``).
* The master opens ``data_directory/master.lock`` *after* dropping to
  ``mail_owner``, so the postfix user must be able to reach it, and
  pytest's work directories are mode 0700.  The master chdirs into
  ``queue_directory`` as root first, so ``data_directory = data``
  (relative: ``queue/data``) works under any work directory.
* ``maillog_file`` must start with one of ``maillog_file_prefixes``;
  setting that parameter in our own ``main.cf`` to the work directory is
  allowed, so the log is ``WORKDIR/maillog``.
* ``postfix start`` runs ``postfix-script check-fatal``/``check-warn``
  (about 4 s here) and ``postfix stop`` sleeps a second while it waits.
  The lab creates the queue directories itself and runs ``master`` in the
  foreground (ready in ~0.03 s, stopped in ~0.01 s).
* Postfix waits until a freshly written ``main.cf`` is 1-2 s old before it
  trusts it (re-reading it every 0.3 s); the lab dates its files back.
* Master's children outlive a SIGTERMed master for a moment and would be
  re-parented to PID 1, which does not reap here (``<defunct>`` entries).
  So master runs under a tiny Python reaper (``PR_SET_CHILD_SUBREAPER``)
  that forwards SIGTERM and waits for every Postfix process to exit.
"""

import grp
import os
import pwd
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import time

from ._service import ProcessServer
from .web import address_is_free, cert_pair, check_host, check_loopback
from .pki import write_pair

MX_KINDS = ('good', 'wrong_name', 'expired', 'expiring', 'not_yet_valid', 'untrusted', 'self_signed',
            'no_chain', 'no_starttls', 'old_tls')
START_TIMEOUT = 10.0
MASTER = '/usr/lib/postfix/sbin/master'

# (name, owner, group, mode) of the queue subdirectories, as Debian's
# post-install creates them (seen with ``postfix check`` on this machine).
QUEUE_DIRS = (
    [(d, 'postfix', 'root', 0o700) for d in (
        'active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming',
        'private', 'saved', 'trace')]
    + [('maildrop', 'postfix', 'postdrop', 0o730), ('public', 'postfix', 'postdrop', 0o710),
       ('pid', 'root', 'root', 0o755)])

# Runs ``master`` as its child and reaps every process below it: with
# PR_SET_CHILD_SUBREAPER the Postfix daemons that master leaves behind
# become this process's children instead of PID 1's.  SIGTERM/SIGINT are
# passed on to master; a daemon still alive 5 s after master is killed.
REAPER = r'''
import ctypes, os, signal, sys

def ppid(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None

def kill_stragglers(*_):
    me = os.getpid()
    for entry in os.listdir('/proc'):
        if entry.isdigit() and ppid(int(entry)) == me:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass

master = None
stopping = False

def forward(*_):
    global stopping
    stopping = True
    if master is not None:
        try:
            os.kill(master, signal.SIGTERM)
        except ProcessLookupError:
            pass

ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
signal.signal(signal.SIGALRM, kill_stragglers)
master = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
if stopping:
    forward()
status = 0
while True:
    try:
        pid, st = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    if pid == master:
        status = os.waitstatus_to_exitcode(st)
        signal.alarm(5)
sys.exit(status if status >= 0 else 128 - status)
'''


class MailError(RuntimeError):
    """Postfix could not be configured, started or reached."""


class _MX:
    def __init__(self, address, port, kind, name, names, key_type):
        self.address, self.port, self.kind = address, port, kind
        self.name, self.names, self.key_type = name, names, key_type
        self.pair = None

    @property
    def endpoint(self):
        host = f'[{self.address}]' if ':' in self.address else self.address
        return f'{host}:{self.port}'

    @property
    def stem(self):
        return self.address.replace(':', '_') + f'-{self.port}'


class MailLab(ProcessServer):
    """One Postfix ``master`` with an ``smtpd`` listener per MX.

    ``ca`` is a ``pki.LabCA``; certificates are issued at ``start()``.
    """

    _error = MailError
    _start_timeout = START_TIMEOUT
    _no_log = '(no Postfix log)'

    def __init__(self, workdir, ca, myhostname='mx.lab.invalid', accept=False):
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self.ca = ca
        self.myhostname = check_host(myhostname)
        self.accept = accept
        self._mx = {}
        self._token = None
        self.stop_seconds = None

    # -- configuring MX hosts ------------------------------------------------

    def add_mx(self, address, kind='good', name=None, names=None, key_type='ec', port=25, pair=None):
        """Answer SMTP on ``address:port`` as MX host ``name``.

        ``kind``: ``good`` (STARTTLS, certificate for ``name`` from the lab CA
        with its intermediate), ``wrong_name`` (certificate for the parent
        domain and its www, or ``names``), ``expired``, ``not_yet_valid``,
        ``untrusted`` (second CA), ``self_signed``, ``no_chain`` (leaf without
        the intermediate), ``no_starttls`` (``smtpd_tls_security_level =
        none``: no STARTTLS in the EHLO answer), ``expiring`` (a good
        certificate that ends in a few days), ``old_tls`` (a good certificate,
        but TLS 1.0 only: offers STARTTLS, and a client that requires TLS 1.2
        fails the handshake).  ``name`` is also the host
        name in the banner and the EHLO answer (``myhostname``).  ``names``
        overrides the names in the certificate.  ``pair`` (chain PEM, key PEM)
        is served instead of a certificate issued at start: a key known before
        the MX serves it (a TLSA rollover's next key).  Adding an address again
        replaces it; call ``start()``/``restart()`` to put changes live.
        """
        address = check_loopback(address)
        if kind not in MX_KINDS:
            raise ValueError(f'MX kind must be one of {MX_KINDS}, got {kind!r}')
        if name is None:
            if kind != 'no_starttls' or names:
                raise ValueError(f'kind {kind!r} needs the MX host name (name=...)')
            name = self.myhostname
        name = check_host(name)
        names = [names] if isinstance(names, str) else (list(names) if names else None)
        self._mx[(address, int(port))] = _MX(address, int(port), kind, name, names, key_type)
        self._mx[(address, int(port))].pair = pair
        return self

    def remove_mx(self, address, port=25):
        self._mx.pop((check_loopback(address), int(port)), None)

    @property
    def mx(self):
        """``[(address, port, kind, name)]`` of the configured MX listeners."""
        return [(m.address, m.port, m.kind, m.name) for m in self._mx.values()]

    def certificate(self, address, port=25):
        """The PEM chain (bytes) the MX on ``address:port`` presents; issued
        at the first ``start()``, kept across restarts (None before)."""
        pair = self._mx[(check_loopback(address), int(port))].pair
        return pair and pair[0]

    # -- configuration -------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    @property
    def conf_dir(self):
        return self._path('conf')

    @property
    def log_path(self):
        return self._path('maillog')

    def main_settings(self):
        """main.cf as ``{name: value}``, in file order (subclasses change it)."""
        ipv6 = any(':' in m.address for m in self._mx.values())
        final = ('discard:accepted-by-mailsec-lab' if self.accept
                 else 'error:5.7.1 mailsec lab delivers nothing')
        return {
            'compatibility_level': '3.6',
            'queue_directory': self._path('queue'),
            # Relative to queue_directory, where master is when it opens
            # master.lock as mail_owner (see the module docstring).
            'data_directory': 'data',
            'mail_owner': 'postfix',
            'setgid_group': 'postdrop',
            'myhostname': self.myhostname,
            'mydomain': 'lab.invalid',
            'myorigin': '$myhostname',
            'mydestination': '',
            'relay_domains': '',
            'relayhost': '',
            'inet_interfaces': 'loopback-only',
            'inet_protocols': 'all' if ipv6 else 'ipv4',
            'mynetworks': '127.0.0.0/8 [::1]/128',
            'default_transport': final,
            'relay_transport': final,
            'local_transport': final,
            'virtual_transport': final,
            'local_recipient_maps': '',
            'alias_maps': '',
            'alias_database': '',
            'smtpd_relay_restrictions': 'permit_mynetworks, reject' if self.accept else 'reject',
            'smtpd_recipient_restrictions': 'permit_mynetworks, reject' if self.accept else 'reject',
            'smtpd_peername_lookup': 'no',
            'smtpd_banner': f'$myhostname ESMTP Postfix (mailsec lab {self._token})',
            'disable_vrfy_command': 'yes',
            'biff': 'no',
            'append_dot_mydomain': 'no',
            'smtpd_tls_security_level': 'none',
            'smtpd_tls_cert_file': '',
            'smtpd_tls_key_file': '',
            'smtpd_tls_chain_files': '',
            'smtpd_tls_session_cache_database': '',
            'smtpd_tls_loglevel': '1',
            'smtp_tls_security_level': 'none',
            'maillog_file_prefixes': self.workdir,
            'maillog_file': self.log_path,
        }

    def main_cf(self):
        what = 'accepts and discards' if self.accept else 'accepts and sends nothing'
        return '\n'.join([f'# Written by {type(self).__module__}: answers SMTP, {what}.']
                         + [f'{name} = {value}'.rstrip() for name, value in self.main_settings().items()]
                         + [''])

    def listener_lines(self, m):
        """The master.cf lines of the smtpd for MX ``m``."""
        lines = [
            f'{m.endpoint} inet n - n - - smtpd',
            f'  -o syslog_name=postfix/{m.address}',
            f'  -o myhostname={m.name}',
        ]
        if m.kind == 'no_starttls':
            lines.append('  -o smtpd_tls_security_level=none')
        else:
            key, crt = self._path('tls', m.stem + '.key'), self._path('tls', m.stem + '.crt')
            lines += ['  -o smtpd_tls_security_level=may',
                      f'  -o smtpd_tls_chain_files={key},{crt}']
            if m.kind == 'old_tls':
                lines += ['  -o smtpd_tls_protocols=<=TLSv1', '  -o tls_high_cipherlist=DEFAULT:@SECLEVEL=0',
                          '  -o smtpd_tls_ciphers=high']
        return lines

    def services(self):
        """The master.cf lines of the internal services (besides the listeners)."""
        return [
            'postlog   unix-dgram n - n - 1 postlogd',
            'tlsmgr    unix - - n 1000? 1 tlsmgr',
            'anvil     unix - - n - 1 anvil',
            'rewrite   unix - - n - - trivial-rewrite',
            'cleanup   unix n - n - 0 cleanup',
            'qmgr      unix n - n 300 1 qmgr',
            'bounce    unix - - n - 0 bounce',
            'defer     unix - - n - 0 bounce',
            'trace     unix - - n - 0 bounce',
            'error     unix - - n - - error',
            'retry     unix - - n - - error',
            'proxymap  unix - - n - - proxymap',
            'scache    unix - - n - 1 scache',
        ] + (['discard   unix - - n - - discard'] if self.accept else [])

    def master_cf(self):
        lines = [f'# Written by {type(self).__module__}. One smtpd per listener, nothing chrooted.']
        for m in sorted(self._mx.values(), key=lambda m: (m.address, m.port)):
            lines += self.listener_lines(m)
        return '\n'.join(lines + self.services() + [''])

    def _write_files(self):
        pw = pwd.getpwnam('postfix')
        ids = {'postfix': pw.pw_uid, 'root': 0}
        gids = {'postdrop': grp.getgrnam('postdrop').gr_gid, 'root': 0}
        for sub in ('conf', 'tls', 'queue'):
            shutil.rmtree(self._path(sub), ignore_errors=True)
        os.makedirs(self._path('conf'))
        os.makedirs(self._path('tls'), mode=0o700)
        os.makedirs(self._path('queue'), mode=0o755)
        os.chmod(self._path('queue'), 0o755)
        for name, owner, group, mode in QUEUE_DIRS:
            path = self._path('queue', name)
            os.mkdir(path)
            os.chown(path, ids[owner], gids[group])
            os.chmod(path, mode)
        data = self._path('queue', 'data')
        os.mkdir(data)
        os.chown(data, pw.pw_uid, pw.pw_gid)
        os.chmod(data, 0o700)
        for m in self._mx.values():
            if m.kind == 'no_starttls':
                continue
            if m.pair is None:
                m.pair = cert_pair(self.ca, 'good' if m.kind == 'old_tls' else m.kind, m.name, m.names, m.key_type)
            write_pair(self._path('tls'), m.stem, m.pair)
        cool = time.time() - 60
        for name, text in (('main.cf', self.main_cf()), ('master.cf', self.master_cf())):
            path = self._path('conf', name)
            with open(path, 'w', encoding='ascii') as f:
                f.write(text)
            # Postfix re-reads a main.cf changed in the last second or two,
            # every 0.3 s, until it has "cooled down" (dict_load_file): 1.8 s
            # of every start.  The file is complete, so date it back.
            os.utime(path, (cool, cool))

    # -- lifecycle -----------------------------------------------------------

    def start(self):
        """Write the configuration and start Postfix (restart if running);
        return once every MX listener answers with this lab's banner."""
        if self._proc is not None:
            self.stop()
        if not self._mx:
            raise MailError('no MX configured (add_mx)')
        if not os.path.exists(MASTER):
            raise MailError('Postfix not found (apt-get install postfix)')
        if os.geteuid() != 0:
            raise MailError('MailLab needs root (Postfix master binds port 25 and '
                            'switches to the postfix user)')
        # master's own "address in use" goes to syslog, which is not there:
        # say it here (someone may still take the port before master does).
        busy = [m.endpoint for m in self._mx.values() if not address_is_free(m.address, m.port)]
        if busy:
            raise MailError(f'already in use: {", ".join(busy)}')
        self._token = secrets.token_hex(8)
        os.makedirs(self.workdir, exist_ok=True)
        self._write_files()
        began = time.monotonic()
        self._spawn([sys.executable, '-c', REAPER, MASTER, '-c', self.conf_dir],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._await_ready(began)
        return self

    restart = start

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, self._mx.values(), self._banner_ok, 0.005,
            exited=lambda code: f'Postfix master exited ({code})\n{self._diagnose()}',
            late=lambda pending: (f'Postfix not answering on {pending[0].endpoint}\n'
                                  f'{self._diagnose()}'))

    def _banner_ok(self, m):
        # The banner carries this start's random token: a stranger on the
        # port, or an earlier lab, does not pass.
        try:
            with socket.create_connection((m.address, m.port), timeout=2) as s:
                f = s.makefile('rb')
                line = f.readline(1024)
                s.sendall(b'QUIT\r\n')
                f.readline(1024)
        except OSError:
            return False
        return line.startswith(b'220 ') and self._token.encode() in line

    def _diagnose(self):
        """``postconf`` complaints about the configuration, and the log."""
        try:
            out = subprocess.run(['postconf', '-c', self.conf_dir, '-n'], capture_output=True,
                                 text=True, timeout=20, check=False)
            complaints = out.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            complaints = repr(e)
        return f'postconf: {complaints or "no complaints"}\n{self.log_tail()}'

    def stop(self):
        """SIGTERM to master (which passes it on to its daemons); wait until
        every Postfix process of this lab has exited."""
        seconds = self._stop_process()
        if seconds is not None:
            self.stop_seconds = seconds

    # -- a quick look from the client side -------------------------------------

    def ehlo(self, address, port=25, timeout=5):
        """``(banner, ehlo_lines)`` of the listener, without TLS."""
        smtp = smtplib.SMTP(timeout=timeout)
        try:
            _code, banner = smtp.connect(address, port)
            _code, text = smtp.ehlo('probe.lab.invalid')
            smtp.quit()
        finally:
            smtp.close()
        return banner.decode(), text.decode().splitlines()
