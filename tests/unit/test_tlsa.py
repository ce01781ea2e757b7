"""The pure TLSA core: record data from certificates and keys, parameter checks, and matching a served chain.

The expected digests come from ``openssl`` (an independent implementation), never from the code under test.
"""

import hashlib
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import decode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import (
    DEFAULT, association, check_parameters, load_material, parameter_advice, record_matches, spki_of, tlsa_value,
    usable,
)
from tests.lab.pki import LabCA, key_pem, new_key, self_signed


def openssl(args, data):
    return subprocess.run(['openssl'] + args, input=data, check=True, capture_output=True).stdout


def openssl_spki_der(cert_pem):
    """The certificate's SubjectPublicKeyInfo, as openssl extracts it."""
    return openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-noout', '-pubkey'], cert_pem))


def openssl_cert_der(cert_pem):
    return openssl(['x509', '-outform', 'DER'], cert_pem)


def chain_der(chain_pem):
    return [cert.public_bytes(serialization.Encoding.DER) for cert in x509.load_pem_x509_certificates(chain_pem)]


@pytest.fixture(scope='module')
def lab_ca():
    return LabCA()


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_3_1_1_of_a_certificate_is_the_sha256_of_its_spki_as_openssl_computes_it(key_type):
    cert_pem, _key = self_signed(['mx1.example.com'], key_type=key_type)
    expected = hashlib.sha256(openssl_spki_der(cert_pem)).hexdigest()
    material = load_material(cert_pem, 'current')
    assert material.kind == 'certificate'
    assert material.names == ['mx1.example.com']
    assert material.not_after is not None
    assert tlsa_value(material) == (3, 1, 1, expected)
    # The value is what the DNS codec reads back from its presentation form.
    assert decode('TLSA', '3 1 1 ' + expected.upper()) == tlsa_value(material)


def test_every_selector_and_matching_type_against_openssl():
    cert_pem, _key = self_signed(['mx1.example.com'], key_type='rsa')
    material = load_material(cert_pem.decode('ascii'), 'current')
    spki, cert = openssl_spki_der(cert_pem), openssl_cert_der(cert_pem)
    assert association(material, 1, 0) == spki.hex()
    assert association(material, 1, 2) == hashlib.sha512(spki).hexdigest()
    assert association(material, 0, 0) == cert.hex()
    assert association(material, 0, 1) == hashlib.sha256(cert).hexdigest()
    assert tlsa_value(material, 2, 0, 2) == (2, 0, 2, hashlib.sha512(cert).hexdigest())


@pytest.mark.parametrize('key_type', ['ec', 'rsa'])
def test_a_public_key_gives_the_same_spki_record_as_its_certificate(key_type):
    cert_pem, _key = self_signed(['mx1.example.com'], key_type=key_type)
    public_pem = openssl(['x509', '-noout', '-pubkey'], cert_pem)
    material = load_material(public_pem, 'next')
    assert material.kind == 'public_key' and material.der is None and material.names == [] and material.not_after is None
    assert tlsa_value(material) == tlsa_value(load_material(cert_pem, 'current'))


def test_a_pkcs1_rsa_public_key_is_wrapped_into_its_spki():
    cert_pem, _key = self_signed(['mx1.example.com'], key_type='rsa')
    pkcs1 = openssl(['rsa', '-pubin', '-RSAPublicKey_out'], openssl(['x509', '-noout', '-pubkey'], cert_pem))
    assert b'BEGIN RSA PUBLIC KEY' in pkcs1
    assert load_material(pkcs1, 'next').spki == openssl_spki_der(cert_pem)


def test_the_first_certificate_of_a_chain_is_the_one_used(lab_ca):
    chain_pem, _key = lab_ca.issue(['mx1.example.com'])
    material = load_material(chain_pem, 'current')
    assert material.der == chain_der(chain_pem)[0]
    assert material.spki == openssl_spki_der(chain_pem)


def test_spki_of_reads_the_field_byte_for_byte_also_from_a_v1_certificate(tmp_path):
    key = tmp_path / 'k.pem'
    key.write_bytes(key_pem(new_key('ec')))
    # openssl req -x509 without extensions and with -set_serial makes an X.509 v1 certificate (no [0] version).
    v1 = subprocess.run(['openssl', 'x509', '-req', '-days', '1', '-signkey', str(key)],
                        input=openssl(['req', '-new', '-key', str(key), '-subj', '/CN=v1'], b''),
                        check=True, capture_output=True).stdout
    der = openssl_cert_der(v1)
    assert x509.load_der_x509_certificate(der).version == x509.Version.v1
    assert spki_of(der) == openssl_spki_der(v1)


def test_a_private_key_is_refused_and_never_echoed():
    _cert, private = self_signed(['mx1.example.com'])
    for data in (private, _cert + private, private.decode('ascii').split('\n', 3)[0] + '\nMIIE'):
        with pytest.raises(ValidationError) as error:
            load_material(data, 'hosts[0].current')
        assert error.value.field == 'hosts[0].current'
        assert 'never the private key' in str(error.value)
        assert 'MII' not in str(error.value) and error.value.value == '<private key>'


@pytest.mark.parametrize('data, rule', [
    ('not a certificate', 'holds no PEM block'),
    (b'\x30\x82\x01\x00\xff', 'must be PEM text'),
    (42, 'must be PEM text'),
    ('-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n', 'base64'),
    ('-----BEGIN CERTIFICATE-----\nMIIBIjANBgkq\n-----END CERTIFICATE-----\n', 'is not a valid X.509 certificate'),
    ('-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n', 'is not a valid public key'),
    ('-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n',
     'the first PEM block must be a CERTIFICATE or a PUBLIC KEY'),
])
def test_garbage_is_refused_naming_the_field_and_the_rule(data, rule):
    with pytest.raises(ValidationError) as error:
        load_material(data, 'next')
    assert error.value.field == 'next'
    assert rule in error.value.rule


def test_two_blocks_of_which_the_first_is_not_a_certificate_are_refused():
    cert_pem, _key = self_signed(['mx1.example.com'])
    public_pem = openssl(['x509', '-noout', '-pubkey'], cert_pem)
    with pytest.raises(ValidationError, match='public key must be given alone'):
        load_material(public_pem + cert_pem, 'current')


def test_selector_0_needs_a_certificate():
    cert_pem, _key = self_signed(['mx1.example.com'])
    material = load_material(openssl(['x509', '-noout', '-pubkey'], cert_pem), 'next')
    with pytest.raises(ValidationError, match=r'selector 0 \(Cert\) needs a certificate'):
        tlsa_value(material, 3, 0, 1)


@pytest.mark.parametrize('params, field, rule', [
    ((0, 1, 1), 'hosts[1].usage', 'unusable for SMTP (RFC 7672 section 3.1.3)'),
    ((1, 1, 1), 'hosts[1].usage', 'must be one of 2 (DANE-TA), 3 (DANE-EE)'),
    ((4, 1, 1), 'hosts[1].usage', 'must be one of 2 (DANE-TA), 3 (DANE-EE)'),
    ((3, 2, 1), 'hosts[1].selector', 'must be one of 0 (Cert), 1 (SPKI)'),
    ((3, 1, 3), 'hosts[1].matching_type', 'must be one of 0 (Full), 1 (SHA2-256), 2 (SHA2-512)'),
    (('3', 1, 1), 'hosts[1].usage', 'must be one of'),
    ((True, 1, 1), 'hosts[1].usage', 'must be one of'),
    ((3, 1.0, 1), 'hosts[1].selector', 'must be one of'),
    ((3, 1, None), 'hosts[1].matching_type', 'must be one of'),
])
def test_parameters_outside_what_is_published_are_refused(params, field, rule):
    for where in ('hosts[1]', 'hosts[1].'):
        with pytest.raises(ValidationError) as error:
            check_parameters(*(params + (where,)))
        assert error.value.field == field
        assert rule in error.value.rule


def test_parameters_accepted_and_named_plainly_without_a_prefix():
    assert check_parameters(2, 0, 0) == (2, 0, 0)
    with pytest.raises(ValidationError) as error:
        check_parameters(3, 1, 9)
    assert error.value.field == 'matching_type'


def test_advice_only_for_fragile_parameters():
    assert parameter_advice(*DEFAULT) == []
    assert any("Let's Encrypt" in text for text in parameter_advice(2, 1, 1))
    assert any('renewal' in text for text in parameter_advice(3, 0, 1))
    assert any('large DNS answers' in text for text in parameter_advice(3, 1, 0))
    assert len(parameter_advice(2, 0, 0)) == 3


def test_usable_follows_rfc_7672():
    digest = 'ab' * 32
    assert usable((3, 1, 1, digest)) and usable((2, 0, 2, digest))
    assert not usable((1, 1, 1, digest)) and not usable((0, 1, 1, digest))
    assert not usable((3, 2, 1, digest)) and not usable((3, 1, 3, digest))


def test_usage_3_matches_the_leaf_only_whatever_its_names_or_expiry(lab_ca):
    chain_pem, _key = lab_ca.issue_expired(['other.example.net'])
    chain = chain_der(chain_pem)
    leaf = load_material(chain_pem, 'current')
    intermediate = load_material(lab_ca.chain_pem, 'ca')
    assert record_matches(tlsa_value(leaf), chain)
    assert record_matches(tlsa_value(leaf, 3, 0, 0), chain)
    # The intermediate's key is not the leaf: a 3 x x record of it does not match.
    assert not record_matches(tlsa_value(intermediate), chain)
    other = load_material(self_signed(['mx1.example.com'])[0], 'next')
    assert not record_matches(tlsa_value(other), chain)


def test_usage_2_matches_a_certificate_after_the_leaf_never_the_leaf(lab_ca):
    chain_pem, _key = lab_ca.issue(['mx1.example.com'])
    chain = chain_der(chain_pem)
    intermediate = load_material(lab_ca.chain_pem, 'ca')
    assert record_matches(tlsa_value(intermediate, 2, 1, 1), chain)
    assert record_matches(tlsa_value(intermediate, 2, 0, 2), chain)
    assert not record_matches(tlsa_value(load_material(chain_pem, 'leaf'), 2, 1, 1), chain)
    # The root is not served, so a 2 1 1 of it matches nothing in this chain.
    assert not record_matches(tlsa_value(load_material(lab_ca.ca_pem, 'root'), 2, 1, 1), chain)


def test_unusable_records_and_broken_chains_never_match(lab_ca):
    chain_pem, _key = lab_ca.issue(['mx1.example.com'])
    chain = chain_der(chain_pem)
    digest = tlsa_value(load_material(chain_pem, 'leaf'))[3]
    assert not record_matches((1, 1, 1, digest), chain)
    assert not record_matches((3, 1, 1, digest), [])
    assert not record_matches((3, 1, 1, digest), [b'\x30\x03\x02\x01'])
    assert record_matches((3, 1, 1, digest.upper()), chain)
