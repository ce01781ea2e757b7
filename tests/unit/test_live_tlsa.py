"""The live DANE facts: the chain an MX serves (captured also when PKIX fails) and the TLSA lookup
(DO bit sent, AD bit and RRSIGs read, rdata parsed, CNAMEs followed): the chain against an SMTP server on
loopback, the lookup from DNS responses built by dnspython."""

import os
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live
from tests.lab.pki import LabCA, self_signed


# -- the served chain ------------------------------------------------------------

class _StarttlsSession(socketserver.BaseRequestHandler):
    """Greeting, EHLO offering STARTTLS, then the TLS handshake with the server's certificate."""

    def handle(self):
        conn = self.request
        conn.settimeout(5)
        reader = conn.makefile('rb')
        try:
            conn.sendall(b'220 mx.test ESMTP\r\n')
            reader.readline()
            conn.sendall(b'250-mx.test\r\n250 STARTTLS\r\n')
            reader.readline()
            conn.sendall(b'220 go ahead\r\n')
            tls = self.server.context.wrap_socket(conn, server_side=True)
            tls.recv(1024)   # the client's QUIT, or the end of a refused handshake
        except (OSError, ssl.SSLError):
            pass


class StarttlsServer(socketserver.TCPServer):
    """An SMTP server on 127.0.0.1 (an ephemeral port) offering STARTTLS with ``pair``; a context manager."""

    def __init__(self, pair):
        self.directory = tempfile.mkdtemp()
        cert_path = os.path.join(self.directory, 'chain.crt')
        key_path = os.path.join(self.directory, 'key.pem')
        with open(cert_path, 'wb') as f:
            f.write(pair[0])
        with open(key_path, 'wb') as f:
            f.write(pair[1])
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        super().__init__(('127.0.0.1', 0), _StarttlsSession)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
        self._thread.join()
        shutil.rmtree(self.directory)


def pem_certificates(pem):
    """Every certificate of a PEM bundle, as DER, in order."""
    return [cert.public_bytes(Encoding.DER) for cert in x509.load_pem_x509_certificates(pem)]


def probe(server, ca_path=None):
    resolver = _live.Resolver(nameservers=['127.0.0.1:9'], timeout=3)
    return _live.probe_mx(resolver, 'mx.h3.test', ca_path=ca_path, timeout=3, addresses=['127.0.0.1'], port=server.port)


def test_a_self_signed_leaf_is_captured_although_pkix_fails():
    pair = self_signed(['mx.h3.test'])
    with StarttlsServer(pair) as server:
        facts = probe(server)
    assert facts['error'] is None and facts['starttls'] is True
    assert facts['certificate']['valid'] is False
    assert facts['chain_der'] == pem_certificates(pair[0])


def test_a_lab_ca_chain_is_captured_leaf_first_when_it_verifies(tmp_path):
    ca = LabCA()
    pair = ca.issue(['mx.h3.test'])
    chain = pem_certificates(pair[0])
    assert len(chain) == 2   # the leaf and the intermediate the server sends
    with StarttlsServer(pair) as server:
        facts = probe(server, ca_path=ca.write_bundle(str(tmp_path / 'ca.pem')))
    assert facts['certificate']['valid'] is True
    assert facts['chain_der'] == chain


def test_the_same_chain_is_captured_when_the_ca_is_not_trusted():
    pair = LabCA().issue(['mx.h3.test'])
    with StarttlsServer(pair) as server:
        facts = probe(server)
    assert facts['certificate']['valid'] is False
    assert facts['chain_der'] == pem_certificates(pair[0])


def test_no_handshake_no_chain():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    port = listener.getsockname()[1]
    listener.close()   # nothing listens there now
    resolver = _live.Resolver(nameservers=['127.0.0.1:9'], timeout=2)
    facts = _live.probe_mx(resolver, 'mx.h3.test', timeout=2, addresses=['127.0.0.1'], port=port)
    assert facts['error']['kind'] == 'connect' and facts['chain_der'] is None


class OldSocket(object):
    """A TLS socket of a Python without any chain API: only the leaf is known."""

    def getpeercert(self, binary_form=False):
        assert binary_form
        return b'leaf-der'


def test_without_a_chain_api_the_leaf_alone_is_the_chain():
    assert _live.served_chain(OldSocket()) == [b'leaf-der']


# -- the TLSA lookup: the question, and what is read from the responses --------------

TLSA_NAME = '_25._tcp.mx.h3.test.'
HASH = 'ab' * 32
RRSIG = 'TLSA 13 5 300 20270101000000 20260101000000 12345 h3.test. ' + 'AAAA' * 16


def response(qname, rdtype, answer=(), authority=(), ad=False, rcode=dns.rcode.NOERROR):
    """A parsed response as the resolver reads it, built by dnspython (names compressed, as servers send them)."""
    query = dns.message.make_query(qname, rdtype, use_edns=0, want_dnssec=True)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    if ad:
        reply.flags |= dns.flags.AD
    for section, lines in ((reply.answer, answer), (reply.authority, authority)):
        for text in lines:
            name, ttl, rtype, data = text.split(' ', 3)
            section.append(dns.rrset.from_text(name, int(ttl), 'IN', rtype, data))
    return _live._Response(reply.to_wire())


def chase(*responses):
    """The Answer a chase of the TLSA name reaches, reading ``responses`` in turn (one per CNAME hop asked)."""
    state = _live._Chase(TLSA_NAME, 'TLSA')
    for item in responses:
        if not state.take(item, within=True):
            break
    return _live.tlsa_facts(TLSA_NAME.rstrip('.'), state.answer)


def test_the_tlsa_question_carries_the_do_bit_and_the_others_do_not():
    asked = dns.message.from_wire(_live._Question([('127.0.0.1', 53)], TLSA_NAME, 'TLSA', True, dnssec=True).wire)
    assert asked.ednsflags & dns.flags.DO and asked.flags & dns.flags.RD
    assert asked.question[0].rdtype == dns.rdatatype.TLSA
    plain = dns.message.from_wire(_live._Question([('127.0.0.1', 53)], TLSA_NAME, 'TXT', True).wire)
    assert not plain.ednsflags & dns.flags.DO and plain.edns == 0


def test_a_validated_signed_answer_is_authenticated_and_its_records_read():
    facts = chase(response(TLSA_NAME, 'TLSA', ['%s 300 TLSA 3 1 1 %s' % (TLSA_NAME, HASH), '%s 300 TLSA 2 0 0 30820102abcd' % TLSA_NAME,
                                               '%s 300 RRSIG %s' % (TLSA_NAME, RRSIG)], ad=True))
    assert facts == {'name': TLSA_NAME.rstrip('.'), 'status': 'ok', 'error': None, 'cname_chain': [],
                     'records': ['3 1 1 ' + HASH, '2 0 0 30820102abcd'], 'authenticated': True, 'signed': True,
                     'authoritative': False}


def test_an_unsigned_answer_is_neither_signed_nor_authenticated():
    facts = chase(response(TLSA_NAME, 'TLSA', ['%s 300 TLSA 3 1 1 %s' % (TLSA_NAME, HASH)]))
    assert (facts['status'], facts['records'], facts['authenticated'], facts['signed']) == ('ok', ['3 1 1 ' + HASH], False, False)


def test_signed_but_not_validated_and_from_authoritative_servers():
    signed = response(TLSA_NAME, 'TLSA', ['%s 300 TLSA 3 1 1 %s' % (TLSA_NAME, HASH), '%s 300 RRSIG %s' % (TLSA_NAME, RRSIG)])
    facts = chase(signed)
    assert (facts['authenticated'], facts['signed']) == (False, True)
    # An authoritative server never sets AD; even if one did, it is no validation.
    state = _live._Chase(TLSA_NAME, 'TLSA')
    state.take(response(TLSA_NAME, 'TLSA', ['%s 300 TLSA 3 1 1 %s' % (TLSA_NAME, HASH)], ad=True), within=False)
    facts = _live.tlsa_facts(TLSA_NAME, state.answer, authoritative=True)
    assert (facts['authenticated'], facts['authoritative']) == (False, True)


def test_no_tlsa_in_a_signed_zone_is_a_signed_nodata():
    soa = 'h3.test. 300 SOA ns.h3.test. host.h3.test. 1 2 3 4 5'
    facts = chase(response(TLSA_NAME, 'TLSA', authority=[soa, 'h3.test. 300 RRSIG SOA 13 2 300 20270101000000 '
                                                         '20260101000000 12345 h3.test. ' + 'AAAA' * 16], ad=True))
    assert (facts['status'], facts['records'], facts['authenticated'], facts['signed']) == ('nodata', [], True, True)
    gone = chase(response(TLSA_NAME, 'TLSA', authority=[soa], rcode=dns.rcode.NXDOMAIN))
    assert (gone['status'], gone['signed']) == ('nxdomain', False)


def test_a_cname_is_followed_and_the_chain_is_only_as_secure_as_its_weakest_response():
    target = '_25._tcp.mx.provider.test.'
    hop = response(TLSA_NAME, 'TLSA', ['%s 300 CNAME %s' % (TLSA_NAME, target)], ad=True)
    end_secure = response(target, 'TLSA', ['%s 300 TLSA 3 1 1 %s' % (target, HASH)], ad=True)
    end_insecure = response(target, 'TLSA', ['%s 300 TLSA 3 1 1 %s' % (target, HASH)])
    secure = chase(hop, end_secure)
    assert (secure['cname_chain'], secure['records'], secure['authenticated']) == (['_25._tcp.mx.provider.test'], ['3 1 1 ' + HASH], True)
    assert chase(hop, end_insecure)['authenticated'] is False


def test_a_truncated_tlsa_record_is_a_malformed_response():
    header = struct.pack('!HHHHHH', 1, 0x8180, 1, 1, 0, 0)
    question = b'\x01a\x00' + struct.pack('!HH', 52, 1)
    short = b'\xc0\x0c' + struct.pack('!HHIH', 52, 1, 60, 2) + b'\x03\x01'
    with pytest.raises(ValueError, match='TLSA'):
        _live._Response(header + question + short)


def test_the_tlsa_name_of_a_service():
    assert _live.tlsa_name('mx.example.com') == '_25._tcp.mx.example.com'
    assert _live.tlsa_name('mx.example.com', 465) == '_465._tcp.mx.example.com'
