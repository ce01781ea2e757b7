# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""RFC 2136 dynamic update with TSIG (BIND, Knot, PowerDNS), through dnspython."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import socket

from ansible.module_utils.basic import env_fallback

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
    import dns.xfr
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = exc

ALGORITHMS = ('hmac-sha256', 'hmac-sha384', 'hmac-sha512', 'hmac-sha224', 'hmac-sha1', 'hmac-md5')


class Rfc2136Provider(Provider):
    OPTIONS = {
        'server': {'type': 'str', 'fallback': (env_fallback, ['MAILSEC_RFC2136_SERVER'])},
        'port': {'type': 'int', 'default': 53},
        'key_name': {'type': 'str', 'fallback': (env_fallback, ['MAILSEC_RFC2136_KEY_NAME'])},
        'key_secret': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['MAILSEC_RFC2136_KEY_SECRET'])},
        'key_algorithm': {'type': 'str', 'default': 'hmac-sha256', 'choices': list(ALGORITHMS)},
    }

    def __init__(self, server, port=53, key_name=None, key_secret=None, key_algorithm='hmac-sha256', timeout=10.0):
        if not HAS_DNSPYTHON:
            raise ProviderError('the rfc2136 provider needs the dnspython Python library: %s' % DNSPYTHON_IMPORT_ERROR)
        if not server:
            raise ProviderError('server: required by provider rfc2136 (or set MAILSEC_RFC2136_SERVER)')
        if bool(key_name) != bool(key_secret):
            raise ProviderError('key_name and key_secret: give both for TSIG, or neither')
        self.server = server
        self.address = _address(server)
        self.port = port
        self.timeout = timeout
        self.key_name = key_name
        self.keyring = None
        self.key_algorithm = None
        if key_name:
            try:
                self.keyring = dns.tsigkeyring.from_text({key_name: key_secret})
            except Exception:
                # The secret itself must not appear in the message.
                raise ProviderError('key_secret: not valid base64 for TSIG key %r' % key_name)
            self.key_algorithm = dns.name.from_text(key_algorithm)
        self._snapshots = {}

    @classmethod
    def from_params(cls, params):
        return cls(params.get('server'), params.get('port') or 53, params.get('key_name'), params.get('key_secret'),
                   params.get('key_algorithm') or 'hmac-sha256', params.get('timeout') or 10.0)

    def _where(self):
        return '%s port %d' % (self.server, self.port)

    def _sign(self, message):
        if self.keyring:
            message.use_tsig(self.keyring, keyname=dns.name.from_text(self.key_name), algorithm=self.key_algorithm)
        return message

    @contextlib.contextmanager
    def _talking(self, what):
        """Turn dnspython and socket failures into one clear ProviderError (never with the key secret)."""
        try:
            yield
        except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature, dns.tsig.PeerBadTime, dns.tsig.BadSignature) as exc:
            raise ProviderError('%s: %s rejected TSIG key %r (%s)' % (what, self._where(), self.key_name, type(exc).__name__))
        except dns.exception.Timeout:
            raise ProviderError('%s: no answer from %s within %s seconds' % (what, self._where(), self.timeout))
        except dns.xfr.TransferError:
            raise
        except (socket.error, OSError, EOFError, dns.exception.DNSException) as exc:
            raise ProviderError('%s: %s failed: %s' % (what, self._where(), exc))

    def _send(self, message, what):
        with self._talking(what):
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.timeout)

    def _query(self, name, rdtype):
        message = self._sign(dns.message.make_query(dns.name.from_text(name), rdtype))
        response = self._send(message, 'query %s %s' % (name, rdtype))
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProviderError('query %s %s: %s answered %s' % (name, rdtype, self._where(), dns.rcode.to_text(rcode)))
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
                    return rrset.name.to_text(omit_final_dot=True).lower()
            break
        raise ProviderError('no zone found for %s at %s: the server is not authoritative for it' % (name, self._where()))

    def read(self, zone, names):
        if len(names) > 1:
            found = self._read_by_transfer(zone, names)
            if found is not None:
                return found
        return dict((name, self._read_name(name)) for name in names)

    def _read_name(self, name):
        response = self._query(name, 'TXT')
        if response.flags & dns.flags.AA == 0:
            raise ProviderError('query %s TXT: %s is not authoritative for it' % (name, self._where()))
        owner = dns.name.from_text(name)
        found = TxtRRset(name)
        for rrset in response.answer:
            if rrset.name == owner:
                _collect(found, rrset)
        return found

    def _read_by_transfer(self, zone, names):
        """One AXFR for several names in a zone; None where the server refuses transfers."""
        wanted = dict((dns.name.from_text(name), TxtRRset(name)) for name in names)
        tsig = {}
        if self.keyring:
            tsig = dict(keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.key_algorithm)
        try:
            with self._talking('zone transfer %s' % zone):
                for message in dns.query.xfr(self.address, zone, port=self.port, timeout=self.timeout,
                                             lifetime=self.timeout * 3, relativize=False, **tsig):
                    for rrset in message.answer:
                        found = wanted.get(rrset.name)
                        if found is not None:
                            _collect(found, rrset)
        except dns.xfr.TransferError:
            return None
        return dict((found.name, found) for found in wanted.values())

    def apply(self, zone, changes):
        update = dns.update.UpdateMessage(zone)
        for change in changes:
            name = dns.name.from_text(change.name)
            # The prerequisite pins the RRset we read: if anyone changed it since,
            # the server refuses the whole message instead of losing their edit.
            if change.before:
                update.present(name, *[_rdata(value) for value in change.before])
            else:
                update.absent(name, 'TXT')
            for value in change.remove:
                update.delete(name, _rdata(value))
            for value in change.add:
                update.add(name, change.ttl, _rdata(value))
        response = self._send(self._sign(update), 'update %s' % zone)
        rcode = response.rcode()
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET):
            raise ProviderError('update %s: the TXT records changed at %s since they were read; nothing was applied, re-run'
                                % (zone, self._where()))
        if rcode != dns.rcode.NOERROR:
            raise ProviderError('update %s: %s answered %s; nothing was applied' % (zone, self._where(), dns.rcode.to_text(rcode)))


def _collect(found, rrset):
    if rrset.rdtype == dns.rdatatype.CNAME:
        found.cname = rrset[0].target.to_text(omit_final_dot=True).lower()
    elif rrset.rdtype == dns.rdatatype.TXT:
        found.ttl = rrset.ttl
        found.values.extend(tuple(rdata.strings) for rdata in rrset)


def _rdata(value):
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, value)


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
