"""A real Apache httpd 2.4 whose main configuration includes the policy_host role's drop-in, as a Debian host's does.

``ApacheSite`` runs ``apache2 -f <workdir>/apache2.conf -DFOREGROUND`` (Debian's binary, no apache2ctl, no
systemd, nothing read from /etc/apache2): ServerRoot, pid file, logs, runtime files and every module loaded
from /usr/lib/apache2/modules are named in that file. It listens on ``address`` only: ``https_port`` (443),
``http_port`` (80) and a plain-HTTP control port. The main configuration then has, in this order:

* a default HTTPS virtual host ``lab-control.invalid`` (the first on the port, so Apache gives its certificate
  to a client whose SNI names no virtual host) and a default HTTP one;
* a control virtual host whose answer (``ErrorDocument 403``) is the token of ``tests/lab/site_server.py``;
* ``IncludeOptional sites-enabled/*.conf``: where the role writes its drop-in (``drop_in_path``).

The main configuration is permissive where a careless server's could be, so that the drop-in alone must make
the policy hosts right: ``SSLProtocol all`` with ``SSLCipherSuite DEFAULT:@SECLEVEL=0`` server-wide (TLS 1.0 and
1.1 work on ``lab-control.invalid``: the control for "TLS 1.1 refused"), ``AddDefaultCharset ISO-8859-1``,
``AddCharset ISO-8859-1 .txt`` and mod_deflate compressing ``text/plain``.

Apache refuses to serve as root, so its children run as ``www-data``: every file the drop-in serves (the
module's data dir) must be readable by that user along its whole path; ``workdir`` is made ``0755``.

``reload_script`` (see ``SiteServer``) sends ``apache2 -k graceful``; ``test_command`` is ``apache2 -t``, which
checks that certificate files exist but does not load them.
"""

import os
import shutil
import textwrap

from .pki import LabCA, write_pair
from .site_server import SiteServer

MODULE_DIR = '/usr/lib/apache2/modules'
CONTROL_HOST = 'lab-control.invalid'
RUN_USER = 'www-data'
MODULES = ('mpm_event', 'authz_core', 'mime', 'rewrite', 'filter', 'deflate', 'socache_shmcb', 'ssl')


class ApacheSite(SiteServer):
    name = 'apache2'
    token_line = 'ErrorDocument 403 "%s"\n'

    def __init__(self, workdir, address='127.0.0.1', https_port=443, http_port=80, ca=None):
        super().__init__(workdir, address)
        self.https_port = int(https_port)
        self.http_port = int(http_port)
        self.ca = ca if ca is not None else LabCA()
        self.apache2 = shutil.which('apache2') or '/usr/sbin/apache2'

    @property
    def ports(self):
        return [self.https_port, self.http_port, self.control_port]

    @property
    def conf_path(self):
        return self._path('apache2.conf')

    @property
    def drop_in_path(self):
        return self._path('sites-enabled', 'mailsec-mta-sts.conf')

    @property
    def access_log_path(self):
        return self._path('access.log')

    @property
    def test_command(self):
        return [self.apache2, '-t', '-f', self.conf_path]

    @property
    def reload_command(self):
        return [self.apache2, '-f', self.conf_path, '-k', 'graceful']

    @property
    def start_command(self):
        return [self.apache2, '-f', self.conf_path, '-DFOREGROUND']

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

            # Every request is refused; the refusal's body is the token.
            <VirtualHost *:{control}>
                ServerName {control_host}
                <Location "/">
                    Require all denied
                </Location>
                Include "{w}/token.conf"
            </VirtualHost>

            IncludeOptional "{w}/sites-enabled/*.conf"
            ''').format(w=w, log=self.error_log_path, control_host=CONTROL_HOST, user=user, modules=modules,
                        access_log=self.access_log_path, address=self.address, https=self.https_port,
                        http=self.http_port, control=self.control_port)

    def _write_config(self):
        # Apache's children (www-data) read the files the drop-in serves; the work directory is on their way.
        os.chmod(self.workdir, 0o755)
        for directory in ('sites-enabled', 'run', 'certs'):
            os.makedirs(self._path(directory), exist_ok=True)
        write_pair(self._path('certs'), '_control', self.ca.issue([CONTROL_HOST]))
        with open(self.conf_path, 'w') as handle:
            handle.write(self.config_text())
