"""A real Apache httpd 2.4 whose main configuration includes the policy_host role's drop-in, as a Debian host's does.

``ApacheSite`` runs ``apache2 -f <workdir>/apache2.conf -DFOREGROUND`` (Debian's binary, no apache2ctl, no
systemd, nothing read from /etc/apache2): ServerRoot, pid file, logs, runtime files and every module loaded
from /usr/lib/apache2/modules are named in that file. It listens on ``address`` only: ``https_port`` (443),
``http_port`` (80) and a plain-HTTP control port. The main configuration then has, in this order:

* a default HTTPS virtual host ``lab-control.invalid`` (the first on the port, so Apache gives its certificate
  to a client whose SNI names no virtual host) and a default HTTP one;
* a control virtual host whose ``X-Lab-Token`` header proves which configuration is loaded;
* ``IncludeOptional sites-enabled/*.conf``: where the role writes its drop-in (``drop_in_path``).

The main configuration is permissive where a careless server's could be, so that the drop-in alone must make
the policy hosts right: ``SSLProtocol all`` with ``SSLCipherSuite DEFAULT:@SECLEVEL=0`` server-wide (TLS 1.0 and
1.1 work on ``lab-control.invalid``: the control for "TLS 1.1 refused"), ``AddDefaultCharset ISO-8859-1``,
``AddCharset ISO-8859-1 .txt`` and mod_deflate compressing ``text/plain``.

Apache refuses to serve as root, so its children run as ``www-data``: every file the drop-in serves (the
module's data dir) must be readable by that user along its whole path; ``workdir`` is made ``0755``.

``reload_script`` is what the role runs as its reload command: it appends a line to ``reload_count_path``,
writes a new token, sends ``apache2 -k graceful`` and returns once the new configuration answers.
``test_command`` is the role's configuration test for this Apache.
"""

import os
import secrets
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

from ._service import ProcessServer
from .knot import free_port
from .pki import LabCA, write_pair
from .web import WebError, address_is_free, check_loopback

START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
MODULE_DIR = '/usr/lib/apache2/modules'
CONTROL_HOST = 'lab-control.invalid'
TOKEN_HEADER = 'X-Lab-Token'
RUN_USER = 'www-data'
MODULES = ('mpm_event', 'authz_core', 'mime', 'alias', 'rewrite', 'headers', 'filter', 'deflate',
           'socache_shmcb', 'ssl')

_RELOAD = '''\
#!{python}
"""Count the reload, load a new token, reload Apache gracefully, wait until the new configuration answers."""
import secrets, subprocess, sys, time, urllib.error, urllib.request
with open({count!r}, 'a') as handle:
    handle.write('reload\\n')
token = secrets.token_hex(16)
with open({token_conf!r}, 'w') as handle:
    handle.write('Header always set {header} "%s"\\n' % token)
subprocess.run({command!r}, check=True)
deadline = time.monotonic() + {timeout!r}
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen({url!r}, timeout=1) as answer:
            seen = answer.headers.get({header!r})
    except urllib.error.HTTPError as answer:
        seen = answer.headers.get({header!r})
    except OSError:
        seen = None
    if seen == token:
        sys.exit(0)
    time.sleep(0.02)
sys.exit('Apache did not load the new configuration within {timeout!r} s')
'''


class ApacheSite(ProcessServer):
    _error = WebError
    _start_timeout = START_TIMEOUT

    def __init__(self, workdir, address='127.0.0.1', https_port=443, http_port=80, ca=None):
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self.address = check_loopback(address)
        self.https_port = int(https_port)
        self.http_port = int(http_port)
        self.control_port = free_port(self.address)
        self.ca = ca if ca is not None else LabCA()
        self.apache2 = shutil.which('apache2') or '/usr/sbin/apache2'
        self._token = None

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    @property
    def conf_path(self):
        return self._path('apache2.conf')

    @property
    def drop_in_path(self):
        return self._path('sites-enabled', 'mailsec-mta-sts.conf')

    @property
    def error_log_path(self):
        return self._path('error.log')

    @property
    def access_log_path(self):
        return self._path('access.log')

    @property
    def reload_count_path(self):
        return self._path('reloads')

    @property
    def reload_script(self):
        return self._path('reload')

    @property
    def test_command(self):
        return [self.apache2, '-t', '-f', self.conf_path]

    @property
    def reloads(self):
        """How many times the reload script ran."""
        try:
            with open(self.reload_count_path) as handle:
                return len(handle.readlines())
        except FileNotFoundError:
            return 0

    def _tail_path(self):
        return self.error_log_path

    def config_text(self):
        w = self.workdir
        modules = ''.join('LoadModule %s_module %s/mod_%s.so\n' % (name, MODULE_DIR, name) for name in MODULES)
        user = 'User %s\nGroup %s\n' % (RUN_USER, RUN_USER) if os.geteuid() == 0 else ''
        return textwrap.dedent('''\
            # Written by tests/lab/apache_site.py.
            ServerRoot "{w}"
            DefaultRuntimeDir "{w}/run"
            PidFile "{w}/run/apache2.pid"
            ErrorLog "{log}"
            LogLevel info
            ServerName {control_host}
            {user}{modules}
            TypesConfig /etc/mime.types
            StartServers 1
            ServerLimit 4
            ThreadsPerChild 16
            MaxRequestWorkers 64
            KeepAliveTimeout 2
            SSLSessionCache "shmcb:{w}/run/ssl_scache(512000)"
            LogFormat "%v %{{SSL_PROTOCOL}}x %{{SSL_TLS_SNI}}x \\"%r\\" %>s %b" lab
            CustomLog "{access_log}" lab

            # Permissive server-wide settings: the drop-in alone must make its hosts right.
            SSLProtocol all
            SSLCipherSuite DEFAULT:@SECLEVEL=0
            AddDefaultCharset ISO-8859-1
            AddCharset ISO-8859-1 .txt
            AddOutputFilterByType DEFLATE text/plain

            <Directory />
                Require all denied
                AllowOverride None
            </Directory>

            Listen {address}:{https}
            Listen {address}:{http}
            Listen {address}:{control}

            <VirtualHost *:{https}>
                ServerName {control_host}
                SSLEngine on
                SSLCertificateFile "{w}/certs/_control.crt"
                SSLCertificateKeyFile "{w}/certs/_control.key"
            </VirtualHost>

            <VirtualHost *:{http}>
                ServerName {control_host}
            </VirtualHost>

            <VirtualHost *:{control}>
                ServerName {control_host}
                Include "{w}/token.conf"
            </VirtualHost>

            IncludeOptional "{w}/sites-enabled/*.conf"
            ''').format(w=w, log=self.error_log_path, control_host=CONTROL_HOST, user=user, modules=modules,
                        access_log=self.access_log_path, address=self.address, https=self.https_port,
                        http=self.http_port, control=self.control_port)

    def _write_files(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for directory in ('sites-enabled', 'run', 'certs'):
            os.makedirs(self._path(directory), exist_ok=True)
        write_pair(self._path('certs'), '_control', self.ca.issue([CONTROL_HOST]))
        with open(self.conf_path, 'w') as handle:
            handle.write(self.config_text())
        self._token = secrets.token_hex(16)
        with open(self._path('token.conf'), 'w') as handle:
            handle.write('Header always set %s "%s"\n' % (TOKEN_HEADER, self._token))
        with open(self.reload_script, 'w') as handle:
            handle.write(_RELOAD.format(
                python=sys.executable, count=self.reload_count_path, token_conf=self._path('token.conf'),
                header=TOKEN_HEADER, command=[self.apache2, '-f', self.conf_path, '-k', 'graceful'],
                url=self._control_url(), timeout=RELOAD_TIMEOUT))
        os.chmod(self.reload_script, stat.S_IRWXU)

    def _control_url(self):
        return 'http://%s:%d/' % (self.address, self.control_port)

    def start(self):
        """Start Apache with what ``sites-enabled`` holds now; return once its control host answers."""
        busy = ['%s:%d' % (self.address, port) for port in (self.https_port, self.http_port, self.control_port)
                if not address_is_free(self.address, port)]
        if busy:
            raise WebError('already in use: %s' % ', '.join(busy))
        self._write_files()
        if not os.path.exists(self.apache2):
            raise WebError('apache2 not found (apt-get install apache2)')
        began = time.monotonic()
        with open(self.error_log_path, 'ab') as log:
            self._spawn([self.apache2, '-f', self.conf_path, '-DFOREGROUND'],
                        cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self._await_ready(began)
        return self

    def _probe(self):
        try:
            with urllib.request.urlopen(self._control_url(), timeout=1) as answer:
                return answer.headers.get(TOKEN_HEADER)
        except urllib.error.HTTPError as answer:
            return answer.headers.get(TOKEN_HEADER)
        except OSError:
            return None

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, [self.address], lambda _: self._probe() == self._token, 0.01,
            exited=lambda code: 'apache2 exited with %s\n%s' % (code, self.log_tail()),
            late=lambda _: 'apache2 not answering on %s\n%s' % (self._control_url(), self.log_tail()))

    def stop(self):
        """Stop Apache (SIGTERM: the parent stops its children) and wait until it has exited."""
        self._stop_process()
