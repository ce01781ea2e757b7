# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""RFC 2136 dynamic update with TSIG (BIND, Knot, PowerDNS), through dnspython."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import socket
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import env_fallback

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import DEFAULT_TIMEOUT, Provider, dns_name, stale_records
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import collect, empty_rrsets, encode, read_value

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
    import dns.xfr
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    DNSPYTHON_IMPORT_ERROR = exc

PORT = 53
# Queries in flight at once when the server refuses zone transfers.
QUERY_CONCURRENCY = 8
ALGORITHMS = ('hmac-sha256', 'hmac-sha384', 'hmac-sha512', 'hmac-sha224', 'hmac-sha1', 'hmac-md5')


class _Unsigned(Exception):
    """The server answered a signed message without a signature: it did not get as far as checking the key."""


class Rfc2136Provider(Provider):
    NAME = 'rfc2136'
    LIBRARY = ('dnspython', DNSPYTHON_IMPORT_ERROR)
    OPTIONS = {
        'server': {'type': 'str', 'fallback': (env_fallback, ['MAILSEC_RFC2136_SERVER'])},
        'port': {'type': 'int', 'default': PORT},
        'key_name': {'type': 'str', 'fallback': (env_fallback, ['MAILSEC_RFC2136_KEY_NAME'])},
        'key_secret': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['MAILSEC_RFC2136_KEY_SECRET'])},
        'key_algorithm': {'type': 'str', 'default': ALGORITHMS[0], 'choices': list(ALGORITHMS)},
    }
    REQUIRED = ('server',)
    REQUIRED_TOGETHER = (('key_name', 'key_secret'),)
    # Values travel as wire-format character-strings: no text form.
    TXT = None

    def __init__(self, server, port=PORT, key_name=None, key_secret=None, key_algorithm=ALGORITHMS[0], timeout=DEFAULT_TIMEOUT):
        self.check_library()
        if not server:
            raise ProviderError('server: required by provider rfc2136 (or set MAILSEC_RFC2136_SERVER)')
        if bool(key_name) != bool(key_secret):
            raise ProviderError('key_name and key_secret: give both for TSIG, or neither')
        self.server = server
        self.address = _address(server)
        self.port = port
        self.timeout = timeout
        self.key_name = key_name
        self.algorithm_name = key_algorithm
        self.keyring = None
        self.key_algorithm = None
        if key_name:
            try:
                self.keyring = dns.tsigkeyring.from_text({key_name: key_secret})
            except Exception:
                # The secret itself must not appear in the message.
                raise ProviderError('key_secret: not valid base64 for TSIG key %r' % key_name)
            self.key_algorithm = dns.name.from_text(key_algorithm)

    @classmethod
    def from_params(cls, params):
        settings = cls.settings(params)
        return cls(settings['server'], settings['port'], settings['key_name'], settings['key_secret'],
                   settings['key_algorithm'], settings['timeout'])

    def _where(self):
        return 'server %s port %d' % (self.server, self.port)

    def _sign(self, message):
        if self.keyring:
            message.use_tsig(self.keyring, keyname=dns.name.from_text(self.key_name), algorithm=self.key_algorithm)
        return message

    @contextlib.contextmanager
    def _talking(self, what):
        """Turn dnspython and socket failures into one ProviderError that says what to check (never with the key secret)."""
        where = self._where()
        try:
            yield
        except dns.tsig.PeerBadKey:
            raise ProviderError('%s: %s does not know TSIG key %r with algorithm %s (BADKEY); check key_name and key_algorithm'
                                % (what, where, self.key_name, self.algorithm_name))
        except dns.tsig.PeerBadSignature:
            raise ProviderError('%s: %s rejected TSIG key %r: the signature does not verify (BADSIG); check key_secret and '
                                'key_algorithm' % (what, where, self.key_name))
        except dns.tsig.PeerBadTime:
            raise ProviderError('%s: %s rejected TSIG key %r: the clocks of this host and the server differ too much '
                                '(BADTIME)' % (what, where, self.key_name))
        except dns.tsig.BadSignature:
            raise ProviderError('%s: the answer of %s does not verify with TSIG key %r; check key_secret'
                                % (what, where, self.key_name))
        except dns.exception.Timeout:
            raise ProviderError('%s: no answer from %s within %s seconds; check server and port, and that TCP to it is '
                                'not filtered' % (what, where, self.timeout))
        except ConnectionRefusedError:
            raise ProviderError('%s: %s refused the TCP connection: nothing listens there; check server and port'
                                % (what, where))
        except dns.xfr.TransferError:
            raise
        except dns.exception.FormError as exc:
            if self.keyring and 'requires a TSIG' in str(exc):
                raise _Unsigned()
            raise ProviderError('%s: %s sent an answer that is not valid DNS: %s' % (what, where, exc))
        except EOFError:
            raise ProviderError('%s: %s closed the connection without answering' % (what, where))
        except (socket.error, OSError) as exc:
            raise ProviderError('%s: cannot reach %s: %s' % (what, where, exc.strerror or exc))
        except dns.exception.DNSException as exc:
            raise ProviderError('%s: %s failed: %s' % (what, where, exc))

    def _send(self, message, what):
        with self._talking(what):
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.timeout)

    def _query(self, name, rdtype):
        what = 'query %s %s' % (name, rdtype)
        question = dns.message.make_query(dns.name.from_text(name), rdtype)
        try:
            response = self._send(self._sign(question), what)
        except _Unsigned:
            # Refusals come back unsigned; asking again unsigned (a query changes nothing) learns the reason.
            response = self._send(dns.message.make_query(dns.name.from_text(name), rdtype), what)
            if response.rcode() == dns.rcode.NOERROR:
                raise ProviderError('%s: %s answered without a TSIG signature; check that it knows key %r'
                                    % (what, self._where(), self.key_name))
        rcode = response.rcode()
        if rcode == dns.rcode.REFUSED:
            raise ProviderError('%s: %s refused the query for %s (REFUSED): it does not serve that zone; check server, '
                                'or give zone' % (what, self._where(), name))
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProviderError('%s: %s answered %s' % (what, self._where(), dns.rcode.to_text(rcode)))
        return response

    def find_zone(self, name):
        candidate = name
        while '.' in candidate:
            response = self._query(candidate, 'SOA')
            owner = dns.name.from_text(candidate)
            if any(rrset.name == owner and rrset.rdtype == dns.rdatatype.CNAME for rrset in response.answer):
                # The server followed the CNAME: its SOA says where the target lives, not the name.
                candidate = candidate.split('.', 1)[1]
                continue
            for rrset in response.answer + response.authority:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return dns_name(rrset.name.to_text())
            break
        raise ProviderError('no zone found for %s at %s: the server is not authoritative for it; check server, or give zone'
                            % (name, self._where()))

    def read_rrsets(self, zone, names, rtypes):
        if len(names) > 1 or rtypes is None or len(rtypes) > 1:
            found = self._read_by_transfer(zone, names, rtypes)
            if found is not None:
                return found
        found = empty_rrsets(names, rtypes)
        # Without a transfer, ANY over TCP gives every type at the name (RFC 8482 trims it only over UDP).
        questions = [(name, rtype) for name in names for rtype in rtypes or ('ANY',)]
        # All at once, each on its own connection: the zone's reads take one round trip, not one per name.
        with ThreadPoolExecutor(max_workers=min(QUERY_CONCURRENCY, len(questions))) as pool:
            answers = list(pool.map(lambda question: self._authoritative_answer(*question), questions))
        for (name, _rtype), response in zip(questions, answers):
            owner = dns.name.from_text(name)
            for rrset in response.answer:
                if rrset.name == owner:
                    _collect(found, name, rtypes, rrset)
        return found

    def _authoritative_answer(self, name, rtype):
        response = self._query(name, rtype)
        if response.flags & dns.flags.AA == 0:
            raise ProviderError('query %s %s: %s is not authoritative for it; give the primary server of its zone as server'
                                % (name, rtype, self._where()))
        return response

    def _read_by_transfer(self, zone, names, rtypes):
        """One AXFR for several names in a zone; None where the server refuses transfers."""
        found = empty_rrsets(names, rtypes)
        owners = dict((dns.name.from_text(name), name) for name in names)
        tsig = {}
        if self.keyring:
            tsig = dict(keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.key_algorithm)
        try:
            with self._talking('zone transfer %s' % zone):
                for message in dns.query.xfr(self.address, zone, port=self.port, timeout=self.timeout,
                                             lifetime=self.timeout * 3, relativize=False, **tsig):
                    for rrset in message.answer:
                        name = owners.get(rrset.name)
                        if name is not None:
                            _collect(found, name, rtypes, rrset)
        except (dns.xfr.TransferError, _Unsigned):
            return None
        return found

    def apply_rrsets(self, zone, changes):
        update = dns.update.UpdateMessage(zone)
        for change in changes:
            name = dns.name.from_text(change.name)
            # The prerequisite pins the RRset we read: if anyone changed it since,
            # the server refuses the whole message instead of losing their edit.
            if change.before:
                update.present(name, *[_rdata(change.rtype, value) for value in change.before])
            else:
                update.absent(name, change.rtype)
        for change in changes:
            for value in change.remove:
                update.delete(dns.name.from_text(change.name), _rdata(change.rtype, value))
        for change in changes:
            # Additions after every deletion: a server ignores a CNAME added beside other data (RFC 2136 section 3.4.2.2).
            for value in change.add:
                update.add(dns.name.from_text(change.name), change.ttl, _rdata(change.rtype, value))
        what = 'update %s' % zone
        try:
            response = self._send(self._sign(update), what)
        except _Unsigned:
            # Never sent again unsigned: the server might accept an unsigned update.
            raise ProviderError('%s: %s refused the update without checking key %r (an unsigned answer): it does not '
                                'serve zone %s, or that key may not update it; check server, zone and the server\'s '
                                'update ACL; nothing was applied' % (what, self._where(), self.key_name, zone))
        rcode = response.rcode()
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET):
            raise stale_records('%s at %s' % (what, self._where()), ' (%s)' % dns.rcode.to_text(rcode),
                                [change.rtype for change in changes])
        if rcode == dns.rcode.REFUSED:
            raise ProviderError('%s: %s refused the update (REFUSED): %s may not update zone %s there; check the '
                                'server\'s update ACL; nothing was applied'
                                % (what, self._where(), 'key %r' % self.key_name if self.key_name else 'an unsigned update', zone))
        if rcode == dns.rcode.NOTAUTH:
            raise ProviderError('%s: %s is not the primary of zone %s (NOTAUTH); give the primary as server, and check zone; '
                                'nothing was applied' % (what, self._where(), zone))
        if rcode != dns.rcode.NOERROR:
            raise ProviderError('%s: %s answered %s; nothing was applied' % (what, self._where(), dns.rcode.to_text(rcode)))


def _collect(found, name, rtypes, rrset):
    rtype = dns.rdatatype.to_text(rrset.rdtype)
    for rdata in rrset:
        # TXT as its wire character-strings, byte for byte; the rest through their presentation text.
        value = tuple(rdata.strings) if rtype == 'TXT' else read_value(rtype, rdata.to_text())
        collect(found, name, rtype, rtypes, rrset.ttl, value)


def _rdata(rtype, value):
    if rtype == 'TXT':
        return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, value)
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, encode(rtype, value))


def _address(server):
    """A name or address to the address dnspython connects to."""
    try:
        socket.inet_pton(socket.AF_INET6 if ':' in server else socket.AF_INET, server)
        return server
    except (socket.error, OSError):
        pass
    try:
        return socket.getaddrinfo(server, None, 0, socket.SOCK_STREAM)[0][4][0]
    except (socket.error, OSError) as exc:
        raise ProviderError('server %r: cannot resolve it: %s' % (server, exc))
