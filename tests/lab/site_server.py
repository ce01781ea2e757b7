"""What the lab's web servers for the policy_host role tests share (``NginxSite``, ``ApacheSite``).

Each runs one server as a child process whose main configuration, written under ``workdir``, includes the
role's drop-in (``drop_in_path``) as a Debian host's does, plus a control server on ``address:control_port``
whose answer (the body, at any path) is the token in ``token.conf``: that proves which configuration is loaded.

``reload_script`` is what the role runs as its reload command: it appends a line to ``reload_count_path`` (so a
test can see that no reload happened), writes a new token, runs the server's reload and returns once the new
configuration answers. ``test_command`` is the role's configuration test for the server.
"""

import os
import secrets
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

from ._service import ProcessServer
from .knot import free_port
from .web import WebError, address_is_free, check_loopback

START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The role's reload command: a script that calls ``reload`` below with this server's facts.
_RELOAD = '''\
#!{python}
import sys
sys.path.insert(0, {repo!r})
from tests.lab.site_server import reload
sys.exit(reload({name!r}, {count!r}, {token_conf!r}, {token_line!r}, {command!r}, {url!r}, {master_pid!r}))
'''


def reload(name, count_path, token_path, token_line, command, url, master_pid=None):
    """Count the reload, load a new token, run ``command``, wait until the control server at ``url`` answers
    the new token and, given the ``master_pid`` (nginx), until the master's old workers are gone: until they
    handle the signal they still accept connections with the old configuration (seen with nginx 1.22: the
    first request after the new token answered could get the old worker's 404). Returns None, or why it failed
    (the reload script's exit message)."""
    with open(count_path, 'a') as handle:
        handle.write('reload\n')
    old_workers = _children(master_pid) if master_pid else []
    token = new_token(token_path, token_line)
    subprocess.run(command, check=True)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while control_answer(url) != token:
        if time.monotonic() > deadline:
            return '%s did not load the new configuration within %s s' % (name, RELOAD_TIMEOUT)
        time.sleep(0.02)
    while any(os.path.exists('/proc/%d' % pid) for pid in old_workers):
        if time.monotonic() > deadline:
            return '%s: old workers %s still running after %s s' % (name, old_workers, RELOAD_TIMEOUT)
        time.sleep(0.01)
    return None


def _children(pid):
    with open('/proc/%d/task/%d/children' % (pid, pid)) as handle:
        return [int(child) for child in handle.read().split()]


def new_token(path, line):
    """Write a fresh token into ``path`` as ``line % token``; return the token."""
    token = secrets.token_hex(16)
    with open(path, 'w') as handle:
        handle.write(line % token)
    return token


def control_answer(url):
    """The body the control server answers at ``url`` (whatever the status), or None when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.read().decode()
    except OSError:
        return None


class SiteServer(ProcessServer):
    """A subclass sets ``name`` and ``token_line`` (the line of ``token.conf`` that makes the control server
    answer ``%s``) and provides ``conf_path``, ``drop_in_path``, ``test_command``, ``reload_command``,
    ``ports`` (all it listens on), ``start_command`` and ``_write_config()``."""

    _error = WebError
    _start_timeout = START_TIMEOUT
    name = None
    token_line = None
    # Whether the reload script waits until the workers of before the reload are gone (see reload()).
    waits_for_old_workers = False

    def __init__(self, workdir, address):
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self.address = check_loopback(address)
        self.control_port = free_port(self.address)
        self._token = None

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

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
    def reloads(self):
        """How many times the reload script ran."""
        try:
            with open(self.reload_count_path) as handle:
                return len(handle.readlines())
        except FileNotFoundError:
            return 0

    def _tail_path(self):
        return self.error_log_path

    def _control_url(self):
        return 'http://%s:%d/token' % (self.address, self.control_port)

    def _write_files(self):
        os.makedirs(self.workdir, exist_ok=True)
        self._write_config()
        self._token = new_token(self._path('token.conf'), self.token_line)

    def _write_reload_script(self):
        # After the start: the script may need the master's pid.
        with open(self.reload_script, 'w') as handle:
            handle.write(_RELOAD.format(
                python=sys.executable, repo=REPO, name=self.name, count=self.reload_count_path,
                token_conf=self._path('token.conf'), token_line=self.token_line, command=self.reload_command,
                url=self._control_url(), master_pid=self._proc.pid if self.waits_for_old_workers else None))
        os.chmod(self.reload_script, stat.S_IRWXU)

    def start(self):
        """Start the server with what the drop-in holds now; return once its control server answers."""
        busy = ['%s:%d' % (self.address, port) for port in self.ports if not address_is_free(self.address, port)]
        if busy:
            raise WebError('already in use: %s' % ', '.join(busy))
        self._write_files()
        began = time.monotonic()
        with open(self.error_log_path, 'ab') as log:
            self._spawn(self.start_command, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self._write_reload_script()
        self._await_ready(began)
        return self

    def _wait_ready(self, deadline):
        self._wait_for(
            deadline, [self.address], lambda _: control_answer(self._control_url()) == self._token, 0.01,
            exited=lambda code: '%s exited with %s\n%s' % (self.name, code, self.log_tail()),
            late=lambda _: '%s not answering on %s\n%s' % (self.name, self._control_url(), self.log_tail()))

    def stop(self):
        self._stop_process()
