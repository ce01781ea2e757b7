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

import binascii
import os
import selectors
import socket
import ssl
import struct
import threading
import time

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdataclass
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
RETRY_FIRST = 0.2      # seconds before the first retransmission; doubles after each
RETRY_MAX = 1.0        # longest wait between two sends of one question
EDNS_PAYLOAD = 1232    # the DNS flag day's size: big TXT answers without TCP, no IP fragments
EDNS_DO = 0x8000       # the DNSSEC OK bit of the OPT record's flags (RFC 3225): asks for RRSIGs and the AD bit
# The format argument of the certificate objects of ssl's private chain API (see served_chain).
_DER = getattr(getattr(ssl, '_ssl', None), 'ENCODING_DER', 1)


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


def server_text(server):
    address, port = server
    return ('[%s]:%d' if ':' in address else '%s:%d') % (address, port)


class Answer(object):
    """The outcome of one lookup: status 'ok' | 'nxdomain' | 'nodata' | 'error'.

    ``authenticated``: every response on the way had the AD bit; ``signed``: the last one carried
    RRSIGs. Both mean something only for a question asked with the DO bit (``dnssec``).
    """

    def __init__(self, status, rrset=None, cname_chain=None, error=None, authenticated=False, signed=False):
        self.status = status
        self.rrset = rrset
        self.cname_chain = cname_chain or []
        self.error = error
        self.authenticated = authenticated
        self.signed = signed


def _failure_text(exc):
    if isinstance(exc, ConnectionRefusedError):
        # ICMP port unreachable, seen on a connected UDP socket: nothing listens there.
        return 'refused the query (ICMP port unreachable: nothing listens there)'
    if isinstance(exc, (socket.timeout, dns.exception.Timeout)):
        return 'gave no answer over TCP'
    return str(exc) or type(exc).__name__


class _RRset(list):
    """The records of one name and type in a response: the few fields the resolver reads, as dnspython names them."""

    def __init__(self, name, rdtype):
        super(_RRset, self).__init__()
        self.name = name
        self.rdtype = rdtype
        self.ttl = None   # the lowest TTL of its records, as a cache keeps the RRset


class _Rdata(object):
    def __init__(self, **fields):
        self.__dict__.update(fields)


class _Response(object):
    """A parsed DNS response: rcode, flags, and the answer and authority sections as ``_RRset`` lists.

    Parsed here rather than by dnspython's Message, which costs several times the CPU of
    everything else in a question; only the types the validator reads get their fields
    (A, AAAA, TXT, MX, CNAME, NS, TLSA); other records (RRSIG...) keep their name and type.
    """

    def __init__(self, wire):
        _id, self.flags, qdcount, ancount, nscount, _arcount = struct.unpack('!HHHHHH', wire[:12])
        offset = 12
        for _question in range(qdcount):
            offset = _skip_name(wire, offset) + 4
        self.answer, offset = _read_section(wire, offset, ancount)
        self.authority, offset = _read_section(wire, offset, nscount)

    def rcode(self):
        return self.flags & 0xF


def _skip_name(wire, offset):
    while True:
        length = wire[offset]
        if length >= 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def _read_name(wire, offset):
    """The name at ``offset`` (compression followed) and the offset after it."""
    labels = []
    after = None
    for _jump in range(128):
        length = wire[offset]
        if length >= 0xC0:
            if after is None:
                after = offset + 2
            offset = ((length & 0x3F) << 8) | wire[offset + 1]
        elif length == 0:
            labels.append(b'')
            return dns.name.Name(labels), (offset + 1 if after is None else after)
        else:
            labels.append(wire[offset + 1:offset + 1 + length])
            offset += 1 + length
    raise ValueError('DNS name compression loop')


def _read_rdata(wire, rdtype, start, end):
    if rdtype == dns.rdatatype.A:
        return _Rdata(address=socket.inet_ntop(socket.AF_INET, wire[start:end]))
    if rdtype == dns.rdatatype.AAAA:
        return _Rdata(address=socket.inet_ntop(socket.AF_INET6, wire[start:end]))
    if rdtype == dns.rdatatype.TXT:
        strings = []
        while start < end:
            strings.append(wire[start + 1:start + 1 + wire[start]])
            start += 1 + wire[start]
        return _Rdata(strings=tuple(strings))
    if rdtype == dns.rdatatype.MX:
        return _Rdata(preference=struct.unpack('!H', wire[start:start + 2])[0], exchange=_read_name(wire, start + 2)[0])
    if rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS):
        return _Rdata(target=_read_name(wire, start)[0])
    if rdtype == dns.rdatatype.TLSA:
        if end - start < 3:
            raise ValueError('TLSA record shorter than its three parameters')
        return _Rdata(usage=wire[start], selector=wire[start + 1], mtype=wire[start + 2], cert=bytes(wire[start + 3:end]))
    return _Rdata()


def _read_section(wire, offset, count):
    rrsets = []
    for _record in range(count):
        name, offset = _read_name(wire, offset)
        rdtype, _rdclass, ttl, length = struct.unpack('!HHIH', wire[offset:offset + 10])
        offset += 10
        if offset + length > len(wire):
            raise ValueError('DNS record longer than the message')
        if not rrsets or rrsets[-1].name != name or rrsets[-1].rdtype != rdtype:
            rrsets.append(_RRset(name, rdtype))
        rrsets[-1].append(_read_rdata(wire, rdtype, offset, offset + length))
        rrsets[-1].ttl = ttl if rrsets[-1].ttl is None else min(rrsets[-1].ttl, ttl)
        offset += length
    return rrsets, offset


class _Question(object):
    """One question over UDP, sent to the servers in turn and again after a growing interval.

    Each server gets one connected socket, reused for every resend: an ICMP port
    unreachable then surfaces as ConnectionRefusedError, and a late answer to an
    earlier send still counts. A server that refuses or answers with an error
    rcode is not asked again; the others are.
    """

    def __init__(self, servers, name, rdtype, recursion, dnssec=False):
        self.servers = list(servers)
        # Built by hand: dnspython's make_query costs more CPU than all the rest of a question but the parse.
        name = name if isinstance(name, dns.name.Name) else dns.name.from_text(name)
        rdtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
        self.id = struct.unpack('!H', os.urandom(2))[0]
        self.question = name.to_wire() + struct.pack('!HH', rdtype, dns.rdataclass.IN)
        opt = b'\x00' + struct.pack('!HHIH', dns.rdatatype.OPT, EDNS_PAYLOAD, EDNS_DO if dnssec else 0, 0)
        self.wire = struct.pack('!HHHHHH', self.id, dns.flags.RD if recursion else 0, 1, 0, 0, 1) + self.question + opt
        self.sockets = {}
        self.failures = {}
        self.sends = 0
        self.interval = RETRY_FIRST
        self.due = 0.0
        self.response = None

    def _live(self):
        return [server for server in self.servers if server not in self.failures]

    @property
    def done(self):
        return self.response is not None or not self._live()

    def send(self, selector, now):
        live = self._live()
        server = live[self.sends % len(live)]
        self.sends += 1
        self.due = now + self.interval
        self.interval = min(self.interval * 2, RETRY_MAX)
        try:
            sock = self.sockets.get(server)
            if sock is None:
                sock = socket.socket(socket.AF_INET6 if ':' in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.setblocking(False)
                    sock.connect(server)
                    selector.register(sock, selectors.EVENT_READ, (self, server))
                except OSError:
                    # Kept only once registered: close() unregisters every kept socket (an unreachable
                    # network fails connect(), and must stay a failure of this server, not a KeyError).
                    sock.close()
                    raise
                self.sockets[server] = sock
            sock.send(self.wire)
        except OSError as exc:
            self._fail(server, _failure_text(exc), now)

    def receive(self, server, now, deadline):
        try:
            wire = self.sockets[server].recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(server, _failure_text(exc), now)
            return
        if not self._answers_us(wire):
            return  # not the answer to this question: the real one may still come
        try:
            response = _Response(wire)
        except (ValueError, IndexError, struct.error):
            return  # malformed: the real answer may still come
        if response.flags & dns.flags.TC:
            try:
                response = _Response(dns.query.tcp(dns.message.from_wire(self.wire), server[0], port=server[1],
                                                   timeout=max(deadline - now, 0.01)).to_wire())
            except (dns.exception.DNSException, OSError, ValueError, IndexError, struct.error) as exc:
                self._fail(server, _failure_text(exc), now)
                return
        if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self.response = response
        else:
            self._fail(server, 'answered %s' % dns.rcode.to_text(response.rcode()), now)

    def _answers_us(self, wire):
        """Our id, the QR bit and our question (names compare case-insensitively)."""
        end = 12 + len(self.question)
        return (len(wire) >= end and struct.unpack('!H', wire[:2])[0] == self.id and wire[2] & 0x80
                and wire[4:6] == b'\x00\x01' and wire[12:end].lower() == self.question.lower())

    def _fail(self, server, why, now):
        self.failures[server] = why
        self.due = now  # the next server is asked at once

    def error(self, timeout):
        """Why there is no response, naming each server asked."""
        if not self.servers:
            return 'no nameserver to ask'
        parts = ['%s %s' % (server_text(server), why) for server, why in self.failures.items()]
        silent = self._live()
        if silent:
            parts.insert(0, 'no answer from %s within the %s s timeout (%d %s)' % (
                ', '.join(server_text(server) for server in silent), _seconds(timeout), self.sends,
                'send' if self.sends == 1 else 'sends'))
        return '; '.join(parts)

    def close(self, selector):
        for sock in self.sockets.values():
            selector.unregister(sock)
            sock.close()
        self.sockets = {}


def _seconds(value):
    return ('%f' % value).rstrip('0').rstrip('.')


def _exchange(questions, deadline, answered=None):
    """Runs ``questions`` at once, until each has its response, has failed, or the deadline passes.

    ``answered(question)`` is told of each finished question and may return new
    ones (the next CNAME hop), which join the run. Returns the unfinished ones.
    """
    selector = selectors.DefaultSelector()
    pending = list(questions)
    try:
        while pending:
            now = time.monotonic()
            if now >= deadline:
                break
            for question in pending:
                if question.due <= now and not question.done:
                    question.send(selector, now)
            if not any(question.done for question in pending):
                wait = min([question.due for question in pending] + [deadline]) - now
                for key, _events in selector.select(max(wait, 0)):
                    question, server = key.data
                    if not question.done:
                        question.receive(server, time.monotonic(), deadline)
            still = []
            for question in pending:
                if question.done:
                    question.close(selector)
                    if answered is not None:
                        still.extend(answered(question))
                else:
                    still.append(question)
            pending = still
        return pending
    finally:
        for question in pending:
            question.close(selector)
        selector.close()


def ask_each(servers, questions, deadline, timeout):
    """Every server's own responses to ``[(name, rdtype)]``, asked directly and without recursion, all at once.

    An authoritative server's view, one server at a time: the zone's servers may differ while a change spreads.
    Returns ``{server: [(response or None, error or None)]}``, the questions in order.
    """
    asked = dict((server, [_Question([server], name, rdtype, False) for name, rdtype in questions]) for server in servers)
    _exchange([question for questions_of in asked.values() for question in questions_of], deadline)
    return dict((server, [(question.response, None if question.response else question.error(timeout))
                          for question in questions_of]) for server, questions_of in asked.items())


class _Chase(object):
    """One name and type being resolved: the CNAME chain so far, then the Answer."""

    def __init__(self, name, rdtype):
        self.current = dns.name.from_text(name) if not isinstance(name, dns.name.Name) else name
        self.rdtype = dns.rdatatype.from_text(rdtype)
        self.chain = []
        self.answer = None
        self.authenticated = True

    def fail(self, error):
        self.answer = Answer('error', None, self.chain, error)

    def _end(self, status, rrset, response):
        signed = any(found.rdtype == dns.rdatatype.RRSIG for found in response.answer + response.authority)
        self.answer = Answer(status, rrset, self.chain, authenticated=self.authenticated, signed=signed)

    def take(self, response, within):
        """Reads the response about ``current``; True when the next CNAME hop must be asked.

        With ``within``, a CNAME chain inside the response is followed as a stub resolver does.
        """
        hopped = False
        # A CNAME chain is only as secure as its least secure response.
        self.authenticated = self.authenticated and bool(response.flags & dns.flags.AD)
        while True:
            target = None
            for rrset in response.answer:
                if rrset.name == self.current and rrset.rdtype == self.rdtype:
                    self._end('ok', rrset, response)
                    return False
                if rrset.name == self.current and rrset.rdtype == dns.rdatatype.CNAME:
                    target = rrset[0].target
            if target is None:
                if hopped:
                    return True  # the response ends at a name it has no data for: ask that name
                self._end('nxdomain' if response.rcode() == dns.rcode.NXDOMAIN else 'nodata', None, response)
                return False
            if len(self.chain) >= MAX_CNAME_HOPS:
                self.fail('more than %d CNAMEs' % MAX_CNAME_HOPS)
                return False
            self.chain.append(target.to_text(omit_final_dot=True).lower())
            self.current = target
            if not within:
                return True
            hopped = True


class Resolver(object):
    """Queries the given nameservers (or the system's), or with ``authoritative`` the zone's own servers.

    Every question is retransmitted within the deadline (UDP loses packets) and
    many questions can be in flight at once (``resolve_many``).
    """

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

    def deadline(self):
        return time.monotonic() + self.timeout

    def _ask_all(self, servers, questions, recursion, deadline):
        """Responses to ``[(name, rdtype)]`` asked at once of ``servers``; raises DNSException naming them."""
        asked = [_Question(servers, name, rdtype, recursion) for name, rdtype in questions]
        _exchange(asked, deadline)
        for question in asked:
            if question.response is None:
                raise dns.exception.DNSException(question.error(self.timeout))
        return [question.response for question in asked]

    def _servers_for(self, name, deadline):
        """The authoritative servers of the zone holding ``name``, found through the configured resolvers."""
        if not self.authoritative:
            return self.servers, True
        return self.zone_servers(name, deadline)[1], False

    def zone_servers(self, name, deadline):
        """``(zone, [(address, 53)])``: the zone holding ``name`` and the addresses of its NS, found through the
        configured resolvers; raises DNSException naming what is missing."""
        [response] = self._ask_all(self.servers, [(name, 'SOA')], True, deadline)
        zone = None
        for rrset in response.answer + response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                zone = rrset.name
        if zone is None:
            raise dns.exception.DNSException('no SOA found for %s' % name)
        with self._lock:
            cached = self._zone_servers.get(zone)
        if cached is None:
            [ns_response] = self._ask_all(self.servers, [(zone, 'NS')], True, deadline)
            targets = [rdata.target for rrset in ns_response.answer if rrset.rdtype == dns.rdatatype.NS for rdata in rrset]
            questions = [(target, rdtype) for target in targets for rdtype in ('A', 'AAAA')]
            cached = []
            for (_target, rdtype), answer in zip(questions, self._ask_all(self.servers, questions, True, deadline)):
                for found in answer.answer:
                    if found.rdtype == dns.rdatatype.from_text(rdtype):
                        cached.extend((item.address, 53) for item in found)
            if not cached:
                raise dns.exception.DNSException('no address for the nameservers of %s' % zone.to_text(omit_final_dot=True))
            with self._lock:
                self._zone_servers[zone] = cached
        return zone.to_text(omit_final_dot=True).lower(), cached

    def resolve_many(self, questions, deadline=None, dnssec=False):
        """An Answer for each ``(name, rdtype)``, in order: all asked at once, CNAMEs followed, before ``deadline``.

        CNAMEs are followed here (RFC 8461 §3.1 allows a CNAME'd policy record), so
        the same rules apply to recursive resolvers and to authoritative servers.
        With ``dnssec`` the questions carry the DO bit, so the Answers say whether they were signed and validated.
        """
        deadline = deadline or self.deadline()
        chases = [_Chase(name, rdtype) for name, rdtype in questions]
        owners = {}

        def ask(chase):
            try:
                servers, recursion = self._servers_for(chase.current, deadline)
            except (dns.exception.DNSException, OSError) as exc:
                chase.fail(str(exc) or type(exc).__name__)
                return []
            question = _Question(servers, chase.current, chase.rdtype, recursion, dnssec)
            owners[question] = chase
            return [question]

        def answered(question):
            chase = owners.pop(question)
            if question.response is None:
                chase.fail(question.error(self.timeout))
                return []
            # An authoritative server's data about other zones is not what their own servers say.
            return ask(chase) if chase.take(question.response, within=not self.authoritative) else []

        unfinished = _exchange([question for chase in chases for question in ask(chase)], deadline, answered)
        for question in unfinished:
            owners.pop(question).fail(question.error(self.timeout))
        return [chase.answer for chase in chases]

    def resolve(self, name, rdtype, deadline=None):
        return self.resolve_many([(name, rdtype)], deadline)[0]

    def addresses(self, host, deadline=None):
        """``(addresses, error or None)``: A and AAAA asked at once."""
        found = []
        errors = []
        for answer in self.resolve_many([(host, 'A'), (host, 'AAAA')], deadline):
            if answer.status == 'ok':
                found.extend(rdata.address for rdata in answer.rrset)
            elif answer.status == 'error':
                errors.append(answer.error)
        return found, (errors[0] if errors and not found else None)


def txt_facts(name, answer):
    records = []
    if answer.status == 'ok':
        records = [[part.decode('utf-8', 'replace') for part in rdata.strings] for rdata in answer.rrset]
    return {'name': name, 'status': answer.status, 'error': answer.error, 'cname_chain': answer.cname_chain, 'records': records}


def mx_facts(answer):
    hosts = []
    if answer.status == 'ok':
        hosts = sorted(({'host': rdata.exchange.to_text(omit_final_dot=True).lower(), 'preference': rdata.preference}
                        for rdata in answer.rrset), key=lambda item: (item['preference'], item['host']))
    return {'status': answer.status, 'error': answer.error, 'hosts': hosts}


def lookup_txt(resolver, name, deadline=None):
    return txt_facts(name, resolver.resolve(name, 'TXT', deadline))


def lookup_mx(resolver, domain, deadline=None):
    return mx_facts(resolver.resolve(domain, 'MX', deadline))


def tlsa_name(host, port=25):
    """The name of the TLSA records of a TLS service: ``_<port>._tcp.<host>`` (RFC 6698 §3)."""
    return '_%d._tcp.%s' % (port, host)


def tlsa_facts(name, answer, authoritative=False):
    """``authenticated`` is the resolver's AD bit. Authoritative servers never set it (they do not validate), so
    with ``authoritative`` it is always false and only ``signed`` (RRSIGs seen) tells of DNSSEC."""
    records = []
    if answer.status == 'ok':
        records = ['%d %d %d %s' % (rdata.usage, rdata.selector, rdata.mtype, binascii.hexlify(rdata.cert).decode('ascii'))
                   for rdata in answer.rrset]
    return {'name': name, 'status': answer.status, 'error': answer.error, 'cname_chain': answer.cname_chain,
            'records': records, 'authenticated': bool(answer.authenticated) and not authoritative,
            'signed': bool(answer.signed), 'authoritative': bool(authoritative)}


def lookup_tlsa(resolver, host, port=25, deadline=None):
    """The TLSA records of ``host`` for ``port``, asked with the DO bit as a DANE sender asks them."""
    name = tlsa_name(host, port)
    return tlsa_facts(name, resolver.resolve_many([(name, 'TLSA')], deadline, dnssec=True)[0], resolver.authoritative)


_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def _tls_context(ca_path, verify=True):
    """One context per CA bundle, shared by every connection: loading the system's CAs takes tens of ms."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get((ca_path, verify))
        if context is None:
            context = ssl.create_default_context(cafile=ca_path) if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            _CONTEXTS[(ca_path, verify)] = context
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


def _addresses(resolver, host, deadline):
    """``(addresses, None)``, or ``([], error fact)`` when the host does not resolve."""
    addresses, dns_error = resolver.addresses(host, deadline)
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


def fetch_policy(resolver, domain, ca_path=None, timeout=10.0, deadline=None, addresses=None):
    """GET the policy as RFC 8461 §3.3 says a sender does: HTTPS on 443, PKIX, no redirects, at most 64 KiB.

    Everything, the address lookup included, ends by ``deadline`` (default: ``timeout`` from now).
    ``addresses``, when given, are connected to instead of the host's own: one policy host
    among several is checked on its own (the certificate is still checked against the name).
    """
    host = 'mta-sts.' + domain
    facts = {'url': 'https://%s%s' % (host, POLICY_PATH), 'error': None, 'status': None, 'location': None,
             'content_type': None, 'body': None, 'truncated': False, 'tls_version': None, 'certificate': None}
    deadline = deadline or time.monotonic() + timeout
    addresses, facts['error'] = (list(addresses), None) if addresses else _addresses(resolver, host, deadline)
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

    def quit(self):
        """QUIT without waiting for the reply: every fact is known by then, and the wait would be a round trip."""
        try:
            self.sock.sendall(b'QUIT\r\n')
        except OSError:
            pass


def probe_mx(resolver, host, ca_path=None, timeout=10.0, helo='mta-sts-validator.invalid', addresses=None, port=25):
    """EHLO, STARTTLS and a verified handshake for ``host`` on ``port``, as an enforcing sender does.

    ``addresses``, when given, are connected to instead of the host's own: a server's names are checked on
    that server before DNS points at it. ``chain_der`` is the chain the server sent (DER, leaf first)
    whenever a handshake completed, the unverified one included: DANE matches it without PKIX."""
    facts = {'host': host, 'addresses': [], 'error': None, 'starttls': None, 'tls_version': None, 'certificate': None,
             'chain_der': None}
    deadline = time.monotonic() + timeout
    facts['addresses'], facts['error'] = (list(addresses), None) if addresses else _addresses(resolver, host, deadline)
    if facts['error']:
        return facts
    for verify in (True, False):
        sock, facts['error'] = _open(host, facts['addresses'], port, deadline, timeout)
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
                smtp.quit()
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
            facts['chain_der'] = served_chain(tls)
            if verify:
                facts['certificate'] = dict(_certificate(tls), valid=True, error=None)
            else:
                # The verified handshake failed; this one only tells which names the certificate has.
                facts['certificate'].update(_unverified_certificate(tls))
            _Smtp(tls, deadline).quit()
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


def served_chain(tls_socket):
    """The certificates the server sent, as DER, leaf first, whether or not they verified.

    DANE (RFC 7672 §3) matches TLSA records against this chain, not against a PKIX path: DANE-EE
    certificates are often self-signed, and DANE-TA names a certificate the server sends. ssl has a
    public ``get_unverified_chain()`` only from Python 3.13; 3.10 to 3.12 have it on the private
    ``_sslobj`` (returning certificate objects); older ones give the leaf alone.
    """
    read = getattr(tls_socket, 'get_unverified_chain', None)
    if read is None:
        read = getattr(getattr(tls_socket, '_sslobj', None), 'get_unverified_chain', None)
    chain = None
    if read is not None:
        try:
            chain = read()
        except (AttributeError, ValueError, ssl.SSLError):
            chain = None
    if chain:
        return [bytes(cert) if isinstance(cert, (bytes, bytearray)) else cert.public_bytes(_DER) for cert in chain]
    leaf = tls_socket.getpeercert(binary_form=True)
    return [leaf] if leaf else []


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


def gather(resolver, domain, ca_path=None, timeout=10.0, fetcher=None):
    """Facts for one domain, all but the MX probes, within one deadline of ``timeout`` seconds.

    Its DNS questions go out together. The policy fetch needs only the address of
    ``mta-sts.<domain>``, so it runs meanwhile on ``fetcher`` (an executor), which
    must not be the one running this call: a worker waiting for a task queued
    behind itself would wait forever.
    """
    deadline = time.monotonic() + timeout
    sts_name, tlsrpt_name = '_mta-sts.' + domain, '_smtp._tls.' + domain

    def fetch():
        return fetch_policy(resolver, domain, ca_path=ca_path, timeout=timeout, deadline=deadline)
    policy = fetcher.submit(fetch) if fetcher is not None else None
    sts, tlsrpt, mx = resolver.resolve_many([(sts_name, 'TXT'), (tlsrpt_name, 'TXT'), (domain, 'MX')], deadline)
    return {
        'domain': domain,
        'sts_txt': txt_facts(sts_name, sts),
        'tlsrpt_txt': txt_facts(tlsrpt_name, tlsrpt),
        'mx': mx_facts(mx),
        'policy_fetch': policy.result() if policy is not None else fetch(),
        'mx_probes': None,
    }
