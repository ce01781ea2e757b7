# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""TLSA record data for DANE SMTP (RFC 6698, RFC 7671, RFC 7672). Pure code: bytes in, values out.

A value is the canonical tuple of ``_rrset``: ``(usage, selector, matching type, data as lower-case hex)``.
``load_material`` reads what a user gives (a PEM certificate or public key), ``tlsa_value`` computes the record
data, ``record_matches`` says whether a served chain satisfies a record. The served chain is matched on its DER
bytes alone (``hashlib`` and a small DER walk), so judging a live chain needs no ``cryptography``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import hashlib
import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._certs import HAS_CRYPTOGRAPHY, _utc, dns_names
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import encode

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - depends on the managed host
    x509 = serialization = None
    UnsupportedAlgorithm = ValueError

# The usages this collection publishes. RFC 7672 section 3.1.3: SMTP clients treat 0 (PKIX-TA) and 1 (PKIX-EE)
# as unusable, so publishing them would protect nothing.
USAGES = {2: 'DANE-TA', 3: 'DANE-EE'}
SELECTORS = {0: 'Cert', 1: 'SPKI'}
MATCHING_TYPES = {0: 'Full', 1: 'SHA2-256', 2: 'SHA2-512'}
DEFAULT = (3, 1, 1)

_PEM_BLOCK = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.S)
# Any private key, even one cut short before its END line.
_PRIVATE_KEY = re.compile(r'-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----')
_HASHES = {1: hashlib.sha256, 2: hashlib.sha512}


class Material(object):
    """What a TLSA record can be computed from: a certificate, or a bare public key."""

    def __init__(self, kind, der, spki, names, not_after):
        self.kind = kind                # 'certificate' or 'public_key'
        self.der = der                  # the certificate's DER, None for a public key
        self.spki = spki                # the SubjectPublicKeyInfo DER
        self.names = names              # the certificate's dNSNames, [] for a key
        self.not_after = not_after      # aware datetime, None for a key

    def __repr__(self):
        return 'Material(%r, names=%r)' % (self.kind, self.names)


def _field(where, key):
    if not where or where.endswith('.'):
        return where + key
    return where + '.' + key


def _text(data, where):
    if isinstance(data, bytes):
        try:
            return data.decode('ascii')
        except UnicodeDecodeError:
            raise ValidationError(where, '<binary data>', 'must be PEM text (a DER file? convert it with openssl)')
    if not isinstance(data, str):
        raise ValidationError(where, '<%s>' % type(data).__name__, 'must be PEM text of a certificate or a public key')
    return data


def load_material(data, where):
    """The Material of ``data``: PEM text (str or bytes) of one certificate (the first of a chain is used) or of a
    public key. Raises ValidationError naming ``where`` and the rule; the value itself is never echoed, since it
    may be a private key given by mistake."""
    text = _text(data, where)
    # A private key anywhere (a combined certificate and key file) is refused: it must not travel through DNS tasks.
    if _PRIVATE_KEY.search(text):
        raise ValidationError(where, '<private key>', 'give the certificate or the public key, never the private key')
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise ValidationError(where, '<%d characters>' % len(text),
                              'holds no PEM block; give a PEM certificate (BEGIN CERTIFICATE) or public key '
                              '(BEGIN PUBLIC KEY)')
    label, body = blocks[0]
    if label == 'CERTIFICATE':
        return _certificate(body, where)
    if label in ('PUBLIC KEY', 'RSA PUBLIC KEY'):
        if len(blocks) > 1:
            raise ValidationError(where, '<%d PEM blocks>' % len(blocks),
                                  'a public key must be given alone; a chain must start with the certificate')
        return _public_key(label, body, where)
    raise ValidationError(where, '<%s>' % label, 'the first PEM block must be a CERTIFICATE or a PUBLIC KEY')


def _pem_der(body, where, what):
    try:
        return base64.b64decode(''.join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(where, '<%s>' % what, 'is not valid PEM: the base64 between the BEGIN and END lines '
                                                    'does not decode')


def _need_cryptography(where):
    if not HAS_CRYPTOGRAPHY:  # pragma: no cover - depends on the managed host
        raise ValidationError(where, '<PEM>', 'cannot be read: the Python package cryptography is missing')


def _certificate(body, where):
    _need_cryptography(where)
    der = _pem_der(body, where, 'certificate')
    try:
        cert = x509.load_der_x509_certificate(der)
        spki = spki_of(der)
    except ValueError as exc:
        raise ValidationError(where, '<certificate>', 'is not a valid X.509 certificate (%s)'
                              % str(exc).split('\n', 1)[0])
    return Material('certificate', der, spki, dns_names(cert), _utc(cert, 'not_valid_after'))


def _public_key(label, body, where):
    _need_cryptography(where)
    der = _pem_der(body, where, 'public key')
    try:
        if label == 'PUBLIC KEY':
            key = serialization.load_der_public_key(der)
        else:
            key = serialization.load_pem_public_key(('-----BEGIN %s-----%s-----END %s-----' % (label, body, label)).encode('ascii'))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValidationError(where, '<public key>', 'is not a valid public key (%s)' % str(exc).split('\n', 1)[0])
    # The DER given is the SPKI itself; a PKCS#1 RSA key is wrapped into one.
    spki = der if label == 'PUBLIC KEY' else key.public_bytes(serialization.Encoding.DER,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return Material('public_key', None, spki, [], None)


def _der_element(data, offset):
    """``(tag, end of header, end of element)`` of the DER element at ``offset``; ValueError when truncated."""
    if offset + 2 > len(data):
        raise ValueError('truncated DER')
    tag, length = data[offset], data[offset + 1]
    header = offset + 2
    if length & 0x80:
        count = length & 0x7f
        if not 0 < count <= 4 or header + count > len(data):
            raise ValueError('bad DER length')
        length = int(binascii.hexlify(bytes(data[header:header + count])), 16)
        header += count
    if header + length > len(data):
        raise ValueError('truncated DER')
    return tag, header, header + length


def spki_of(cert_der):
    """The SubjectPublicKeyInfo of a DER certificate, byte for byte as the certificate holds it (RFC 5280
    section 4.1): what selector 1 hashes. ValueError when the DER is not a certificate's shape."""
    tag, start, _end = _der_element(cert_der, 0)
    if tag != 0x30:
        raise ValueError('not a DER certificate')
    tag, offset, _tbs_end = _der_element(cert_der, start)
    if tag != 0x30:
        raise ValueError('not a DER certificate')
    if cert_der[offset] == 0xa0:    # [0] version, absent in v1 certificates
        offset = _der_element(cert_der, offset)[2]
    # serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
    for expected in (0x02, 0x30, 0x30, 0x30, 0x30):
        tag, _header, end = _der_element(cert_der, offset)
        if tag != expected:
            raise ValueError('not a DER certificate')
        offset = end
    tag, _header, end = _der_element(cert_der, offset)
    if tag != 0x30:
        raise ValueError('not a DER certificate')
    return bytes(cert_der[offset:end])


def _digest(data, matching_type):
    if matching_type == 0:
        return binascii.hexlify(data).decode('ascii')
    return _HASHES[matching_type](data).hexdigest()


def association(material, selector, matching_type):
    """The certificate association data (RFC 6698 section 2.1), lower-case hex."""
    if selector == 0 and material.der is None:
        raise ValidationError('selector', selector, 'selector 0 (Cert) needs a certificate; a public key gives only '
                                                    'selector 1 (SPKI)')
    return _digest(material.der if selector == 0 else material.spki, matching_type)


def _check_choice(value, field, allowed, extra=''):
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        choices = ', '.join('%d (%s)' % item for item in sorted(allowed.items()))
        raise ValidationError(field, value, 'must be one of %s%s' % (choices, extra))
    return value


def check_parameters(usage, selector, matching_type, where=''):
    """The three parameters as given, when they are ints this collection publishes; else ValidationError naming
    ``where`` + ``usage``/``selector``/``matching_type`` and the allowed values."""
    return (_check_choice(usage, _field(where, 'usage'), USAGES,
                          '; 0 (PKIX-TA) and 1 (PKIX-EE) are unusable for SMTP (RFC 7672 section 3.1.3)'),
            _check_choice(selector, _field(where, 'selector'), SELECTORS),
            _check_choice(matching_type, _field(where, 'matching_type'), MATCHING_TYPES))


def tlsa_value(material, usage=3, selector=1, matching_type=1):
    """The canonical TLSA value for ``material`` (as ``_rrset.decode('TLSA', ...)`` gives it)."""
    usage, selector, matching_type = check_parameters(usage, selector, matching_type)
    return (usage, selector, matching_type, association(material, selector, matching_type))


def parameter_advice(usage, selector, matching_type):
    """Warnings about valid but fragile parameters; none for 3 1 1."""
    advice = []
    if usage == 2:
        advice.append('usage 2 (DANE-TA) pins a CA: a CA may rotate its intermediates (Let\'s Encrypt does), and '
                      'the record then matches no chain the MX serves; 3 1 1 with a reused key avoids that')
    if selector == 0:
        advice.append('selector 0 (Cert) pins the whole certificate: a renewal breaks the record even on the same '
                      'key; selector 1 (SPKI) survives renewals that reuse the key')
    if matching_type == 0:
        advice.append('matching type 0 (Full) publishes the whole data: large DNS answers that may need TCP; '
                      'matching type 1 (SHA2-256) is enough')
    return advice


def usable(value):
    """Whether a DANE SMTP client can use the record (RFC 7672 section 3.1.3)."""
    return (len(value) == 4 and value[0] in USAGES and value[1] in SELECTORS and value[2] in MATCHING_TYPES)


def record_matches(value, chain_der):
    """Whether the served chain (DER certificates, leaf first) satisfies the TLSA ``value``.

    Usage 3 looks at the leaf only, its names and expiry ignored (RFC 7672 section 3.1.1); usage 2 at the
    certificates after the leaf (RFC 7671 section 5.2.2). Unusable records never match. This is the association
    match only: the signatures from the leaf up to a usage 2 trust anchor are not verified here.
    """
    if not usable(value) or not chain_der:
        return False
    usage, selector, matching_type, data = value
    candidates = chain_der[:1] if usage == 3 else chain_der[1:]
    for cert_der in candidates:
        try:
            selected = cert_der if selector == 0 else spki_of(cert_der)
        except (ValueError, IndexError):
            continue
        if _digest(selected, matching_type) == data.lower():
            return True
    return False


def judge_removal(removed, kept, probe):
    """Whether a change that drops the TLSA values ``removed`` and leaves ``kept`` still matches what the MX
    serves: ``(serving, refusal)``.

    ``probe`` is ``_live.probe_mx`` facts (``chain_der``, ``error``, ``starttls``). ``serving`` is
    ``{matched: ["u s m hex" of removed and kept values that match the served chain], served_spki_sha256, error}``.
    ``refusal`` says why the change must not be made, or is None: the served key matches a removed value and no kept
    one (DANE senders would defer every message), or the MX could not be probed, so that cannot be ruled out.
    """
    serving = {'matched': [], 'served_spki_sha256': None, 'error': None}
    chain = probe.get('chain_der')
    if chain:
        try:
            serving['served_spki_sha256'] = hashlib.sha256(spki_of(chain[0])).hexdigest()
        except (ValueError, IndexError):
            chain = None
            serving['error'] = 'the MX served a certificate that is not DER X.509'
    elif probe.get('error'):
        serving['error'] = probe['error']['message']
    elif probe.get('starttls') is False:
        serving['error'] = 'the MX does not offer STARTTLS'
    else:
        serving['error'] = 'no certificate chain was captured'
    if serving['error']:
        return serving, 'the MX could not be probed (%s), so the removal might drop the record of the key it serves' % serving['error']
    matched = [value for value in list(removed) + list(kept) if record_matches(value, chain)]
    serving['matched'] = [encode('TLSA', value) for value in matched]
    dropped = [value for value in matched if value in removed]
    if dropped and not any(value in kept for value in matched):
        return serving, ('the MX serves the key of %s (SPKI SHA-256 %s), which this change removes, and no record '
                         'left matches it: DANE senders would defer every message; switch the MX to the next key '
                         'first' % (', '.join(encode('TLSA', value) for value in dropped), serving['served_spki_sha256']))
    return serving, None
