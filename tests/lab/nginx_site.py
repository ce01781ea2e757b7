"""A real nginx whose main configuration includes the policy_host role's drop-in, as a Debian host's does.

``NginxSite`` writes ``nginx.conf`` under its work directory: ``daemon off``, pid, logs and temp paths
in the directory, and inside ``http {}`` an ``include`` of ``conf.d/*.conf`` (where the role writes its
drop-in, ``drop_in_path``) and a control server on ``address:control_port`` whose answer to ``/token``
proves which configuration is loaded.

``reload_script`` (see ``SiteServer``) sends ``nginx -s reload``; ``test_command`` is ``nginx -t``.
"""

import os
import shutil
import textwrap

from .site_server import SiteServer


class NginxSite(SiteServer):
    name = 'nginx'
    token_line = 'return 200 "%s";\n'
    waits_for_old_workers = True

    def __init__(self, workdir, address='127.0.0.1', user='nobody nogroup'):
        super().__init__(workdir, address)
        # The workers' user: they read the certificate files at each handshake, so a test proves access.
        self.user = user
        self.nginx = shutil.which('nginx') or '/usr/sbin/nginx'

    @property
    def ports(self):
        return [self.control_port]

    @property
    def conf_path(self):
        return self._path('nginx.conf')

    @property
    def drop_in_path(self):
        return self._path('conf.d', 'mailsec-mta-sts.conf')

    @property
    def test_command(self):
        return [self.nginx, '-t', '-q', '-e', self.error_log_path, '-c', self.conf_path]

    @property
    def reload_command(self):
        return [self.nginx, '-q', '-e', self.error_log_path, '-c', self.conf_path, '-s', 'reload']

    @property
    def start_command(self):
        return [self.nginx, '-e', self.error_log_path, '-c', self.conf_path]

    def config_text(self):
        temp = ''.join('    %s_temp_path %s;\n' % (kind, self._path('tmp', kind))
                       for kind in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
        return textwrap.dedent('''\
            daemon off;
            user {user};
            worker_processes 1;
            pid {pid};
            error_log {log} info;
            events {{
                worker_connections 256;
            }}
            http {{
                access_log off;
            {temp}
                include {conf_d}/*.conf;

                server {{
                    listen {address}:{control};
                    server_name lab-control.invalid;
                    location = /token {{
                        include {token_conf};
                    }}
                }}
            }}
            ''').format(user=self.user, pid=self._path('nginx.pid'), log=self.error_log_path, temp=temp.rstrip('\n'),
                        conf_d=self._path('conf.d'), address=self.address, control=self.control_port,
                        token_conf=self._path('token.conf'))

    def _write_config(self):
        for directory in ('conf.d', 'tmp'):
            os.makedirs(self._path(directory), exist_ok=True)
        with open(self.conf_path, 'w') as handle:
            handle.write(self.config_text())
