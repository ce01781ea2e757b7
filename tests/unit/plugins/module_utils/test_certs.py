import datetime

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _certs
from tests.lab.pki import LabCA

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope='module')
def ca():
    return LabCA()


@pytest.fixture(scope='module')
def pair(ca):
    return ca.issue(['mta-sts.example.com', '*.example.net'], not_before=NOW - DAY, not_after=NOW + 30 * DAY)


def test_read_certificate_reads_the_leaf_of_a_chain(ca, pair):
    info = _certs.read_certificate(*pair)
    assert info.names == ['mta-sts.example.com', '*.example.net']
    assert abs((info.not_after - (NOW + 30 * DAY)).total_seconds()) < 2
    assert pair[0].count(b'BEGIN CERTIFICATE') == 2


def test_rsa_keys_are_read_too(ca):
    info = _certs.read_certificate(*ca.issue('mta-sts.example.org', key_type='rsa'))
    assert info.names == ['mta-sts.example.org']


@pytest.mark.parametrize('data, reason', [
    (b'', 'certificate holds no PEM certificate'),
    (b'not a certificate\n', 'certificate holds no PEM certificate'),
    (b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'certificate is not a valid PEM certificate'),
])
def test_a_malformed_certificate_is_named(pair, data, reason):
    with pytest.raises(_certs.CertificateError, match='^' + reason):
        _certs.read_certificate(data, pair[1])


def test_a_malformed_key_is_named(pair):
    with pytest.raises(_certs.CertificateError, match='^private key is not a valid PEM private key'):
        _certs.read_certificate(pair[0], b'-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')


def test_an_encrypted_key_is_refused_with_the_reason(pair):
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(pair[1], password=None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b'secret'))
    with pytest.raises(_certs.CertificateError, match='encrypted'):
        _certs.read_certificate(pair[0], encrypted)


def test_a_key_of_another_certificate_does_not_match(ca, pair):
    other = ca.issue('mta-sts.example.com')
    with pytest.raises(_certs.CertificateError, match='private key does not match the certificate'):
        _certs.read_certificate(pair[0], other[1])


def test_the_leaf_must_come_first(ca, pair):
    # Chain first, then the leaf: the key matches the second certificate, which nginx would not serve as the leaf.
    with pytest.raises(_certs.CertificateError, match='does not match'):
        _certs.read_certificate(ca.chain_pem + pair[0], pair[1])


@pytest.mark.parametrize('pattern, host, covered', [
    ('mta-sts.example.com', 'mta-sts.example.com', True),
    ('MTA-STS.Example.COM', 'mta-sts.example.com', True),
    ('mta-sts.example.com', 'mta-sts.example.org', False),
    ('*.example.com', 'mta-sts.example.com', True),
    ('*.example.com', 'MTA-STS.EXAMPLE.COM', True),
    ('*.example.com', 'a.mta-sts.example.com', False),
    ('*.com', 'mta-sts.example.com', False),
    ('*.example.com', 'example.com', False),
    ('mta-sts.*.com', 'mta-sts.example.com', False),
    ('m*.example.com', 'mta-sts.example.com', False),
])
def test_name_covers_one_label_per_wildcard(pattern, host, covered):
    assert _certs.name_covers(pattern, host) is covered
    # The lookup used for certificates with many names agrees (names come lower case from dns_names).
    info = _certs.CertificateInfo([pattern.lower(), 'other.example'], NOW, NOW)
    assert info.covers(host.lower()) is covered


def _common_name_only(host):
    """A self-signed certificate with ``host`` as its subject's common name and no SAN extension."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_check_host_uses_the_san_only_never_the_common_name():
    info = _certs.read_certificate(*_common_name_only('mta-sts.example.com'))
    assert info.names == []
    with pytest.raises(_certs.CertificateError, match=r'does not cover mta-sts.example.com \(subject alternative '
                                                      r'names: none'):
        _certs.check_host(info, 'mta-sts.example.com', NOW)


def test_check_host_names_the_uncovered_host(pair):
    info = _certs.read_certificate(*pair)
    _certs.check_host(info, 'mta-sts.example.com', NOW)
    _certs.check_host(info, 'mta-sts.example.net', NOW)
    with pytest.raises(_certs.CertificateError, match='does not cover mta-sts.example.org'):
        _certs.check_host(info, 'mta-sts.example.org', NOW)


def test_validity_window_uses_the_clock_given(pair):
    info = _certs.read_certificate(*pair)
    _certs.check_host(info, 'mta-sts.example.com', NOW + 29 * DAY)
    assert _certs.days_left(info, NOW + 29 * DAY) == 0
    assert _certs.days_left(info, NOW) == 29
    with pytest.raises(_certs.CertificateError, match='expired at'):
        _certs.check_host(info, 'mta-sts.example.com', NOW + 30 * DAY)
    with pytest.raises(_certs.CertificateError, match='not valid yet'):
        _certs.check_host(info, 'mta-sts.example.com', NOW - 2 * DAY)


def test_iso_utc():
    moment = datetime.datetime(2027, 3, 1, 13, 5, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert _certs.iso_utc(moment) == '2027-03-01T12:05:09Z'


WWW = 33
NOGROUP = 65534


@pytest.mark.parametrize('mode, owner, group, uid, gids, readable', [
    (0o600, 0, 0, 0, {0}, True),                  # root reads everything
    (0o000, WWW, WWW, 0, {0}, True),
    (0o600, 0, 0, WWW, {WWW}, False),             # the issue's case: root's 0600 key, worker www-data
    (0o640, 0, WWW, WWW, {WWW}, True),            # group www-data may read
    (0o640, 0, NOGROUP, WWW, {WWW}, False),
    (0o640, 0, NOGROUP, WWW, {WWW, NOGROUP}, True),  # a supplementary group counts
    (0o400, WWW, 0, WWW, {WWW}, True),
    (0o044, WWW, WWW, WWW, {WWW}, False),         # the owner's bits apply to the owner even when others may read
    (0o604, 0, 0, WWW, {WWW}, True),
])
def test_can_read_follows_the_posix_classes(mode, owner, group, uid, gids, readable):
    assert _certs.can_read(mode, owner, group, uid, gids) is readable


@pytest.mark.parametrize('mode, readable', [(0o700, False), (0o711, True), (0o750, False), (0o755, True)])
def test_can_search_needs_the_execute_bit(mode, readable):
    assert _certs.can_search(mode, 0, 0, WWW, {WWW}) is readable
