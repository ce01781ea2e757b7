"""A throwaway certificate authority for the lab's web and mail servers.

``LabCA`` is a root CA plus an issuing (intermediate) CA, both made fresh in
memory with ``cryptography``; nothing is written unless asked.  Server
certificates come back as PEM *full chains* (leaf, then the intermediate),
which is what nginx ``ssl_certificate`` and Postfix ``smtpd_tls_chain_files``
expect; a client trusts only the root (``ca_pem`` / ``write_bundle``), just
as a sending MTA trusts only its root store.

Hostile variants for the tests: ``issue_expired``, ``issue_expiring`` (valid
for a few days more), ``issue_untrusted`` (a
second root that is in no bundle), ``self_signed``, and ``chain=False``
(the leaf without its intermediate, which a client that trusts only the
root cannot verify).
"""

import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_LIFETIME = datetime.timedelta(days=90)
# Certificates start a little in the past so that small clock differences
# between the lab and a client never make a fresh certificate "not yet valid".
BACKDATE = datetime.timedelta(hours=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def new_key(key_type='ec'):
    """A private key: ``'ec'`` (P-256) or ``'rsa'`` (2048 bits)."""
    if key_type == 'ec':
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type must be 'ec' or 'rsa', got {key_type!r}")


def key_pem(key):
    """PKCS#8 PEM, unencrypted (nginx and Postfix read it as is)."""
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _names(names):
    if isinstance(names, str):
        names = [names]
    names = [n.rstrip('.') for n in names]
    if not names or not all(names):
        raise ValueError('a certificate needs at least one non-empty name')
    return names


def _san(names):
    """SubjectAlternativeName: IP addresses as iPAddress, the rest as dNSName."""
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _subject(common_name):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'mailsec lab')]
    # A CN is at most 64 characters (RFC 5280 ub-common-name); longer names
    # live only in the SAN, which is what clients check anyway.
    if len(common_name) <= 64:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _validity(not_before, not_after):
    now = _now()
    not_before = not_before or now - BACKDATE
    not_after = not_after or now + DEFAULT_LIFETIME
    if not_after <= not_before:
        raise ValueError('not_after must be after not_before')
    return not_before, not_after


def _leaf(names, issuer_cert, issuer_key, key_type, not_before, not_after):
    names = _names(names)
    key = new_key(key_type)
    not_before, not_after = _validity(not_before, not_after)
    usage = x509.KeyUsage(
        digital_signature=True, key_encipherment=(key_type == 'rsa'),
        content_commitment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(names[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if issuer_cert is None:
        # Self-signed: the certificate is its own issuer.
        builder = builder.issuer_name(_subject(names[0]))
        issuer_key = key
    else:
        builder = builder.issuer_name(issuer_cert.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _ca_cert(common_name, key, issuer_cert, issuer_key, path_length, not_before, not_after):
    usage = x509.KeyUsage(
        digital_signature=True, key_encipherment=False, content_commitment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False)
    subject = _subject(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    signer_public = (issuer_cert.public_key() if issuer_cert else key.public_key())
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_public), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class LabCA:
    """A root CA (``ca_pem``) and, by default, an intermediate that signs leaves.

    ``issue(names)`` returns ``(cert_pem, key_pem)`` as bytes; ``cert_pem``
    is the leaf followed by the intermediate (``chain=False``: the leaf
    alone).  ``intermediate=False`` makes the root sign leaves directly.
    """

    def __init__(self, name='mailsec lab root CA', intermediate=True, key_type='ec'):
        now = _now()
        self.name = name
        self._root_key = new_key(key_type)
        self.ca_cert = _ca_cert(name, self._root_key, None, None, None,
                                now - datetime.timedelta(days=1),
                                now + datetime.timedelta(days=3650))
        if intermediate:
            self._issuer_key = new_key(key_type)
            self.intermediate_cert = _ca_cert(
                name.replace('root', 'issuing') if 'root' in name else name + ' issuing',
                self._issuer_key, self.ca_cert, self._root_key, 0,
                now - datetime.timedelta(days=1), now + datetime.timedelta(days=1825))
        else:
            self._issuer_key = self._root_key
            self.intermediate_cert = None
        self._untrusted = None

    # -- what clients trust ------------------------------------------------

    @property
    def ca_pem(self):
        """The root certificate, PEM bytes: the only thing a client should trust."""
        return cert_pem(self.ca_cert)

    @property
    def chain_pem(self):
        """The intermediate certificate (PEM bytes), or b'' without one."""
        return cert_pem(self.intermediate_cert) if self.intermediate_cert else b''

    def write_bundle(self, path):
        """Write the root (only) as a CA bundle file; return ``path``."""
        with open(path, 'wb') as f:
            f.write(self.ca_pem)
        return path

    def client_context(self):
        """An ``ssl.SSLContext`` for clients that trusts this root only,
        with hostname checking on (Python's defaults otherwise)."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode('ascii'))
        return ctx

    # -- issuing -----------------------------------------------------------

    @property
    def _issuer_cert(self):
        return self.intermediate_cert or self.ca_cert

    def issue(self, names, not_before=None, not_after=None, key_type='ec', chain=True):
        """A server certificate for ``names`` (a name or a list; DNS names,
        ``*.`` wildcards or IP addresses), valid from ``not_before`` (default:
        an hour ago) to ``not_after`` (default: 90 days on), both aware
        ``datetime``s.  Returns ``(cert_pem, key_pem)``, bytes."""
        cert, key = _leaf(names, self._issuer_cert, self._issuer_key, key_type,
                          not_before, not_after)
        pem = cert_pem(cert)
        if chain and self.intermediate_cert is not None:
            pem += self.chain_pem
        return pem, key_pem(key)

    def issue_expired(self, names, key_type='ec', days_ago=1):
        """Like ``issue``, but it ran out ``days_ago`` days ago (valid 90 days before that)."""
        end = _now() - datetime.timedelta(days=days_ago)
        return self.issue(names, not_before=end - DEFAULT_LIFETIME, not_after=end,
                          key_type=key_type)

    def issue_expiring(self, names, key_type='ec', days_left=3):
        """Like ``issue``, valid now but running out ``days_left`` days from now (a renewal that did not happen)."""
        end = _now() + datetime.timedelta(days=days_left)
        return self.issue(names, not_before=end - DEFAULT_LIFETIME, not_after=end, key_type=key_type)

    def issue_not_yet_valid(self, names, key_type='ec', days_ahead=1):
        """Like ``issue``, but valid only from ``days_ahead`` days on."""
        start = _now() + datetime.timedelta(days=days_ahead)
        return self.issue(names, not_before=start, not_after=start + DEFAULT_LIFETIME,
                          key_type=key_type)

    @property
    def untrusted(self):
        """A second, independent ``LabCA`` whose root is in no bundle."""
        if self._untrusted is None:
            self._untrusted = LabCA(name='mailsec untrusted root CA')
        return self._untrusted

    def issue_untrusted(self, names, key_type='ec', **kwargs):
        """A certificate for ``names`` from the untrusted CA (full chain)."""
        return self.untrusted.issue(names, key_type=key_type, **kwargs)


def self_signed(names, key_type='ec', not_before=None, not_after=None):
    """A self-signed server certificate (``(cert_pem, key_pem)``), as a
    default install (Debian's snakeoil) presents."""
    cert, key = _leaf(names, None, None, key_type, not_before, not_after)
    return cert_pem(cert), key_pem(key)


def write_pair(directory, stem, pair):
    """Write ``(cert_pem, key_pem)`` as ``stem.crt`` / ``stem.key`` (0600) in
    ``directory``; return the two paths."""
    os.makedirs(directory, exist_ok=True)
    crt = os.path.join(directory, stem + '.crt')
    key = os.path.join(directory, stem + '.key')
    with open(crt, 'wb') as f:
        f.write(pair[0])
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(pair[1])
    return crt, key
