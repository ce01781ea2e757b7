# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Live state, looked at as a strict sending MTA would: DNS, the policy fetch, MX STARTTLS.

Everything here is I/O and returns facts, never verdicts (those are ``_checks``).
The resolver follows CNAMEs itself, so the same rules apply whether the
nameservers are recursive resolvers or the zone's own authoritative servers.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import ssl
import threading
import time

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.resolver
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the plugins
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = exc

MAX_POLICY_BYTES = 64 * 1024
MAX_CNAME_HOPS = 8
POLICY_PATH = '/.well-known/mta-sts.txt'
USER_AGENT = 'mailsec.mta_sts validator'


class LiveError(Exception):
    """Bad options for the live layer (named field, the rule)."""


def parse_nameserver(text):
    """``ip``, ``ip:port`` or ``[ipv6]:port`` to ``(address, port)``."""
    text = str(text).strip()
    port = 53
    if text.startswith('['):
        address, _sep, rest = text[1:].partition(']')
        if rest:
            if not rest.startswith(':'):
                raise LiveError('nameservers %r: use [ipv6]:port' % text)
            port = rest[1:]
    elif text.count(':') == 1:
        address, port = text.split(':')
    else:
        address = text
    try:
        socket.inet_pton(socket.AF_INET6 if ':' in address else socket.AF_INET, address)
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError()
    except (OSError, ValueError):
        raise LiveError('nameservers %r: must be an IP address, ip:port or [ipv6]:port' % text)
    return address, port


class Answer(object):
    """The outcome of one lookup: status 'ok' | 'nxdomain' | 'nodata' | 'error'."""

    def __init__(self, status, rrset=None, cname_chain=None, error=None):
        self.status = status
        self.rrset = rrset
        self.cname_chain = cname_chain or []
        self.error = error


class Resolver(object):
    """Queries the given nameservers (or the system's), or with ``authoritative`` the zone's own servers."""

    def __init__(self, nameservers=None, authoritative=False, timeout=10.0):
        if not HAS_DNSPYTHON:
            raise LiveError('the validator needs the dnspython Python library: %s' % DNSPYTHON_IMPORT_ERROR)
        if nameservers:
            self.servers = [parse_nameserver(server) for server in nameservers]
        else:
            system = dns.resolver.Resolver()
            self.servers = [(address, system.port) for address in system.nameservers]
        self.authoritative = authoritative
        self.timeout = timeout
        self._zone_servers = {}
        self._lock = threading.Lock()

    def _ask(self, servers, name, rdtype, recursion):
        """One question to the first server that answers; returns the response message."""
        query = dns.message.make_query(name, rdtype)
        if not recursion:
            query.flags &= ~dns.flags.RD
        last = None
        for address, port in servers:
            try:
                response, _tcp = dns.query.udp_with_fallback(query, address, port=port, timeout=self.timeout)
            except (dns.exception.DNSException, OSError) as exc:
                last = exc
                continue
            if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return response
            last = 'server %s answered %s' % (address, dns.rcode.to_text(response.rcode()))
        raise dns.exception.DNSException(str(last) if last else 'no nameserver')

    def _servers_for(self, name):
        """The authoritative servers of the zone holding ``name``, found through the configured resolvers."""
        if not self.authoritative:
            return self.servers, True
        response = self._ask(self.servers, name, 'SOA', True)
        zone = None
        for rrset in response.answer + response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                zone = rrset.name
        if zone is None:
            raise dns.exception.DNSException('no SOA found for %s' % name)
        with self._lock:
            cached = self._zone_servers.get(zone)
        if cached is None:
            cached = []
            ns_response = self._ask(self.servers, zone, 'NS', True)
            for rrset in ns_response.answer:
                if rrset.rdtype != dns.rdatatype.NS:
                    continue
                for rdata in rrset:
                    for rdtype in ('A', 'AAAA'):
                        answer = self._ask(self.servers, rdata.target, rdtype, True)
                        for found in answer.answer:
                            if found.rdtype == dns.rdatatype.from_text(rdtype):
                                cached.extend((item.address, 53) for item in found)
            if not cached:
                raise dns.exception.DNSException('no address for the nameservers of %s' % zone.to_text(omit_final_dot=True))
            with self._lock:
                self._zone_servers[zone] = cached
        return cached, False

    def resolve(self, name, rdtype):
        """Look ``name`` up, following CNAMEs ourselves (RFC 8461 §3.1 allows a CNAME'd policy record)."""
        chain = []
        current = dns.name.from_text(name)
        wanted = dns.rdatatype.from_text(rdtype)
        try:
            for _hop in range(MAX_CNAME_HOPS):
                servers, recursion = self._servers_for(current)
                response = self._ask(servers, current, rdtype, recursion)
                target = None
                for rrset in response.answer:
                    if rrset.name == current and rrset.rdtype == wanted:
                        return Answer('ok', rrset, chain)
                    if rrset.name == current and rrset.rdtype == dns.rdatatype.CNAME:
                        target = rrset[0].target
                if target is None:
                    status = 'nxdomain' if response.rcode() == dns.rcode.NXDOMAIN else 'nodata'
                    return Answer(status, None, chain)
                chain.append(target.to_text(omit_final_dot=True).lower())
                current = target
            return Answer('error', None, chain, 'more than %d CNAMEs' % MAX_CNAME_HOPS)
        except (dns.exception.DNSException, OSError) as exc:
            return Answer('error', None, chain, str(exc) or type(exc).__name__)

    def addresses(self, host):
        found = []
        errors = []
        for rdtype in ('A', 'AAAA'):
            answer = self.resolve(host, rdtype)
            if answer.status == 'ok':
                found.extend(rdata.address for rdata in answer.rrset)
            elif answer.status == 'error':
                errors.append(answer.error)
        return found, (errors[0] if errors and not found else None)


def lookup_txt(resolver, name):
    answer = resolver.resolve(name, 'TXT')
    records = []
    if answer.status == 'ok':
        records = [[part.decode('utf-8', 'replace') for part in rdata.strings] for rdata in answer.rrset]
    return {'name': name, 'status': answer.status, 'error': answer.error, 'cname_chain': answer.cname_chain, 'records': records}


def lookup_mx(resolver, domain):
    answer = resolver.resolve(domain, 'MX')
    hosts = []
    if answer.status == 'ok':
        hosts = sorted(({'host': rdata.exchange.to_text(omit_final_dot=True).lower(), 'preference': rdata.preference}
                        for rdata in answer.rrset), key=lambda item: (item['preference'], item['host']))
    return {'status': answer.status, 'error': answer.error, 'hosts': hosts}


def _tls_context(ca_path, verify=True):
    context = ssl.create_default_context(cafile=ca_path) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _certificate(tls_socket):
    cert = tls_socket.getpeercert() or {}
    names = [value.lower() for kind, value in cert.get('subjectAltName', ()) if kind == 'DNS']
    issuer = ', '.join('%s=%s' % pair for rdn in cert.get('issuer', ()) for pair in rdn)
    not_after = None
    if cert.get('notAfter'):
        not_after = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(ssl.cert_time_to_seconds(cert['notAfter'])))
    return {'names': names, 'not_after': not_after, 'issuer': issuer}


def _connect(addresses, port, deadline):
    last = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout('timed out')
        try:
            sock = socket.create_connection((address, port), timeout=remaining)
            # Without it Nagle holds the request behind the TLS handshake's last ACK: a round trip lost.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except socket.timeout:
            raise
        except OSError as exc:
            last = exc
    raise last or OSError('no address')


def _error(kind, message):
    return {'kind': kind, 'message': message}


def _addresses(resolver, host):
    """``(addresses, None)``, or ``([], error fact)`` when the host does not resolve."""
    addresses, dns_error = resolver.addresses(host)
    if not addresses:
        return [], _error('dns', dns_error or '%s has no address' % host)
    return addresses, None


def _open(host, addresses, port, deadline, timeout):
    """``(connected socket, None)``, or ``(None, error fact)``."""
    try:
        return _connect(addresses, port, deadline), None
    except socket.timeout:
        return None, _error('timeout', 'no connection to %s:%d within %s s' % (host, port, timeout))
    except OSError as exc:
        return None, _error('connect', '%s:%d: %s' % (host, port, exc))


def _tls_error(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _error('certificate', exc.verify_message or str(exc))
    return _error('tls', str(exc))


def fetch_policy(resolver, domain, ca_path=None, timeout=10.0):
    """GET the policy as RFC 8461 §3.3 says a sender does: HTTPS on 443, PKIX, no redirects, at most 64 KiB."""
    host = 'mta-sts.' + domain
    facts = {'url': 'https://%s%s' % (host, POLICY_PATH), 'error': None, 'status': None, 'location': None,
             'content_type': None, 'body': None, 'truncated': False, 'tls_version': None, 'certificate': None}
    deadline = time.monotonic() + timeout
    addresses, facts['error'] = _addresses(resolver, host)
    if facts['error']:
        return facts
    raw, facts['error'] = _open(host, addresses, 443, deadline, timeout)
    if facts['error']:
        return facts
    try:
        try:
            tls = _tls_context(ca_path).wrap_socket(raw, server_hostname=host)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            facts['error'] = _tls_error(exc)
            return facts
        raw = tls
        facts['tls_version'] = tls.version()
        facts['certificate'] = _certificate(tls)
        request = 'GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: text/plain\r\nConnection: close\r\n\r\n' % (
            POLICY_PATH, host, USER_AGENT)
        tls.sendall(request.encode('ascii'))
        _read_response(tls, facts, deadline)
    except socket.timeout:
        facts['error'] = _error('timeout', 'no complete answer from %s within %s s' % (host, timeout))
    except (OSError, ValueError) as exc:
        facts['error'] = _error('http', str(exc))
    finally:
        raw.close()
    return facts


def _read_response(sock, facts, deadline):
    """Read status, headers and at most 64 KiB of body before ``deadline``; fills ``facts``."""
    buffer = b''
    while b'\r\n\r\n' not in buffer:
        chunk = _recv(sock, deadline)
        if not chunk:
            raise ValueError('connection closed before the HTTP headers ended')
        buffer += chunk
        if len(buffer) > 65536:
            raise ValueError('HTTP headers longer than 64 KiB')
    head, body = buffer.split(b'\r\n\r\n', 1)
    lines = head.decode('iso-8859-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/') or not parts[1].isdigit():
        raise ValueError('not an HTTP response: %r' % lines[0][:80])
    facts['status'] = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _sep, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    facts['location'] = headers.get('location')
    facts['content_type'] = headers.get('content-type')
    chunked = 'chunked' in headers.get('transfer-encoding', '').lower()
    length = int(headers['content-length']) if headers.get('content-length', '').isdigit() else None
    while True:
        if length is not None and len(body) >= length:
            body = body[:length]
            break
        if len(body) > MAX_POLICY_BYTES + (16 if not chunked else 4096):
            break
        chunk = _recv(sock, deadline)
        if not chunk:
            break
        body += chunk
    if chunked:
        body = _dechunk(body)
    facts['truncated'] = len(body) > MAX_POLICY_BYTES
    facts['body'] = body[:MAX_POLICY_BYTES]


def _recv(sock, deadline):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout('timed out')
    sock.settimeout(remaining)
    return sock.recv(65536)


def _dechunk(data):
    body = b''
    while data:
        size_line, _sep, rest = data.partition(b'\r\n')
        try:
            size = int(size_line.split(b';')[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        body += rest[:size]
        data = rest[size + 2:]
        if len(body) > MAX_POLICY_BYTES:
            break
    return body


class _Smtp(object):
    """Just enough SMTP to see STARTTLS and the certificate behind it."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b''

    def reply(self):
        lines = []
        while True:
            while b'\r\n' not in self.buffer:
                chunk = _recv(self.sock, self.deadline)
                if not chunk:
                    raise ValueError('connection closed')
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b'\r\n', 1)
            text = line.decode('utf-8', 'replace')
            lines.append(text)
            if len(text) < 4 or text[3] != '-':
                return int(text[:3]) if text[:3].isdigit() else 0, lines

    def command(self, text):
        self.sock.sendall(text.encode('ascii') + b'\r\n')
        return self.reply()


def probe_mx(resolver, host, ca_path=None, timeout=10.0, helo='mta-sts-validator.invalid'):
    """EHLO, STARTTLS and a verified handshake for ``host`` on port 25, as an enforcing sender does."""
    facts = {'host': host, 'addresses': [], 'error': None, 'starttls': None, 'tls_version': None, 'certificate': None}
    facts['addresses'], facts['error'] = _addresses(resolver, host)
    if facts['error']:
        return facts
    deadline = time.monotonic() + timeout
    for verify in (True, False):
        sock, facts['error'] = _open(host, facts['addresses'], 25, deadline, timeout)
        if facts['error']:
            return facts
        try:
            smtp = _Smtp(sock, deadline)
            code, _lines = smtp.reply()
            if code != 220:
                facts['error'] = _error('smtp', 'greeting %s' % code)
                return facts
            code, lines = smtp.command('EHLO ' + helo)
            extensions = [line[4:].split(' ')[0].upper() for line in lines[1:]]
            facts['starttls'] = code == 250 and 'STARTTLS' in extensions
            if not facts['starttls']:
                smtp.command('QUIT')
                return facts
            code, _lines = smtp.command('STARTTLS')
            if code != 220:
                facts['error'] = _error('smtp', 'STARTTLS answered %s' % code)
                return facts
            try:
                tls = _tls_context(ca_path, verify).wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, ssl.CertificateError) as exc:
                if verify:
                    facts['certificate'] = {'valid': False, 'error': _tls_error(exc)['message'], 'names': [], 'not_after': None, 'issuer': None}
                    continue
                facts['error'] = _tls_error(exc)
                return facts
            sock = tls
            facts['tls_version'] = tls.version()
            if verify:
                facts['certificate'] = dict(_certificate(tls), valid=True, error=None)
            else:
                # The verified handshake failed; this one only tells which names the certificate has.
                facts['certificate'].update(_unverified_certificate(tls))
            try:
                _Smtp(tls, deadline).command('QUIT')
            except (OSError, ValueError):
                pass
            return facts
        except socket.timeout:
            facts['error'] = _error('timeout', 'no complete SMTP dialogue with %s within %s s' % (host, timeout))
            return facts
        except (OSError, ValueError) as exc:
            facts['error'] = _error('smtp', str(exc))
            return facts
        finally:
            sock.close()
    return facts


def _unverified_certificate(tls_socket):
    """Names and expiry of a certificate that did not verify (needs the cryptography library; else nothing)."""
    der = tls_socket.getpeercert(binary_form=True)
    try:
        from cryptography import x509
    except ImportError:
        return {}
    cert = x509.load_der_x509_certificate(der)
    try:
        names = [name.lower() for name in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    not_after = getattr(cert, 'not_valid_after_utc', None) or cert.not_valid_after
    return {'names': names, 'not_after': not_after.strftime('%Y-%m-%dT%H:%M:%SZ'), 'issuer': cert.issuer.rfc4514_string()}
