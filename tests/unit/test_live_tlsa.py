"""The live DANE facts: the chain an MX serves (captured also when PKIX fails) and the TLSA lookup
(DO bit sent, AD bit and RRSIGs read, rdata parsed, CNAMEs followed), against servers on loopback."""

import os
import socket
import ssl
import tempfile
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live
from tests.lab.pki import LabCA, self_signed


# -- the served chain ------------------------------------------------------------

class StarttlsServer(object):
    """A one-connection-at-a-time SMTP server on 127.0.0.1 (ephemeral port) offering STARTTLS with ``pair``."""

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
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(4)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _peer = self.listener.accept()
            except socket.timeout:
                continue
            try:
                self._session(conn)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def _session(self, conn):
        conn.settimeout(5)
        reader = conn.makefile('rb')
        conn.sendall(b'220 mx.test ESMTP\r\n')
        reader.readline()
        conn.sendall(b'250-mx.test\r\n250 STARTTLS\r\n')
        reader.readline()
        conn.sendall(b'220 go ahead\r\n')
        tls = self.context.wrap_socket(conn, server_side=True)
        tls.recv(1024)   # the client's QUIT, or the end of a refused handshake

    def close(self):
        self._stop.set()
        self._thread.join()
        self.listener.close()


@pytest.fixture
def smtp_server():
    started = []

    def start(pair):
        started.append(StarttlsServer(pair))
        return started[-1]
    yield start
    for server in started:
        server.close()


def pem_certificates(pem):
    """Every certificate of a PEM bundle, as DER, in order."""
    return [cert.public_bytes(Encoding.DER) for cert in x509.load_pem_x509_certificates(pem)]


def probe(server, ca_path=None):
    resolver = _live.Resolver(nameservers=['127.0.0.1:9'], timeout=3)
    return _live.probe_mx(resolver, 'mx.h3.test', ca_path=ca_path, timeout=3, addresses=['127.0.0.1'], port=server.port)


def test_a_self_signed_leaf_is_captured_although_pkix_fails(smtp_server):
    pair = self_signed(['mx.h3.test'])
    facts = probe(smtp_server(pair))
    assert facts['error'] is None and facts['starttls'] is True
    assert facts['certificate']['valid'] is False
    assert facts['chain_der'] == pem_certificates(pair[0])


def test_a_lab_ca_chain_is_captured_leaf_first_when_it_verifies(smtp_server, tmp_path):
    ca = LabCA()
    pair = ca.issue(['mx.h3.test'])
    chain = pem_certificates(pair[0])
    assert len(chain) == 2   # the leaf and the intermediate the server sends
    facts = probe(smtp_server(pair), ca_path=ca.write_bundle(str(tmp_path / 'ca.pem')))
    assert facts['certificate']['valid'] is True
    assert facts['chain_der'] == chain


def test_the_same_chain_is_captured_when_the_ca_is_not_trusted(smtp_server):
    pair = LabCA().issue(['mx.h3.test'])
    facts = probe(smtp_server(pair))
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
