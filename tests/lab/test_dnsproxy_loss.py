"""The DNS proxy's lossy mode: it loses UDP datagrams it is told to, counts each loss, and nothing else.

They need ``knotd`` (Debian package ``knot``) and skip without it.
"""

import os
import select
import shutil
import socket
import time

import dns.exception
import dns.message
import dns.query
import pytest

from .dnsproxy import CountingDnsProxy
from .knot import KnotLab

pytestmark = pytest.mark.skipif(shutil.which('knotd') is None and not os.path.exists(
    '/usr/sbin/knotd'), reason='knotd (Debian package knot) not installed')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with KnotLab(tmp_path_factory.mktemp('knot'), ['loss.example']) as running:
        yield running


def _answers_to(port, count, wait=2.0):
    """Sends ``count`` queries at once, each from its own socket; how many got their answer within ``wait``."""
    sockets = []
    for index in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(('127.0.0.1', port))
        sock.send(dns.message.make_query('n%d.loss.example.' % index, 'TXT').to_wire())
        sockets.append(sock)
    answered = set()
    deadline = time.monotonic() + wait
    while len(answered) < count and time.monotonic() < deadline:
        readable, _w, _x = select.select([s for s in sockets if s not in answered], [], [], deadline - time.monotonic())
        for sock in readable:
            dns.message.from_wire(sock.recv(65535))
            answered.add(sock)
    for sock in sockets:
        sock.close()
    return len(answered)


def test_everything_lost_over_udp_but_tcp_still_answers(lab):
    with CountingDnsProxy(lab.address, lab.port, drop=1.0) as proxy:
        query = dns.message.make_query('loss.example.', 'SOA')
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(query, '127.0.0.1', port=proxy.listen_port, timeout=0.5)
        assert dns.query.tcp(query, '127.0.0.1', port=proxy.listen_port, timeout=5).answer
        assert proxy.dropped() == {'query': 1, 'answer': 0}
        assert proxy.counts()['QUERY/SOA'] == 2   # a lost query was still sent by the client


def test_a_share_is_lost_each_way_and_every_loss_is_counted(lab):
    count = 200
    with CountingDnsProxy(lab.address, lab.port, drop=0.3, seed=7) as proxy:
        answered = _answers_to(proxy.listen_port, count)
        dropped = proxy.dropped()
        assert proxy.counts()['QUERY/TXT'] == count
    assert answered == count - dropped['query'] - dropped['answer']
    assert 0.15 * count < dropped['query'] < 0.45 * count
    assert 0.15 * (count - dropped['query']) < dropped['answer'] < 0.45 * (count - dropped['query'])


def test_without_drop_nothing_is_lost(lab):
    with CountingDnsProxy(lab.address, lab.port) as proxy:
        assert _answers_to(proxy.listen_port, 50) == 50
        assert proxy.dropped() == {'query': 0, 'answer': 0}


def test_drop_must_be_a_share():
    with pytest.raises(ValueError, match='drop'):
        CountingDnsProxy('127.0.0.1', 53, drop=30)
