"""The web and mail half of the lab, checked with the standard library only.

Real nginx and Postfix are started once per module (on random loopback
addresses, so parallel runs do not clash) and driven with ``ssl``,
``http.client`` and ``smtplib`` the way a strict sending MTA would: SNI,
PKIX validation against the lab root only, no redirects, STARTTLS.
"""

import datetime
import http.client
import os
import shutil
import smtplib
import socket
import ssl
import time
import warnings

import pytest
from cryptography import x509

from tests.lab.mail import MailError, MailLab
from tests.lab.pki import LabCA, self_signed
from tests.lab.web import PolicyWeb, WebError, free_loopback_addresses

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason='binds :443 and :25, runs Postfix: needs root'),
    pytest.mark.skipif(not shutil.which('nginx'), reason='nginx not installed'),
    pytest.mark.skipif(not os.path.exists('/usr/lib/postfix/sbin/master'),
                       reason='postfix not installed'),
]

POLICY = b'version: STSv1\r\nmode: enforce\r\nmx: mx1.good.example\r\nmax_age: 604800\r\n'
KIB = 1024

# OpenSSL verification codes (X509_V_ERR_*) as ssl.SSLCertVerificationError.verify_code.
CERT_HAS_EXPIRED = 10
DEPTH_ZERO_SELF_SIGNED_CERT = 18
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
HOSTNAME_MISMATCH = 62


@pytest.fixture(scope='module')
def ca():
    return LabCA()


@pytest.fixture(scope='module')
def bundle(ca, tmp_path_factory):
    return ca.write_bundle(str(tmp_path_factory.mktemp('bundle') / 'ca.pem'))


@pytest.fixture(scope='module')
def client_ctx(bundle):
    """What the validator does: the lab bundle only, hostname checks on."""
    return ssl.create_default_context(cafile=bundle)


@pytest.fixture(scope='module')
def web(ca, tmp_path_factory):
    main, old = free_loopback_addresses(2, port=443)
    w = PolicyWeb(str(tmp_path_factory.mktemp('web')), address=main, ca=ca)
    w.serve('mta-sts.good.example', POLICY)
    w.serve('mta-sts.json.example', POLICY, content_type='application/json')
    w.serve('mta-sts.utf8.example', POLICY + 'note: caf\u00e9\r\n'.encode('utf-8'), content_type='text/plain; charset=utf-8')
    w.serve('mta-sts.expiring.example', POLICY)
    w.cert('mta-sts.expiring.example', 'expiring')
    w.redirect('mta-sts.redirect.example', 'https://mta-sts.good.example/.well-known/mta-sts.txt')
    w.status('mta-sts.notfound.example', 404)
    w.status('mta-sts.error.example', 500)
    w.status('mta-sts.gone.example', 410, body=POLICY)
    w.big('mta-sts.big.example', 70 * KIB)
    w.big('mta-sts.bigchunked.example', 70 * KIB, chunked=True)
    w.stall('mta-sts.stall.example')
    w.stall('mta-sts.hang.example', mode='hang')
    w.stall('mta-sts.silent.example', mode='silent')
    for kind in ('wrong_name', 'expired', 'untrusted', 'self_signed', 'no_chain'):
        host = f'mta-sts.{kind.replace("_", "")}.example'
        w.serve(host, POLICY)
        w.cert(host, kind)
    w.serve('mta-sts.tls11.example', POLICY)
    w.cert('mta-sts.tls11.example', tls_max='TLSv1.1', address=old)
    w.apply()
    yield w
    w.stop()


@pytest.fixture(scope='module')
def mail(ca, tmp_path_factory):
    addrs = free_loopback_addresses(7, port=25)
    lab = MailLab(str(tmp_path_factory.mktemp('mail')), ca)
    lab.add_mx(addrs[0], 'good', name='mx1.good.example')
    lab.add_mx(addrs[1], 'wrong_name', name='mx1.wrong.example')
    lab.add_mx(addrs[2], 'no_starttls', name='mx1.plain.example')
    lab.add_mx(addrs[3], 'expired', name='mx1.expired.example')
    lab.add_mx(addrs[4], 'untrusted', name='mx1.untrusted.example')
    lab.add_mx(addrs[5], 'expiring', name='mx1.expiring.example')
    lab.add_mx(addrs[6], 'old_tls', name='mx1.oldtls.example')
    lab.start()
    yield lab
    lab.stop()


def mx_address(mail, name):
    return next(a for a, _port, _kind, n in mail.mx if n == name)


# -- HTTPS client as a strict sender does it ---------------------------------

class SniConnection(http.client.HTTPSConnection):
    """HTTPS to a given address, with SNI and Host set to ``host``."""

    def __init__(self, address, host, context, timeout=5, port=443):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch(web, host, context, timeout=5, path='/.well-known/mta-sts.txt', address=None):
    conn = SniConnection(address or web.address_of(host), host, context, timeout)
    conn.request('GET', path)
    resp = conn.getresponse()
    return conn, resp


def get(web, host, context, **kwargs):
    conn, resp = fetch(web, host, context, **kwargs)
    try:
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def verify_error(web, host, context):
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        get(web, host, context)
    return info.value


# -- PKI ------------------------------------------------------------------------

def test_pki_chain_and_dates(ca):
    cert_pem, key_pem = ca.issue(['mta-sts.good.example'])
    chain = x509.load_pem_x509_certificates(cert_pem)
    assert len(chain) == 2                       # leaf + intermediate; root only in bundles
    leaf, inter = chain
    assert leaf.issuer == inter.subject and inter.issuer == ca.ca_cert.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ['mta-sts.good.example']
    assert b'PRIVATE KEY' in key_pem
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = x509.load_pem_x509_certificates(ca.issue_expired('x.example')[0])[0]
    assert expired.not_valid_after_utc < now
    assert len(x509.load_pem_x509_certificates(ca.issue('x.example', chain=False)[0])) == 1
    assert ca.untrusted.ca_pem != ca.ca_pem
    ss = x509.load_pem_x509_certificate(self_signed('x.example')[0])
    assert ss.issuer == ss.subject


def test_pki_rsa_and_ip_names(ca):
    cert_pem = ca.issue(['127.0.0.1', 'mx.example'], key_type='rsa')[0]
    leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ['127.0.0.1']
    assert leaf.public_key().key_size == 2048


# -- web: the good case -------------------------------------------------------

def test_good_host_serves_exact_bytes_over_verified_tls(web, client_ctx):
    conn, resp = fetch(web, 'mta-sts.good.example', client_ctx)
    try:
        body = resp.read()
        assert resp.status == 200
        assert body == POLICY                    # CRLF kept, byte for byte
        assert resp.getheader('Content-Type') == 'text/plain'
        assert resp.getheader('Content-Length') == str(len(POLICY))
        assert conn.sock.version() in ('TLSv1.2', 'TLSv1.3')
        peer = conn.sock.getpeercert()
        assert ('DNS', 'mta-sts.good.example') in peer['subjectAltName']
    finally:
        conn.close()


def test_content_type_is_as_configured(web, client_ctx):
    _status, headers, body = get(web, 'mta-sts.json.example', client_ctx)
    assert dict(headers)['Content-Type'] == 'application/json' and body == POLICY


def test_content_type_with_a_charset_parameter(web, client_ctx):
    _status, headers, body = get(web, 'mta-sts.utf8.example', client_ctx)
    assert dict(headers)['Content-Type'] == 'text/plain; charset=utf-8' and body.endswith('caf\u00e9\r\n'.encode('utf-8'))


def _days_left(der):
    cert = x509.load_der_x509_certificate(der)
    not_after = getattr(cert, 'not_valid_after_utc', None) or cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return (not_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400


def test_expiring_certificate_verifies_and_ends_in_a_few_days(web, client_ctx):
    conn, resp = fetch(web, 'mta-sts.expiring.example', client_ctx)
    try:
        assert resp.status == 200 and resp.read() == POLICY
        assert 2.9 < _days_left(conn.sock.getpeercert(binary_form=True)) <= 3
    finally:
        conn.close()


def test_sni_selects_the_host(web, client_ctx):
    with pytest.raises(ssl.SSLError, match='UNRECOGNIZED_NAME'):
        get(web, 'mta-sts.unknown.example', client_ctx)
    no_sni = ssl.create_default_context(cafile=None)
    no_sni.check_hostname = False
    no_sni.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((web.address, 443), timeout=5)
    with pytest.raises(ssl.SSLError, match='UNRECOGNIZED_NAME'):
        no_sni.wrap_socket(raw, server_hostname=None)
    raw.close()


def test_other_paths_and_misdirected_host(web, client_ctx):
    assert get(web, 'mta-sts.good.example', client_ctx, path='/')[0] == 404
    conn = SniConnection(web.address, 'mta-sts.good.example', client_ctx)
    try:
        conn.putrequest('GET', '/.well-known/mta-sts.txt', skip_host=True)
        conn.putheader('Host', 'mta-sts.nobody.example')
        conn.endheaders()
        assert conn.getresponse().status == 421
    finally:
        conn.close()


# -- web: hostile answers ------------------------------------------------------

def test_redirect_is_visible_not_followed(web, client_ctx):
    status, headers, _body = get(web, 'mta-sts.redirect.example', client_ctx)
    assert status == 301
    assert dict(headers)['Location'] == 'https://mta-sts.good.example/.well-known/mta-sts.txt'


@pytest.mark.parametrize('host,code', [('mta-sts.notfound.example', 404),
                                       ('mta-sts.error.example', 500)])
def test_error_status(web, client_ctx, host, code):
    assert get(web, host, client_ctx)[0] == code


def test_error_status_with_a_policy_body(web, client_ctx):
    status, headers, body = get(web, 'mta-sts.gone.example', client_ctx)
    assert (status, body, dict(headers)['Content-Type']) == (410, POLICY, 'text/plain')


def test_big_body(web, client_ctx):
    status, headers, body = get(web, 'mta-sts.big.example', client_ctx)
    assert status == 200 and len(body) == 70 * KIB
    assert dict(headers)['Content-Length'] == str(70 * KIB)
    assert body.startswith(b'version: STSv1\r\nmode: enforce\r\nmx: *.big.example\r\n')


def test_big_body_chunked_has_no_length(web, client_ctx):
    status, headers, body = get(web, 'mta-sts.bigchunked.example', client_ctx)
    headers = dict(headers)
    assert status == 200 and len(body) == 70 * KIB
    assert 'Content-Length' not in headers and headers['Transfer-Encoding'] == 'chunked'


def test_stall_trickles_past_a_deadline(web, client_ctx):
    began = time.monotonic()
    conn, resp = fetch(web, 'mta-sts.stall.example', client_ctx, timeout=3)
    try:
        assert resp.status == 200 and time.monotonic() - began < 1   # headers at once
        total = int(resp.getheader('Content-Length'))
        got = b''
        while time.monotonic() - began < 1.5:
            got += resp.read1(4096)                   # never times out: a byte a second
        assert 0 < len(got) < total
    finally:
        conn.close()


def test_hang_sends_headers_then_nothing(web, client_ctx):
    conn, resp = fetch(web, 'mta-sts.hang.example', client_ctx, timeout=0.5)
    try:
        assert resp.status == 200
        with pytest.raises(TimeoutError):
            resp.read()
    finally:
        conn.close()


def test_silent_never_answers(web, client_ctx):
    with pytest.raises(TimeoutError):
        get(web, 'mta-sts.silent.example', client_ctx, timeout=0.5)


@pytest.mark.parametrize('host,code', [
    ('mta-sts.wrongname.example', HOSTNAME_MISMATCH),
    ('mta-sts.expired.example', CERT_HAS_EXPIRED),
    ('mta-sts.untrusted.example', UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
    ('mta-sts.selfsigned.example', DEPTH_ZERO_SELF_SIGNED_CERT),
    ('mta-sts.nochain.example', UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
])
def test_bad_certificates_fail_verification(web, client_ctx, host, code):
    err = verify_error(web, host, client_ctx)
    assert err.verify_code == code, err.verify_message


def test_tls11_only_host(web, client_ctx):
    with pytest.raises(ssl.SSLError, match='PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL'):
        get(web, 'mta-sts.tls11.example', client_ctx)
    old = ssl.create_default_context(cafile=None, cadata=web.ca.ca_pem.decode())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # TLSv1 is deprecated
        old.minimum_version = ssl.TLSVersion.TLSv1
    old.set_ciphers('DEFAULT:@SECLEVEL=0')
    conn, resp = fetch(web, 'mta-sts.tls11.example', old)
    try:
        assert resp.read() == POLICY and conn.sock.version() == 'TLSv1.1'
    finally:
        conn.close()


def test_access_log_records_sni_and_host(web, client_ctx):
    get(web, 'mta-sts.good.example', client_ctx, path='/.well-known/mta-sts.txt?log-check')
    rows = web.wait_requests(lambda r: 'log-check' in r['request'])
    assert rows and rows[-1]['sni'] == rows[-1]['host'] == 'mta-sts.good.example'
    assert rows[-1]['status'] == 200


def test_apply_restarts_with_new_content(ca, tmp_path, client_ctx):
    (address,) = free_loopback_addresses(1, port=443)
    with PolicyWeb(str(tmp_path), address=address, ca=ca) as w:
        w.serve('mta-sts.change.example', b'one\n').apply()
        assert get(w, 'mta-sts.change.example', client_ctx)[2] == b'one\n'
        w.serve('mta-sts.change.example', b'two\r\n').apply()
        assert get(w, 'mta-sts.change.example', client_ctx)[2] == b'two\r\n'
        assert w.startup_seconds < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 443), timeout=2)


def test_web_refuses_what_it_cannot_do(ca, tmp_path):
    with pytest.raises(ValueError, match='loopback'):
        PolicyWeb(str(tmp_path), address='192.0.2.1', ca=ca)
    w = PolicyWeb(str(tmp_path), ca=ca)
    with pytest.raises(ValueError, match='own address'):
        w.cert('mta-sts.old.example', tls_max='TLSv1.1')
    with pytest.raises(ValueError):
        w.serve('not a host', b'')
    with pytest.raises(ValueError):
        w.redirect('mta-sts.x.example', 'https://x/"; return 200 "pwned')


# -- mail --------------------------------------------------------------------

def smtp_to(mail, name):
    """Connect to the MX called ``name``; TLS will check that name."""
    smtp = smtplib.SMTP(mx_address(mail, name), 25, timeout=5)
    smtp._host = name                 # smtplib passes _host as server_hostname
    return smtp


def test_mx_good_starttls_verifies(mail, client_ctx):
    smtp = smtp_to(mail, 'mx1.good.example')
    try:
        code, text = smtp.ehlo('probe.example')
        assert code == 250 and text.startswith(b'mx1.good.example')
        assert smtp.has_extn('starttls')
        assert smtp.starttls(context=client_ctx)[0] == 220
        assert ('DNS', 'mx1.good.example') in smtp.sock.getpeercert()['subjectAltName']
        assert smtp.sock.version() in ('TLSv1.2', 'TLSv1.3')
        assert smtp.ehlo('probe.example')[0] == 250
    finally:
        smtp.quit()


@pytest.mark.parametrize('name,code', [
    ('mx1.wrong.example', HOSTNAME_MISMATCH),
    ('mx1.expired.example', CERT_HAS_EXPIRED),
    ('mx1.untrusted.example', UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
])
def test_mx_bad_certificates_fail(mail, client_ctx, name, code):
    smtp = smtp_to(mail, name)
    try:
        smtp.ehlo('probe.example')
        assert smtp.has_extn('starttls')
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            smtp.starttls(context=client_ctx)
        assert info.value.verify_code == code, info.value.verify_message
    finally:
        smtp.close()


def test_mx_expiring_certificate_verifies_and_ends_in_a_few_days(mail, client_ctx):
    smtp = smtp_to(mail, 'mx1.expiring.example')
    try:
        smtp.ehlo('probe.example')
        assert smtp.starttls(context=client_ctx)[0] == 220
        assert 2.9 < _days_left(smtp.sock.getpeercert(binary_form=True)) <= 3
    finally:
        smtp.quit()


def test_mx_old_tls_offers_starttls_but_no_tls_a_strict_client_takes(mail, client_ctx):
    smtp = smtp_to(mail, 'mx1.oldtls.example')
    try:
        smtp.ehlo('probe.example')
        assert smtp.has_extn('starttls')
        with pytest.raises(ssl.SSLError) as info:
            smtp.starttls(context=client_ctx)
        assert not isinstance(info.value, ssl.SSLCertVerificationError)
        assert 'PROTOCOL_VERSION' in str(info.value) or 'UNSUPPORTED_PROTOCOL' in str(info.value), info.value
    finally:
        smtp.close()


def test_mx_no_starttls(mail, client_ctx):
    smtp = smtp_to(mail, 'mx1.plain.example')
    try:
        smtp.ehlo('probe.example')
        assert not smtp.has_extn('starttls')
        with pytest.raises(smtplib.SMTPNotSupportedError):
            smtp.starttls(context=client_ctx)
    finally:
        smtp.quit()


def test_mx_accepts_no_mail(mail):
    smtp = smtp_to(mail, 'mx1.plain.example')
    try:
        smtp.ehlo('probe.example')
        assert smtp.mail('probe@lab.invalid')[0] == 250
        code = smtp.rcpt('postmaster@good.example')[0]
        assert code >= 500
    finally:
        smtp.quit()


def test_mail_lab_start_stop(ca, tmp_path):
    (address,) = free_loopback_addresses(1, port=25)
    with MailLab(str(tmp_path), ca).add_mx(address, 'good', name='mx9.good.example') as lab:
        banner, lines = lab.ehlo(address)
        assert banner.startswith('mx9.good.example ESMTP') and 'STARTTLS' in lines
        assert lab.startup_seconds < 2
        deadline = time.monotonic() + 2          # postlogd writes asynchronously
        while 'connect from' not in lab.log_tail() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 'connect from' in lab.log_tail()
    assert lab.stop_seconds < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 25), timeout=2)


def test_busy_address_is_reported(ca, tmp_path):
    (address,) = free_loopback_addresses(1, port=25)
    with socket.socket() as smtp_squatter, socket.socket() as https_squatter:
        smtp_squatter.bind((address, 25))
        smtp_squatter.listen()
        https_squatter.bind((address, 443))
        https_squatter.listen()
        lab = MailLab(str(tmp_path / 'mail'), ca).add_mx(address, 'good', name='mx.busy.example')
        with pytest.raises(MailError, match='already in use'):
            lab.start()
        with pytest.raises(WebError, match='already in use'):
            PolicyWeb(str(tmp_path / 'web'), address=address, ca=ca).apply()
