"""A transparent DNS proxy that counts what clients send.

Tests and the benchmark put it between a client (often an ansible-playbook
subprocess) and the lab Knot server, to assert how many queries and updates
a module really sends.  Bytes are forwarded unchanged in both directions, so
TSIG signatures stay valid; only the client->server direction is parsed, and
only its header and question, so signed messages need no keyring.

Counting happens before a message is forwarded: once the client has its
answer, the count for its request is already visible to ``counts()``.

With ``drop`` (a share, 0 to 1) it also loses UDP datagrams as a congested
network or resolver does: each query and each answer independently, drawn
from ``random.Random(seed)``. Dropped queries are still counted (the client
sent them); ``dropped()`` tells how many of each were lost. TCP is never
dropped: TCP itself would resend.
"""

import collections
import random
import socket
import struct
import threading

import dns.exception
import dns.opcode
import dns.rdatatype
import dns.wire

UDP_MAX = 65535
UPSTREAM_TIMEOUT = 5.0
POLL_INTERVAL = 0.1
# Keys that ``counts()`` always reports, so callers can index them directly.
BASE_KEYS = ('QUERY', 'UPDATE', 'NOTIFY', 'QUERY/SOA', 'QUERY/TXT', 'QUERY/AXFR',
             'QUERY/IXFR', 'UPDATE/SOA', 'MALFORMED')


def classify(wire):
    """('QUERY', 'TXT') style opcode and qtype of a DNS message.

    qtype is None when there is no question; raises on a truncated header.
    """
    parser = dns.wire.Parser(wire)
    _id, flags, qdcount = struct.unpack('!HHH', parser.get_bytes(6))
    opcode = dns.opcode.to_text(dns.opcode.from_flags(flags))
    if qdcount == 0:
        return opcode, None
    parser.seek(12)
    parser.get_name()
    qtype = parser.get_uint16()
    return opcode, dns.rdatatype.to_text(qtype)


class CountingDnsProxy:
    """Forward DNS over UDP and TCP from ``listen_*`` to ``upstream_*``."""

    def __init__(self, upstream_address, upstream_port, listen_address='127.0.0.1',
                 listen_port=None, drop=0.0, seed=None):
        if not 0.0 <= drop <= 1.0:
            raise ValueError(f'drop must be a share from 0 to 1, got {drop!r}')
        self.upstream = (upstream_address, int(upstream_port))
        self.listen_address = listen_address
        self._requested_port = listen_port or 0
        self._counts = collections.Counter()
        self._drop = drop
        self._random = random.Random(seed)
        self._dropped = collections.Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = []
        self._conns = set()   # open TCP sockets, closed by stop()
        self._udp = None
        self._tcp = None
        self.listen_port = None

    # -- counting ----------------------------------------------------------

    def _count(self, wire):
        try:
            opcode, qtype = classify(wire)
        except (dns.exception.FormError, struct.error, ValueError):
            keys = ['MALFORMED']
        else:
            keys = [opcode] if qtype is None else [opcode, f'{opcode}/{qtype}']
        with self._lock:
            self._counts.update(keys)

    def counts(self):
        """Snapshot of the counts; missing keys read as 0 (a Counter)."""
        with self._lock:
            snapshot = collections.Counter(self._counts)
        for key in BASE_KEYS:
            snapshot.setdefault(key, 0)
        return snapshot

    def dropped(self):
        """How many UDP ``query`` and ``answer`` datagrams were lost on purpose."""
        with self._lock:
            return collections.Counter(query=self._dropped['query'], answer=self._dropped['answer'])

    def _lose(self, what):
        """True when this datagram is to be lost (and counted as such)."""
        if not self._drop:
            return False
        with self._lock:
            lost = self._random.random() < self._drop
            if lost:
                self._dropped[what] += 1
        return lost

    def reset(self):
        with self._lock:
            self._counts.clear()
            self._dropped.clear()

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        family = socket.AF_INET6 if ':' in self.listen_address else socket.AF_INET
        self._tcp = socket.socket(family, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind((self.listen_address, self._requested_port))
        self.listen_port = self._tcp.getsockname()[1]
        self._tcp.listen(64)
        # Same port number for UDP, as a DNS client expects.
        self._udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._udp.bind((self.listen_address, self.listen_port))
        except OSError:
            self._tcp.close()
            raise
        # Listening sockets wake up now and then to notice stop(); shutdown()
        # does not interrupt a blocked recvfrom() on an unconnected UDP socket.
        for sock in (self._tcp, self._udp):
            sock.settimeout(POLL_INTERVAL)
        self._spawn(self._udp_loop)
        self._spawn(self._tcp_accept_loop)
        return self

    def stop(self):
        self._stopping.set()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                _shutdown(sock)
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            _shutdown(sock)
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=UPSTREAM_TIMEOUT + 1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f'dnsproxy-{target.__name__}')
        # Both listener threads spawn; forget finished threads so a long
        # benchmark does not pile them up.
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _track(self, sock, add=True):
        with self._lock:
            (self._conns.add if add else self._conns.discard)(sock)

    # -- UDP ---------------------------------------------------------------

    def _udp_loop(self):
        while not self._stopping.is_set():
            try:
                wire, client = self._udp.recvfrom(UDP_MAX)
            except TimeoutError:
                continue
            except OSError:
                return
            if not wire:
                continue
            self._count(wire)
            if self._lose('query'):
                continue
            # One thread and one upstream socket per datagram: replies are
            # matched to clients by socket, never by rewriting message ids.
            self._spawn(self._udp_relay, wire, client)

    def _udp_relay(self, wire, client):
        family = socket.AF_INET6 if ':' in self.upstream[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as up:
            self._track(up)
            try:
                up.settimeout(UPSTREAM_TIMEOUT)
                up.connect(self.upstream)
                up.send(wire)
                reply = up.recv(UDP_MAX)
                if not self._lose('answer'):
                    self._udp.sendto(reply, client)
            except OSError:
                pass   # timeout or refused: the client times out as it would anyway
            finally:
                self._track(up, add=False)

    # -- TCP ---------------------------------------------------------------

    def _tcp_accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, _addr = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self._spawn(self._tcp_session, client)

    def _tcp_session(self, client):
        try:
            upstream = socket.create_connection(self.upstream, timeout=UPSTREAM_TIMEOUT)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._track(client)
        self._track(upstream)
        # Server->client is copied raw (an AXFR answer is many messages);
        # client->server is parsed for counting in this thread.
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        try:
            _pump(client, upstream, self._message_counter())
        finally:
            back.join(timeout=UPSTREAM_TIMEOUT)
            for sock in (client, upstream):
                self._track(sock, add=False)
                sock.close()

    def _message_counter(self):
        """A chunk callback that counts each complete length-prefixed message (see the module docstring)."""
        pending = bytearray()

        def count_chunk(chunk):
            pending.extend(chunk)
            while len(pending) >= 2:
                size = struct.unpack('!H', pending[:2])[0]
                if len(pending) < 2 + size:
                    break
                self._count(bytes(pending[2:2 + size]))
                del pending[:2 + size]
        return count_chunk


def _pump(src, dst, on_chunk=None):
    """Copy bytes until EOF, then pass the EOF on; ``on_chunk`` sees each chunk before it is forwarded."""
    while True:
        try:
            chunk = src.recv(65536)
        except OSError:
            chunk = b''
        if not chunk:
            _shutdown(dst, socket.SHUT_WR)
            return
        if on_chunk is not None:
            on_chunk(chunk)
        try:
            dst.sendall(chunk)
        except OSError:
            _shutdown(src, socket.SHUT_RD)
            return


def _shutdown(sock, how=socket.SHUT_RDWR):
    # shutdown() wakes a thread blocked in recv()/accept() on the socket,
    # which close() alone does not reliably do on Linux.
    try:
        sock.shutdown(how)
    except OSError:
        pass
    if how == socket.SHUT_RDWR:
        try:
            sock.close()
        except OSError:
            pass
