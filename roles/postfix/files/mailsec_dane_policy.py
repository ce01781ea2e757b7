#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A Postfix socketmap for smtp_tls_policy_maps that answers ``dane-only`` where DANE is complete.

Placed ahead of the MTA-STS socketmap, it makes DANE win over MTA-STS (RFC 8461
section 2): postfix-mta-sts-resolver answers ``secure`` for every domain with a
policy, so without an earlier answer Postfix would never use the TLSA records.

Run by Postfix's spawn(8), one process per connection, with the connection on
stdin and stdout (and stderr, which is why nothing may ever be written there).
Requests are netstrings ``NAME KEY``; replies ``OK dane-only``, ``NOTFOUND ``,
``TEMP reason`` or, for a malformed request, ``PERM reason`` before exiting.

The answer for a domain (``decide``):
- MX lookup fails (SERVFAIL, timeout): TEMP, so Postfix defers rather than downgrades.
- no MX, an insecure MX RRset (no AD bit) or a null MX: NOTFOUND (the next map decides).
- every MX host (the domain itself when it has no MX) has secure address records that
  are not an alias, and secure TLSA at ``_25._tcp.<host>`` with a usable record
  (RFC 7672: usage 2 or 3, known selector and matching type): ``OK dane-only``.
- any host without that: NOTFOUND; Postfix's default level ``dane`` still uses the
  TLSA records of the hosts that have them when no later map answers.
- otherwise a lookup of some host failed: TEMP.

Python 3.8 or newer, standard library and dnspython only: it runs under spawn as an
unprivileged user, with the python of the venv the role installs dnspython into.
"""

from __future__ import absolute_import, division, print_function

import argparse
import collections
import os
import re
import sys
import syslog
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

MAX_REQUEST = 10000      # a name and a domain: anything longer is not Postfix talking
MAX_LENGTH_DIGITS = 5
TIMEOUT = 10.0           # seconds for all the lookups of one request
ATTEMPT_TIMEOUT = 2.0    # seconds before the same question goes to the next (or the same) server
EDNS_PAYLOAD = 1232
DANE_USAGES = (2, 3)     # RFC 7672 section 3.1: PKIX-TA(0) and PKIX-EE(1) are not for SMTP
SELECTORS = (0, 1)
DIGEST_LENGTHS = {0: None, 1: 32, 2: 64}   # matching type: full, SHA-256, SHA-512

OK_DANE_ONLY = 'OK dane-only'
NOTFOUND = 'NOTFOUND '

_LABEL = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$')

Answer = collections.namedtuple('Answer', 'status secure records aliased reason')
"""One lookup: status 'ok' | 'nodata' | 'nxdomain' | 'fail'; secure: the AD bit was set;
records: MX (preference, exchange), TLSA (usage, selector, mtype, data) or address strings;
aliased: the name was a CNAME; reason: why it failed."""

Decision = collections.namedtuple('Decision', 'reply why')


class ProtocolError(Exception):
    """The client broke the netstring framing or the request shape."""


def plain_domain(key):
    """The key as a lowercase domain without its trailing dot, or None when it is not a plain domain.

    Postfix also asks for ``[host]:port`` next hops and ``.parent`` domains; those
    are not destinations whose MX records name the hosts, so they get NOTFOUND.
    """
    name = key.strip().lower()
    if name.endswith('.'):
        name = name[:-1]
    if not name or len(name) > 253:
        return None
    if all(_LABEL.match(label) for label in name.split('.')):
        return name
    return None


def usable_tlsa(records):
    """The TLSA records a DANE SMTP client can use (RFC 7672 section 3.1, RFC 6698)."""
    usable = []
    for usage, selector, mtype, data in records:
        if usage not in DANE_USAGES or selector not in SELECTORS or mtype not in DIGEST_LENGTHS:
            continue
        length = DIGEST_LENGTHS[mtype]
        if (length is None and data) or len(data) == length:
            usable.append((usage, selector, mtype, data))
    return usable


def _failed(answer, what):
    return Decision('TEMP %s lookup failed: %s' % (what, answer.reason), answer.reason)


def _host_verdict(host, lookup):
    """None when MX host ``host`` is ready for DANE, else the Decision that says why not: NOTFOUND wins over TEMP."""
    temporary = None
    for name, rdtype in (('_25._tcp.' + host, 'TLSA'), (host, 'A'), (host, 'AAAA')):
        what = '%s %s' % (name, rdtype)
        answer = lookup(name, rdtype)
        if answer.status == 'fail':
            temporary = temporary or _failed(answer, what)
            continue
        if not answer.secure:
            return Decision(NOTFOUND, '%s is not DNSSEC-secure' % what)
        if rdtype == 'TLSA':
            if answer.status != 'ok':
                return Decision(NOTFOUND, '%s has no TLSA records (%s)' % (host, answer.status))
            if not usable_tlsa(answer.records):
                return Decision(NOTFOUND, '%s has no usable TLSA record (usage 2 or 3)' % host)
        elif answer.aliased:
            # RFC 7672 2.2.2 would then look for TLSA at the alias target first: not predicted here.
            return Decision(NOTFOUND, '%s is an alias (CNAME)' % host)
    return temporary


def decide(domain, lookup):
    """The socketmap reply for ``domain``, with why, from ``lookup(name, rdtype) -> Answer``.

    Pure: all DNS comes through ``lookup``. Every MX host must be DANE-ready for
    ``dane-only``, since Postfix then refuses any MX without usable TLSA.
    """
    mx = lookup(domain, 'MX')
    if mx.status == 'fail':
        return _failed(mx, '%s MX' % domain)
    if mx.status == 'nxdomain':
        return Decision(NOTFOUND, '%s does not exist' % domain)
    if not mx.secure:
        return Decision(NOTFOUND, '%s MX is not DNSSEC-secure' % domain)
    if mx.status == 'nodata':
        hosts = [domain]   # RFC 5321 5.1: the implicit MX
    else:
        hosts = sorted(set(exchange for _preference, exchange in mx.records))
        if '.' in hosts:
            return Decision(NOTFOUND, '%s has a null MX (accepts no mail)' % domain)
    temporary = None
    for host in hosts:
        verdict = _host_verdict(host, lookup)
        if verdict is None:
            continue
        if verdict.reply == NOTFOUND:
            return verdict
        temporary = temporary or verdict
    if temporary:
        return temporary
    return Decision(OK_DANE_ONLY, 'every MX host of %s has secure, usable TLSA: %s' % (domain, ', '.join(hosts)))


def _records(rrset):
    if rrset.rdtype == dns.rdatatype.MX:
        return [(r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in rrset]
    if rrset.rdtype == dns.rdatatype.TLSA:
        return [(r.usage, r.selector, r.mtype, r.cert) for r in rrset]
    return [r.address for r in rrset]


def read_answer(response, name, rdtype):
    """An Answer from a NOERROR or NXDOMAIN response, following the CNAME chain inside it."""
    current = dns.name.from_text(name)
    wanted = dns.rdatatype.from_text(rdtype)
    secure = bool(response.flags & dns.flags.AD)
    aliased = False
    for _hop in range(16):
        target = None
        for rrset in response.answer:
            if rrset.name == current and rrset.rdtype == wanted:
                return Answer('ok', secure, _records(rrset), aliased, None)
            if rrset.name == current and rrset.rdtype == dns.rdatatype.CNAME:
                target = rrset[0].target
        if target is None:
            break
        current = target
        aliased = True
    status = 'nxdomain' if response.rcode() == dns.rcode.NXDOMAIN else 'nodata'
    return Answer(status, secure, [], aliased, None)


class DnsLookup(object):
    """Asks the resolvers of /etc/resolv.conf (or ``nameservers``) with the DO bit, as Postfix's libc does.

    Called once per request, it gives the lookup for that request: its questions
    share one deadline. A question goes to the servers in turn, again after a
    lost packet, until one answers NOERROR or NXDOMAIN.
    """

    def __init__(self, nameservers=None, timeout=TIMEOUT):
        if nameservers:
            self.servers = [_server(text) for text in nameservers]
        else:
            try:
                system = dns.resolver.Resolver()
                self.servers = [(str(address), system.port) for address in system.nameservers]
            except dns.resolver.NoResolverConfiguration:
                self.servers = []   # every answer is then TEMP 'no nameserver': Postfix defers
        self.timeout = timeout

    def __call__(self):
        deadline = time.monotonic() + self.timeout
        return lambda name, rdtype: self.ask(name, rdtype, deadline)

    def ask(self, name, rdtype, deadline):
        query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=True, payload=EDNS_PAYLOAD)
        given_up = {}
        lost = 0
        while True:
            live = [server for server in self.servers if server not in given_up]
            remaining = deadline - time.monotonic()
            if not live or remaining <= 0:
                break
            address, port = live[lost % len(live)]
            try:
                response, _tcp = dns.query.udp_with_fallback(query, address, timeout=min(ATTEMPT_TIMEOUT, remaining),
                                                             port=port)
            except dns.exception.Timeout:
                lost += 1
                continue
            except (dns.exception.DNSException, OSError, ValueError) as exc:
                given_up[(address, port)] = str(exc) or type(exc).__name__
                continue
            if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return read_answer(response, name, rdtype)
            given_up[(address, port)] = dns.rcode.to_text(response.rcode())
        reasons = [('[%s]:%d %s' if ':' in address else '%s:%d %s') % (address, port, why)
                   for (address, port), why in given_up.items()]
        if lost or not given_up:
            reasons.insert(0, 'no answer within %g s' % self.timeout)
        return Answer('fail', False, [], False, '; '.join(reasons) or 'no nameserver')


def _server(text):
    """``ip``, ``ip:port`` or ``[ipv6]:port``, as the collection's other nameserver options take them."""
    if text.startswith('['):
        address, _sep, port = text[1:].partition(']:')
    elif text.count(':') == 1:
        address, _sep, port = text.partition(':')
    else:
        address, port = text, '53'
    return address, int(port)


def read_netstring(stream):
    """One netstring's payload, or None at a clean end of input."""
    digits = b''
    while True:
        char = stream.read(1)
        if not char:
            if digits:
                raise ProtocolError('connection closed inside a netstring length')
            return None
        if char == b':':
            break
        if not char.isdigit() or len(digits) >= MAX_LENGTH_DIGITS:
            raise ProtocolError('malformed netstring length')
        digits += char
    if not digits:
        raise ProtocolError('malformed netstring length')
    length = int(digits)
    if length > MAX_REQUEST:
        raise ProtocolError('request longer than %d bytes' % MAX_REQUEST)
    payload = stream.read(length)
    if len(payload) != length or stream.read(1) != b',':
        raise ProtocolError('malformed netstring')
    return payload


def write_netstring(stream, text):
    data = text.encode('utf-8')
    stream.write(b'%d:%s,' % (len(data), data))
    stream.flush()


def answer_request(payload, new_lookup):
    """The reply to one request payload ``NAME KEY``; ``new_lookup()`` gives the request its lookup."""
    try:
        text = payload.decode('ascii')
    except UnicodeDecodeError:
        return Decision(NOTFOUND, 'key is not ASCII')
    _map, space, key = text.partition(' ')
    if not space:
        raise ProtocolError('request is not "NAME KEY"')
    domain = plain_domain(key)
    if domain is None:
        return Decision(NOTFOUND, '%r is not a plain domain' % key)
    return decide(domain, new_lookup())


def serve(reader, writer, new_lookup, log=None):
    """Answers requests until the client closes; a protocol error gets PERM and ends it."""
    while True:
        try:
            payload = read_netstring(reader)
            if payload is None:
                return 0
            decision = answer_request(payload, new_lookup)
        except ProtocolError as exc:
            write_netstring(writer, 'PERM %s' % exc)
            if log:
                log(syslog.LOG_WARNING, 'PERM %s' % exc)
            return 1
        except OSError:
            return 1   # the client is gone
        except Exception as exc:  # pylint: disable=broad-except
            # A traceback on stderr would go to the client: answer TEMP and log instead.
            decision = Decision('TEMP internal error: %s' % type(exc).__name__, repr(exc))
        write_netstring(writer, decision.reply)
        if log and decision.reply.startswith('TEMP'):
            # Only deferrals: Postfix logs the TLS outcome of every delivery itself.
            log(syslog.LOG_WARNING, '%s: %s (%s)' % (payload.decode('ascii', 'replace'), decision.reply, decision.why))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--timeout', type=float, default=TIMEOUT, help='seconds for all lookups of one request')
    parser.add_argument('--nameserver', action='append', default=[],
                        help='ip, ip:port or [ipv6]:port of a validating resolver (default: /etc/resolv.conf)')
    parser.add_argument('--query', metavar='DOMAIN', help='print the decision for DOMAIN and why, then exit')
    args = parser.parse_args(argv)
    if args.query:
        domain = plain_domain(args.query)
        lookup = DnsLookup(args.nameserver, args.timeout)()
        decision = decide(domain, lookup) if domain else Decision(NOTFOUND, 'not a plain domain')
        print('%s\t%s' % (decision.reply.strip(), decision.why))
        return 0
    # spawn(8) connects stderr to the client too: a warning or traceback there would break the protocol.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    new_lookup = DnsLookup(args.nameserver, args.timeout)
    syslog.openlog('mailsec-dane-policy', syslog.LOG_PID, syslog.LOG_MAIL)
    return serve(sys.stdin.buffer, sys.stdout.buffer, new_lookup, syslog.syslog)


if __name__ == '__main__':
    sys.exit(main())
