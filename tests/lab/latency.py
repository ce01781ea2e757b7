"""Real-world round trips on loopback: a DNS forwarder and TCP proxies that answer after a delay.

Loopback answers in microseconds and netem is not available, so a benchmark
would only measure CPU. This puts latency back where a client waits for it:

* ``--dns LISTEN=UPSTREAM``: a DNS forwarder (UDP and TCP on the same port)
  that answers each query ``delay`` after it arrived. Every query is
  forwarded and answered on its own, so many queries wait at the same time:
  the delay is latency, not a queue.
* ``--tcp LISTEN=UPSTREAM``: a TCP proxy whose server->client direction is a
  delay line: every chunk the server sends leaves ``delay`` after it
  arrived (order kept, nothing waits behind another chunk's delay). So each
  request/answer exchange (the SMTP banner, each SMTP reply, the TLS
  server flight, the HTTP response) costs ``delay``, as a round trip does.
  Client->server bytes pass at once; a one-way delay of one round trip is
  all a client can tell apart. The TCP handshake itself is not delayed (the
  kernel completes it), so a real connection costs one round trip more
  than here: the lab errs on the side of less latency.

Addresses are ``ip:port``, loopback only. It runs as its own process
(``LatencyLab`` starts it), so its event loop never competes for the GIL
with the code being measured; the process exits on SIGTERM or when its
stdin closes, so it cannot outlive whoever started it.

    python -m tests.lab.latency --delay-ms 20 --dns 127.0.0.3:5353=127.0.0.3:5300 \\
        --tcp 127.0.0.2:443=127.0.0.2:8443
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSTREAM_TIMEOUT = 5.0


def endpoint(text):
    """``'ip:port'`` -> ``(ip, port)``, loopback only."""
    address, _sep, port = text.rpartition(':')
    address = address.strip('[]')
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f'lab address must be loopback, got {address!r}')
    return address, int(port)


class _Tasks:
    """Keeps a reference to every running task (asyncio holds only weak ones)."""

    def __init__(self):
        self._running = set()

    def spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)


TASKS = _Tasks()


async def _until(due):
    await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))


# -- DNS -------------------------------------------------------------------

async def _ask_udp(upstream, wire):
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET6 if ':' in upstream[0] else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(upstream)
        await loop.sock_sendall(sock, wire)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), UPSTREAM_TIMEOUT)


async def _ask_tcp(upstream, wire):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*upstream), UPSTREAM_TIMEOUT)
    try:
        writer.write(struct.pack('!H', len(wire)) + wire)
        size = struct.unpack('!H', await asyncio.wait_for(reader.readexactly(2), UPSTREAM_TIMEOUT))[0]
        return await asyncio.wait_for(reader.readexactly(size), UPSTREAM_TIMEOUT)
    finally:
        writer.close()


class _DnsUdp(asyncio.DatagramProtocol):
    def __init__(self, upstream, delay):
        self.upstream, self.delay, self.transport = upstream, delay, None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        TASKS.spawn(self._answer(data, addr, asyncio.get_running_loop().time() + self.delay))

    async def _answer(self, wire, client, due):
        try:
            reply = await _ask_udp(self.upstream, wire)
        except (OSError, asyncio.TimeoutError):
            return  # the client times out, as it would with a lost answer
        await _until(due)
        self.transport.sendto(reply, client)


def _dns_tcp(upstream, delay):
    async def session(reader, writer):
        async def answer(wire, due):
            try:
                reply = await _ask_tcp(upstream, wire)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                return
            await _until(due)
            writer.write(struct.pack('!H', len(reply)) + reply)

        pending = []
        try:
            while True:
                size = struct.unpack('!H', await reader.readexactly(2))[0]
                wire = await reader.readexactly(size)
                # Answered on its own: pipelined queries do not wait for each other.
                pending.append(asyncio.ensure_future(answer(wire, asyncio.get_running_loop().time() + delay)))
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            writer.close()  # shutting down
            return
        # The client may half-close after its last query: its answers still go out.
        await asyncio.gather(*pending, return_exceptions=True)
        writer.close()
    return session


# -- TCP proxy -------------------------------------------------------------

async def _delay_line(reader, writer, delay):
    """Copy with every chunk held back ``delay`` from its arrival (EOF too), none behind another's delay."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        try:
            while True:
                chunk = await reader.read(65536)
                queue.put_nowait((loop.time() + delay, chunk))
                if not chunk:
                    return
        except OSError:
            queue.put_nowait((loop.time(), b''))

    TASKS.spawn(read())
    try:
        while True:
            due, chunk = await queue.get()
            await _until(due)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


def _proxy(upstream, delay):
    async def session(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.wait_for(asyncio.open_connection(*upstream), UPSTREAM_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            client_writer.close()
            return
        try:
            # Only the server's flights are delayed; the client's requests go straight through.
            await asyncio.gather(_delay_line(client_reader, server_writer, 0.0), _delay_line(server_reader, client_writer, delay))
        except asyncio.CancelledError:
            pass  # shutting down
        finally:
            server_writer.close()
            client_writer.close()
    return session


# -- the process -------------------------------------------------------------

async def serve(delay, dns_routes, tcp_routes):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    servers = []
    for listen, upstream in dns_routes:
        transport, _protocol = await loop.create_datagram_endpoint(lambda u=upstream: _DnsUdp(u, delay), local_addr=listen)
        servers.append(transport)
        servers.append(await asyncio.start_server(_dns_tcp(upstream, delay), *listen, reuse_address=True))
    for listen, upstream in tcp_routes:
        servers.append(await asyncio.start_server(_proxy(upstream, delay), *listen, reuse_address=True, backlog=512))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def watch_stdin():
        await stdin.read()  # EOF: whoever started us is gone
        stop.set()
    TASKS.spawn(watch_stdin())
    print('ready', flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--delay-ms', type=float, default=20.0)
    parser.add_argument('--dns', action='append', default=[], metavar='LISTEN=UPSTREAM')
    parser.add_argument('--tcp', action='append', default=[], metavar='LISTEN=UPSTREAM')
    args = parser.parse_args(argv)

    def routes(texts):
        return [tuple(endpoint(part) for part in text.split('=')) for text in texts]
    asyncio.run(serve(args.delay_ms / 1000.0, routes(args.dns), routes(args.tcp)))
    return 0


class LatencyLab:
    """Starts ``python -m tests.lab.latency`` with ``dns``/``tcp`` routes (``[((ip, port), (ip, port))]``)."""

    def __init__(self, delay_ms, dns=(), tcp=()):
        self.argv = [sys.executable, '-m', 'tests.lab.latency', '--delay-ms', str(delay_ms)]
        for option, routes in (('--dns', dns), ('--tcp', tcp)):
            for listen, upstream in routes:
                self.argv += [option, '%s:%d=%s:%d' % (listen + upstream)]
        self._proc = None

    def start(self):
        self._proc = subprocess.Popen(self.argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self._proc.stdout.readline().strip() != b'ready':
            self.stop()
            raise RuntimeError('the latency lab did not start (see its messages above)')
        return self

    def stop(self):
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdin.close()
            proc.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == '__main__':
    sys.exit(main())
