# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Checks of a certificate file and its key before a web server is pointed at them. Pure code: bytes in, the clock
passed in, so the same checks run in the module and in the tests.

nginx reads a certificate given by a variable only at handshake time, and ``nginx -t`` never looks at it, so a
broken pair would surface as failing handshakes after the reload. These checks catch that before any change.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the managed host
    x509 = serialization = None
    UnsupportedAlgorithm = ValueError
    HAS_CRYPTOGRAPHY = False

_PEM_CERT_BEGIN = b'-----BEGIN CERTIFICATE-----'


class CertificateError(ValueError):
    """A certificate or key that must not be served; the message says what is wrong with it."""


class CertificateInfo(object):
    """What the checks read from a certificate file: its leaf's names and validity."""

    def __init__(self, names, not_before, not_after):
        self.names = names
        self.not_before = not_before
        self.not_after = not_after
        # One certificate may cover thousands of hosts: look names up instead of matching each in turn.
        self._exact = set(name.rstrip('.') for name in names if '*' not in name)
        self._wildcard_parents = set(name[2:].rstrip('.') for name in names
                                     if name.startswith('*.') and '*' not in name[2:])

    def covers(self, host):
        """Whether a SAN entry covers ``host`` (a lower-case name): as name_covers, for every entry at once."""
        first, dot, parent = host.partition('.')
        return host in self._exact or bool(first and dot and parent in self._wildcard_parents)


def _utc(cert, name):
    # cryptography 42 added the *_utc properties; older ones return naive UTC datetimes.
    value = getattr(cert, name + '_utc', None)
    if value is None:
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def load_chain(data):
    """The certificates of a PEM file, leaf first; CertificateError when there is none or one does not parse."""
    if _PEM_CERT_BEGIN not in data:
        raise CertificateError('holds no PEM certificate')
    try:
        if hasattr(x509, 'load_pem_x509_certificates'):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_pem_x509_certificate(data)]  # pragma: no cover - cryptography < 39
    except ValueError as exc:
        raise CertificateError('is not a valid PEM certificate (%s)' % exc)


def load_private_key(data):
    """The private key of a PEM file; CertificateError when it does not parse or is encrypted."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError('is encrypted; the web server needs the key without a passphrase')
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError('is not a valid PEM private key (%s)' % str(exc).split('\n', 1)[0])


def _public_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert, key):
    """Whether ``key`` is the private key of ``cert``'s public key."""
    return _public_der(cert.public_key()) == _public_der(key.public_key())


def dns_names(cert):
    """The leaf's subject alternative DNS names, lower case. The subject's common name is never used (RFC 6125)."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def name_covers(pattern, host):
    """Whether the SAN entry ``pattern`` covers ``host``: exactly, or a leftmost ``*`` standing for one whole label."""
    pattern = pattern.lower().rstrip('.')
    host = host.lower().rstrip('.')
    if pattern.startswith('*.'):
        first, dot, rest = host.partition('.')
        return bool(first) and bool(dot) and rest == pattern[2:] and '*' not in rest
    return '*' not in pattern and pattern == host


def read_certificate(cert_data, key_data):
    """Parse a certificate file and its key file (bytes) and check that they belong together.

    Returns a CertificateInfo of the leaf. Raises CertificateError naming the file ('certificate' or
    'private key') and the reason.
    """
    if not HAS_CRYPTOGRAPHY:  # pragma: no cover - depends on the managed host
        raise CertificateError('cannot be checked: the Python package cryptography is missing on the managed host')
    try:
        chain = load_chain(cert_data)
    except CertificateError as exc:
        raise CertificateError('certificate %s' % exc)
    try:
        key = load_private_key(key_data)
    except CertificateError as exc:
        raise CertificateError('private key %s' % exc)
    leaf = chain[0]
    if not key_matches(leaf, key):
        raise CertificateError('private key does not match the certificate (the first certificate in the file must be '
                               'the leaf)')
    return CertificateInfo(dns_names(leaf), _utc(leaf, 'not_valid_before'), _utc(leaf, 'not_valid_after'))


def check_host(info, host, now):
    """Raise CertificateError unless the certificate covers ``host`` and is valid at ``now`` (aware datetime)."""
    if not info.covers(host.lower().rstrip('.')):
        raise CertificateError('certificate does not cover %s (subject alternative names: %s; a wildcard covers one '
                               'label)' % (host, ', '.join(info.names) or 'none'))
    if now < info.not_before:
        raise CertificateError('certificate is not valid yet (valid from %s)' % iso_utc(info.not_before))
    if now >= info.not_after:
        raise CertificateError('certificate expired at %s' % iso_utc(info.not_after))


def iso_utc(moment):
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def days_left(info, now):
    return int((info.not_after - now).total_seconds() // 86400)


def _permits(mode, owner, group, uid, gids, bits):
    """Whether the class of the user (owner, group member or other) has ``bits`` (read, write, execute: 4, 2, 1)."""
    if uid == 0:
        return True
    if uid == owner:
        return mode >> 6 & bits == bits
    if group in gids:
        return mode >> 3 & bits == bits
    return mode & bits == bits


def can_search(mode, owner, group, uid, gids):
    """Whether a user may pass through a directory (its execute bit for the user's class)."""
    return _permits(mode, owner, group, uid, gids, 1)


def can_read(mode, owner, group, uid, gids):
    """Whether a user (``uid``, all its group ids ``gids``) may read a file with ``mode``, ``owner`` and ``group``.

    The POSIX rule: the owner's bits apply to the owner (even if they deny what the group bits allow), then the
    group's to members, then the others'. Root reads everything.
    """
    return _permits(mode, owner, group, uid, gids, 4)
