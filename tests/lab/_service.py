"""Plumbing the lab's servers share.

``ProcessServer``: the life of a server that runs as a child process (knotd,
moto, nginx, Postfix): start it so that it cannot outlive the test run,
wait until it answers, stop it (killing it if it hangs), read its log.

``LabHTTPServer``: an HTTP server in a background thread of the test process
(the Route53 fault proxy, the Cloudflare stand-in) that can be stopped at
once, idle keep-alive connections and all.
"""

import http.server
import signal
import socket
import subprocess
import threading
import time
import weakref

STOP_TIMEOUT = 10.0


def terminate(proc, timeout=STOP_TIMEOUT):
    """SIGTERM ``proc`` and wait for it; SIGKILL it after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_tail(path, lines, missing):
    """The last ``lines`` lines of the file at ``path``; ``missing`` if it
    cannot be read (or there is no path yet)."""
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
    except (OSError, TypeError):
        return missing
    return '\n'.join(text.splitlines()[-lines:])


class ProcessServer:
    """Base of a server run as one child process (``self._proc``).

    A subclass sets ``_error`` (the exception it raises), ``_start_timeout``
    and ``_no_log``, and provides ``start()`` (``_spawn`` then
    ``_await_ready``), ``_wait_ready(deadline)`` (usually ``_wait_for``),
    ``stop()`` (``_stop_process`` and its own clean-up) and ``log_path``
    (or overrides ``_tail_path``).
    """

    _error = RuntimeError
    _start_timeout = 10.0
    _no_log = '(no log)'

    def __init__(self):
        self._proc = None
        self._finalizer = None
        self.startup_seconds = None

    def _spawn(self, argv, detach=False, **popen_args):
        """Start ``argv`` as the server process, stdin from /dev/null.

        ``detach=True`` puts it in a session of its own and leaves it
        running when this object goes or Python exits.
        """
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, close_fds=True,
                                      start_new_session=detach, **popen_args)
        if not detach:
            # A test run that dies on an exception or Ctrl-C must not leave
            # the server behind: stop it when this object goes or Python exits.
            self._finalizer = weakref.finalize(self, terminate, self._proc)

    def _await_ready(self, began):
        """``_wait_ready`` until ``_start_timeout`` after ``began``; a server
        that does not get ready (or a Ctrl-C meanwhile) is stopped."""
        try:
            self._wait_ready(began + self._start_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def _wait_for(self, deadline, pending, ready, interval, exited, late):
        """Return once ``ready(item)`` has been true for each of ``pending``,
        asked in turn (so the wait is bounded by the slowest, not the sum).

        Raises ``_error`` with ``exited(returncode)`` if the process ends
        first, or with ``late(still_pending)`` after ``deadline``.
        """
        pending = list(pending)
        while pending:
            if self._proc.poll() is not None:
                raise self._error(exited(self._proc.returncode))
            if time.monotonic() > deadline:
                raise self._error(late(pending))
            if ready(pending[0]):
                pending.pop(0)
            else:
                time.sleep(interval)

    def is_running(self):
        return self._proc is not None and self._proc.poll() is None

    def _stop_process(self):
        """Terminate the process and wait for it to exit; the seconds that
        took, or None if none was running."""
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is None:
            return None
        began = time.monotonic()
        terminate(proc)
        return time.monotonic() - began

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _tail_path(self):
        return self.log_path

    def log_tail(self, lines=30):
        return log_tail(self._tail_path(), lines, self._no_log)


class LoopbackEndpoint:
    """Read-only ``address``/``port`` of a server kept in ``_address``/``_port``."""

    _address = None
    _port = None

    @property
    def address(self):
        return self._address

    @property
    def port(self):
        return self._port


class LabHTTPServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer on an IPv4 or IPv6 address, served by a daemon
    thread, that keeps its open connections so that ``stop_serving`` need
    not wait for clients that keep theirs alive."""

    daemon_threads = True

    def __init__(self, address, handler):
        self.address_family = socket.AF_INET6 if ':' in address[0] else socket.AF_INET
        self.connections = set()
        self.connections_lock = threading.Lock()
        self._thread = None
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def serve_in_thread(self, name, poll_interval):
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={'poll_interval': poll_interval},
                                        name=name, daemon=True)
        self._thread.start()
        return self

    def stop_serving(self, timeout):
        """Stop accepting, end open connections, close; wait up to ``timeout``
        seconds for the serving thread."""
        self.shutdown()
        # Idle keep-alive connections have handler threads blocked in a
        # read; shutting their sockets down lets those threads end.
        with self.connections_lock:
            conns = list(self.connections)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        self._thread.join(timeout=timeout)
