import socket
import struct
import threading
import time

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import LiveError, parse_nameserver


@pytest.mark.parametrize('text, expected', [
    ('127.0.0.1', ('127.0.0.1', 53)),
    ('127.0.0.1:5300', ('127.0.0.1', 5300)),
    ('::1', ('::1', 53)),
    ('[::1]:5300', ('::1', 5300)),
])
def test_parse_nameserver(text, expected):
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize('text', ['ns1.example.com', '127.0.0.1:0', '127.0.0.1:70000', '[::1]5300', '1.2.3'])
def test_parse_nameserver_rejects(text):
    with pytest.raises(LiveError, match='nameservers'):
        parse_nameserver(text)


def _serve(chunks, pause=0.0):
    """A socket pair whose far end sends ``chunks`` (with a pause before each) and closes."""
    ours, theirs = socket.socketpair()

    def send():
        try:
            for chunk in chunks:
                time.sleep(pause)
                theirs.sendall(chunk)
        except OSError:
            pass
        theirs.close()
    threading.Thread(target=send, daemon=True).start()
    return ours


def _facts():
    return {'status': None, 'location': None, 'content_type': None, 'body': None, 'truncated': False}


def test_read_response_with_length():
    facts = _facts()
    sock = _serve([b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nab', b'cdeEXTRA'])
    _live._read_response(sock, facts, time.monotonic() + 5)
    assert (facts['status'], facts['content_type'], facts['body'], facts['truncated']) == (200, 'text/plain', b'abcde', False)


def test_read_response_redirect_is_reported_not_followed():
    facts = _facts()
    sock = _serve([b'HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.example/x\r\nContent-Length: 0\r\n\r\n'])
    _live._read_response(sock, facts, time.monotonic() + 5)
    assert facts['status'] == 301 and facts['location'] == 'https://elsewhere.example/x'


def test_read_response_caps_the_body_at_64_kib():
    facts = _facts()
    body = b'x' * (70 * 1024)
    sock = _serve([b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(body), body])
    _live._read_response(sock, facts, time.monotonic() + 5)
    assert facts['truncated'] is True and len(facts['body']) == 64 * 1024


def test_read_response_chunked():
    facts = _facts()
    sock = _serve([b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'])
    _live._read_response(sock, facts, time.monotonic() + 5)
    assert facts['body'] == b'abcde'


def test_read_response_honours_the_deadline_when_the_body_stalls():
    sock = _serve([b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'] + [b'x'] * 100, pause=0.2)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        _live._read_response(sock, _facts(), time.monotonic() + 1.0)
    assert time.monotonic() - started < 3.0


# -- the resolver's exchange with nameservers ----------------------------------

class FakeNameserver(object):
    """A UDP socket on loopback that answers the n-th query (from 1) with ``reply(query, n)``: a Message, bytes or None."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.1)
        self.address = '127.0.0.1:%d' % self.sock.getsockname()[1]
        self.queries = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                wire, client = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            query = dns.message.from_wire(wire)
            self.queries.append(query)
            answer = self.reply(query, len(self.queries))
            if answer is not None:
                self.sock.sendto(answer if isinstance(answer, bytes) else answer.to_wire(), client)

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def nameservers():
    started = []

    def start(reply):
        started.append(FakeNameserver(reply))
        return started[-1]
    yield start
    for server in started:
        server.close()


def _answer(query, *records, **kwargs):
    response = dns.message.make_response(query)
    response.set_rcode(kwargs.get('rcode', dns.rcode.NOERROR))
    for text in records:
        name, ttl, rdtype, data = text.split(' ', 3)
        response.answer.append(dns.rrset.from_text(name, int(ttl), 'IN', rdtype, data))
    return response


def _txt(query, _count):
    return _answer(query, '%s 300 TXT "v=STSv1; id=one;"' % query.question[0].name)


def test_a_lost_question_is_sent_again_and_answered(nameservers):
    server = nameservers(lambda query, count: _txt(query, count) if count == 3 else None)
    resolver = _live.Resolver([server.address], timeout=5)
    started = time.monotonic()
    answer = resolver.resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'ok' and answer.rrset[0].strings == (b'v=STSv1; id=one;',)
    # The third send goes out 0.2 + 0.4 s after the first: resent early, not after the whole timeout.
    assert len(server.queries) == 3 and time.monotonic() - started < 2
    assert len(set(query.id for query in server.queries)) == 1   # one question, sent again


def test_an_answer_to_another_question_is_not_taken(nameservers):
    def reply(query, count):
        if count == 1:
            wrong = dns.message.make_query('other.example.com', 'TXT')
            wrong.id = query.id
            return _txt(wrong, count)
        return _txt(query, count)
    server = nameservers(reply)
    answer = _live.Resolver([server.address], timeout=5).resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'ok' and str(answer.rrset.name) == '_mta-sts.example.com.'


def test_a_server_that_fails_is_left_for_the_next(nameservers):
    failing = nameservers(lambda query, count: _answer(query, rcode=dns.rcode.SERVFAIL))
    working = nameservers(_txt)
    answer = _live.Resolver([failing.address, working.address], timeout=5).resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'ok'
    assert len(failing.queries) == 1


def test_every_server_failing_is_named_with_what_it_did(nameservers):
    refusing = nameservers(lambda query, count: _answer(query, rcode=dns.rcode.REFUSED))
    silent = nameservers(lambda query, count: None)
    answer = _live.Resolver([refusing.address, silent.address], timeout=0.5).resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'error'
    assert '%s answered REFUSED' % refusing.address in answer.error
    assert 'no answer from %s within the 0.5 s timeout' % silent.address in answer.error


def test_nxdomain_and_nodata(nameservers):
    server = nameservers(lambda query, count: _answer(query, rcode=dns.rcode.NXDOMAIN if 'gone' in str(query.question[0].name) else 0))
    resolver = _live.Resolver([server.address], timeout=5)
    gone, empty = resolver.resolve_many([('gone.example.com', 'TXT'), ('empty.example.com', 'TXT')])
    assert (gone.status, empty.status) == ('nxdomain', 'nodata')


def test_a_cname_chain_in_one_response_is_followed_and_recorded(nameservers):
    def reply(query, count):
        return _answer(query, '_mta-sts.example.com. 300 CNAME _mta-sts.provider.example.',
                       '_mta-sts.provider.example. 300 TXT "v=STSv1; id=two;"')
    server = nameservers(reply)
    answer = _live.Resolver([server.address], timeout=5).resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'ok' and answer.cname_chain == ['_mta-sts.provider.example']
    assert len(server.queries) == 1


def test_a_cname_without_its_target_data_asks_the_target(nameservers):
    def reply(query, count):
        name = str(query.question[0].name)
        if name == '_mta-sts.example.com.':
            return _answer(query, '_mta-sts.example.com. 300 CNAME _mta-sts.provider.example.')
        return _answer(query, '_mta-sts.provider.example. 300 TXT "v=STSv1; id=two;"')
    server = nameservers(reply)
    answer = _live.Resolver([server.address], timeout=5).resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'ok' and answer.cname_chain == ['_mta-sts.provider.example']
    assert [str(query.question[0].name) for query in server.queries] == ['_mta-sts.example.com.', '_mta-sts.provider.example.']


def test_a_cname_loop_ends(nameservers):
    server = nameservers(lambda query, count: _answer(query, '%s 300 CNAME %s' % (query.question[0].name, query.question[0].name)))
    answer = _live.Resolver([server.address], timeout=5).resolve('loop.example.com', 'TXT')
    assert answer.status == 'error' and 'more than 8 CNAMEs' in answer.error


def test_questions_asked_together_share_one_deadline(nameservers):
    server = nameservers(lambda query, count: None)
    started = time.monotonic()
    answers = _live.Resolver([server.address], timeout=0.6).resolve_many([('a.example', 'TXT'), ('b.example', 'MX'), ('c.example', 'A')])
    assert time.monotonic() - started < 1.2
    assert [answer.status for answer in answers] == ['error'] * 3
    # Each was resent: at 0, 0.2 and 0.6 s at most.
    assert 6 <= len(server.queries) <= 9


def test_no_nameserver_at_all_is_an_error_not_a_crash():
    resolver = _live.Resolver(['127.0.0.1'], timeout=1)
    resolver.servers = []   # as when the system's resolv.conf names none
    answer = resolver.resolve('example.com', 'TXT')
    assert (answer.status, answer.error) == ('error', 'no nameserver to ask')


# -- the response parser: what dnspython reads, at a fraction of the CPU -------------------

def _response_wire(qname, qtype, answer=(), authority=(), rcode=dns.rcode.NOERROR):
    response = _answer(dns.message.make_query(qname, qtype, use_edns=0), *answer, rcode=rcode)
    for text in authority:
        name, ttl, rdtype, data = text.split(' ', 3)
        response.authority.append(dns.rrset.from_text(name, int(ttl), 'IN', rdtype, data))
    return response.to_wire()   # names compressed, as servers send them


@pytest.mark.parametrize('wire', [
    _response_wire('a.example', 'A', ['a.example. 60 A 192.0.2.1', 'a.example. 60 A 192.0.2.2']),
    _response_wire('a.example', 'AAAA', ['a.example. 60 AAAA 2001:db8::1', 'a.example. 60 AAAA ::ffff:192.0.2.1']),
    _response_wire('_mta-sts.a.example', 'TXT', [
        '_mta-sts.a.example. 60 TXT "v=STSv1; " "id=one;"', '_mta-sts.a.example. 60 TXT "" "caf\\195\\169"']),
    _response_wire('a.example', 'MX', ['a.example. 60 MX 10 mx1.a.example.', 'a.example. 60 MX 20 backup.other.example.']),
    _response_wire('_mta-sts.a.example', 'TXT', [
        '_mta-sts.a.example. 60 CNAME _mta-sts.p.example.', '_mta-sts.p.example. 60 TXT "v=STSv1; id=two;"']),
    _response_wire('a.example', 'NS', ['a.example. 60 NS ns1.a.example.', 'a.example. 60 NS ns2.b.example.']),
    _response_wire('gone.a.example', 'TXT', authority=['a.example. 60 SOA ns1.a.example. host.a.example. 1 2 3 4 5'],
                   rcode=dns.rcode.NXDOMAIN),
])
def test_the_parser_reads_what_dnspython_reads(wire):
    ours = _live._Response(wire)
    theirs = dns.message.from_wire(wire)
    assert ours.rcode() == theirs.rcode() and ours.flags == theirs.flags

    def fields(rdata):
        return dict((key, getattr(rdata, key)) for key in ('address', 'strings', 'preference', 'exchange', 'target')
                    if hasattr(rdata, key))
    for mine, real in ((ours.answer, theirs.answer), (ours.authority, theirs.authority)):
        assert [(rrset.name, rrset.rdtype) for rrset in mine] == [(rrset.name, rrset.rdtype) for rrset in real]
        for rrset, real_rrset in zip(mine, real):
            if rrset.rdtype != dns.rdatatype.SOA:
                assert [fields(item) for item in rrset] == [fields(item) for item in real_rrset]


def test_the_parser_refuses_a_compression_loop():
    header = struct.pack('!HHHHHH', 1, 0x8180, 1, 1, 0, 0)
    question = b'\x01a\x00' + struct.pack('!HH', 16, 1)
    looping = b'\xc0' + bytes([12 + len(question)]) + struct.pack('!HHIH', 16, 1, 60, 0)
    with pytest.raises(ValueError, match='loop'):
        _live._Response(header + question + looping)


def test_a_malformed_answer_is_ignored_and_the_real_one_taken(nameservers):
    def reply(query, count):
        wire = _txt(query, count).to_wire()
        return wire[:len(wire) - 30] if count == 1 else wire   # cut inside the answer record
    server = nameservers(reply)
    answer = _live.Resolver([server.address], timeout=5).resolve('_mta-sts.example.com', 'TXT')
    assert answer.status == 'ok' and len(server.queries) == 2
