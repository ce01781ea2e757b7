# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Does the host's resolver validate DNSSEC? Postfix's DANE silently does nothing when it does not.

Each nameserver Postfix would use (those of /etc/resolv.conf, or the ones given)
is asked two questions with the DO bit set: the DNSSEC probe (Postfix's
``dnssec_probe``, ``type:name``), whose answer must carry the AD bit, and a
name with a broken signature, which must be refused with SERVFAIL. The
questions are I/O (``ask``); what the answers mean is ``judge_probe``, pure.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import (
    DNSPYTHON_IMPORT_ERROR, EDNS_PAYLOAD, HAS_DNSPYTHON, LiveError, parse_nameserver, server_text)

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.resolver
except ImportError:  # pragma: no cover - _live's HAS_DNSPYTHON is False too, and probe_resolver says what is missing
    pass

ATTEMPT_MIN = 0.5   # seconds: a lost UDP packet is sent again within the timeout
PROBE_EXAMPLE = "Postfix's type:name form, e.g. ns:. or soa:example.org."


def parse_probe(dnssec_probe):
    """``type:name`` (Postfix's ``dnssec_probe``) to ``(rdtype text, name)``; ValidationError otherwise."""
    rdtype, sep, name = str(dnssec_probe or '').partition(':')
    rdtype = rdtype.strip().upper()
    name = name.strip()
    if not sep or not rdtype or not name:
        raise ValidationError('dnssec_probe', dnssec_probe, 'use ' + PROBE_EXAMPLE)
    try:
        dns.rdatatype.from_text(rdtype)
        dns.name.from_text(name)
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValidationError('dnssec_probe', dnssec_probe, '%s; use %s' % (exc, PROBE_EXAMPLE))
    return rdtype, name


def ask(server, name, rdtype, timeout):
    """One question with the DO bit to ``(address, port)``: ``{rcode, ad, records}`` or ``{error}``."""
    query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=True, payload=EDNS_PAYLOAD)
    deadline = time.monotonic() + timeout
    attempt = max(timeout / 3.0, ATTEMPT_MIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {'error': 'no answer within %g s' % timeout}
        try:
            response, _tcp = dns.query.udp_with_fallback(query, server[0], timeout=min(attempt, remaining),
                                                         port=server[1])
        except dns.exception.Timeout:
            continue
        except ConnectionRefusedError:
            return {'error': 'refused the query (nothing listens there)'}
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return {'error': str(exc) or type(exc).__name__}
        return {'rcode': dns.rcode.to_text(response.rcode()), 'ad': bool(response.flags & dns.flags.AD),
                'records': sum(len(rrset) for rrset in response.answer)}


def judge_probe(server, probe, probe_answer, bogus_name, bogus_answer):
    """The problems shown by one server's two answers (``ask`` results); empty when it validates.

    ``server`` and ``probe`` are only named in the messages.
    """
    problems = []
    where = 'the resolver at %s' % server
    if 'error' in probe_answer:
        problems.append('%s did not answer the DNSSEC probe %s: %s' % (where, probe, probe_answer['error']))
    elif probe_answer['rcode'] != 'NOERROR':
        problems.append('%s answers %s to the DNSSEC probe %s: it cannot validate that name (set dnssec_probe to a '
                        'DNSSEC-signed name the resolver can reach, and check its trust anchor)'
                        % (where, probe_answer['rcode'], probe))
    elif not probe_answer['ad']:
        problems.append('%s does not validate DNSSEC: no AD bit on its answer to %s (Postfix would treat every '
                        'answer as insecure and never use TLSA records)' % (where, probe))
    if 'error' in bogus_answer:
        problems.append('%s did not answer the name with a broken signature %s: %s'
                        % (where, bogus_name, bogus_answer['error']))
    elif bogus_answer['rcode'] != 'SERVFAIL':
        problems.append('%s answers a name with a broken signature: %s gave %s%s instead of SERVFAIL, so forged '
                        'answers would be accepted' % (where, bogus_name, bogus_answer['rcode'],
                                                       ' with the AD bit' if bogus_answer['ad'] else ''))
    return problems


def system_nameservers():
    """The nameservers of /etc/resolv.conf, as ``(address, port)``: those Postfix's resolver asks."""
    try:
        system = dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        return []
    return [(str(address), system.port) for address in system.nameservers]


def probe_resolver(dnssec_probe, bogus_name, nameservers=None, timeout=5.0):
    """Problems found asking each nameserver (empty list: every one validates DNSSEC).

    ``dnssec_probe`` is ``type:name`` as Postfix takes it; ``bogus_name`` a name whose
    signature is broken; ``nameservers`` as ``ip``, ``ip:port`` or ``[ipv6]:port``
    (default: /etc/resolv.conf). Bad options raise ValidationError before any question.
    """
    if not HAS_DNSPYTHON:
        return ['the DNSSEC probe needs the dnspython Python library: %s' % DNSPYTHON_IMPORT_ERROR]
    rdtype, name = parse_probe(dnssec_probe)
    if not bogus_name:
        raise ValidationError('bogus_name', bogus_name, 'give a DNSSEC-signed name whose signature is broken')
    try:
        dns.name.from_text(bogus_name)
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValidationError('bogus_name', bogus_name, str(exc))
    if nameservers:
        try:
            servers = [parse_nameserver(text) for text in nameservers]
        except LiveError as exc:
            raise ValidationError('nameservers', nameservers, str(exc))
    else:
        servers = system_nameservers()
        if not servers:
            return ['no nameserver in /etc/resolv.conf to check for DNSSEC validation']
    problems = []
    for server in servers:
        problems.extend(judge_probe(server_text(server), dnssec_probe, ask(server, name, rdtype, timeout),
                                    bogus_name, ask(server, bogus_name, 'A', timeout)))
    return problems
