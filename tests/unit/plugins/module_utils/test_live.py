import socket
import threading
import time

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
