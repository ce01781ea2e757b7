"""A real nginx whose main configuration includes the policy_host role's drop-in, as a Debian host's does.

``NginxSite`` writes ``nginx.conf`` under its work directory: ``daemon off``, pid, logs and temp paths
in the directory, and inside ``http {}`` an ``include`` of ``conf.d/*.conf`` (where the role writes its
drop-in, ``drop_in_path``) and a control server on ``address:control_port`` whose answer to ``/token``
proves which configuration is loaded.

``reload_script`` is what the role runs as its reload command: it appends a line to ``reload_count_path``
(so a test can see that no reload happened), writes a new token, sends ``nginx -s reload`` and returns
once the new configuration answers. ``test_command`` is the role's configuration test for this nginx.
"""

import os
import secrets
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import urllib.request

from ._service import ProcessServer
from .knot import free_port
from .web import WebError, address_is_free, check_loopback

START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0

_RELOAD = '''\
#!{python}
"""Count the reload, load a new token, reload nginx, wait until the new configuration answers."""
import secrets, subprocess, sys, time, urllib.request
with open({count!r}, 'a') as handle:
    handle.write('reload\\n')
token = secrets.token_hex(16)
with open({token_conf!r}, 'w') as handle:
    handle.write('return 200 "%s";\\n' % token)
subprocess.run({command!r}, check=True)
deadline = time.monotonic() + {timeout!r}
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen({url!r}, timeout=1) as answer:
            if answer.read().decode() == token:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.02)
sys.exit('nginx did not load the new configuration within {timeout!r} s')
'''


class NginxSite(ProcessServer):
    _error = WebError
    _start_timeout = START_TIMEOUT

    def __init__(self, workdir, address='127.0.0.1', user='nobody nogroup'):
        super().__init__()
        # The workers' user: they read the certificate files at each handshake, so a test proves access.
        self.user = user
        self.workdir = os.path.abspath(workdir)
        self.address = check_loopback(address)
        self.control_port = free_port(self.address)
        self.nginx = shutil.which('nginx') or '/usr/sbin/nginx'
        self._token = None

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    @property
    def conf_path(self):
        return self._path('nginx.conf')

    @property
    def drop_in_path(self):
        return self._path('conf.d', 'mailsec-mta-sts.conf')

    @property
    def error_log_path(self):
        return self._path('error.log')

    @property
    def reload_count_path(self):
        return self._path('reloads')

    @property
    def reload_script(self):
        return self._path('reload')

    @property
    def test_command(self):
        return [self.nginx, '-t', '-q', '-e', self.error_log_path, '-c', self.conf_path]

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

    def _write_files(self):
        for directory in ('conf.d', 'tmp'):
            os.makedirs(self._path(directory), exist_ok=True)
        with open(self.conf_path, 'w') as handle:
            handle.write(self.config_text())
        self._token = secrets.token_hex(16)
        with open(self._path('token.conf'), 'w') as handle:
            handle.write('return 200 "%s";\n' % self._token)
        with open(self.reload_script, 'w') as handle:
            handle.write(_RELOAD.format(
                python=sys.executable, count=self.reload_count_path, token_conf=self._path('token.conf'),
                command=[self.nginx, '-q', '-e', self.error_log_path, '-c', self.conf_path, '-s', 'reload'],
                url=self._control_url(), timeout=RELOAD_TIMEOUT))
        os.chmod(self.reload_script, stat.S_IRWXU)

    def _control_url(self):
        return 'http://%s:%d/token' % (self.address, self.control_port)

    def start(self):
        """Start nginx with what ``conf.d`` holds now; return once its control server answers."""
        if not address_is_free(self.address, self.control_port):
            raise WebError('already in use: %s:%d' % (self.address, self.control_port))
        os.makedirs(self.workdir, exist_ok=True)
        self._write_files()
        began = time.monotonic()
        with open(self.error_log_path, 'ab') as log:
            self._spawn([self.nginx, '-e', self.error_log_path, '-c', self.conf_path],
                        cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self._await_ready(began)
        return self

    def _probe(self):
        try:
            with urllib.request.urlopen(self._control_url(), timeout=1) as answer:
                return answer.read().decode()
        except OSError:
            return None

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, [self.address], lambda _: self._probe() == self._token, 0.01,
            exited=lambda code: 'nginx exited with %s\n%s' % (code, self.log_tail()),
            late=lambda _: 'nginx not answering on %s\n%s' % (self._control_url(), self.log_tail()))

    def stop(self):
        self._stop_process()
