# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The validator shared by the ``validate`` lookup and the ``policy_info`` module.

Validates every term first, then gathers live facts for all domains in
parallel, probes each distinct MX host once, and turns facts into results
with the pure checks.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import ipaddress
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import evaluate, probe_result
from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnssec import parse_probe, probe_resolver
from ansible_collections.mailsec.mta_sts.plugins.module_utils._expect import normalize_expect
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import EXPIRY_WARNING_DAYS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import (
    LiveError, Resolver, gather, lookup_tlsa, parse_nameserver, probe_mx,
)

# The options of every live check (doc fragment mailsec.mta_sts.validate.probe).
PROBE_OPTIONS = dict(
    nameservers=dict(type='list', elements='str'),
    authoritative=dict(type='bool', default=False),
    timeout=dict(type='float', default=10.0),
    ca_path=dict(type='path'),
    concurrency=dict(type='int', default=32),
    expiry_warning_days=dict(type='int', default=EXPIRY_WARNING_DAYS),
)
# The validator's (doc fragment mailsec.mta_sts.validate, with the above).
OPTIONS = dict(
    PROBE_OPTIONS,
    expect=dict(type='dict'),
    check_mx_tls=dict(type='bool', default=False),
    check_dane=dict(type='bool', default=False),
    dane_dnssec_probe=dict(type='str', default='ns:.'),
    dane_bogus_name=dict(type='str', default='dnssec-failed.org'),
)
# The keys of the record modules' domains items: in a term they are its expect, so one inventory list drives both.
ITEM_KEYS = ('policy', 'mode', 'mx', 'max_age', 'id', 'rua', 'state')
MAX_EXPIRY_WARNING_DAYS = 365


def _term_expect(term, where):
    """The normalized expect of a dict term: its ``expect``, or its record-module keys."""
    allowed = ('domain', 'expect') + ITEM_KEYS
    for key in term:
        if key not in allowed:
            raise ValidationError('%s.%s' % (where, key), term[key], 'unknown key; allowed: %s' % ', '.join(allowed))
    inline = dict((key, term[key]) for key in ITEM_KEYS if term.get(key) is not None)
    own = term.get('expect')
    if own and inline:
        raise ValidationError(where + '.expect', own, 'give expect or the keys %s, not both' % ', '.join(sorted(inline)))
    try:
        return normalize_expect(own or inline)
    except ValidationError as exc:
        field = str(exc.field)
        # normalize_expect names expect.<key>; inline keys sit on the term itself.
        field = field[len('expect'):].lstrip('.') if inline and field.startswith('expect') else field
        raise ValidationError('%s.%s' % (where, field) if field else where, exc.value, exc.rule)


def parse_terms(terms, expect=None, name='terms'):
    """``[(domain, normalized expect or None)]``; raises ValidationError naming the term.

    A dict term is ``{domain, expect}`` or an item of the record modules' ``domains``
    (``{domain, policy, id, rua, state, ...}``). A domain listed twice (in any spelling) is refused.
    """
    default = normalize_expect(expect) if expect else None
    parsed = []
    first = {}
    for index, term in enumerate(terms):
        where = '%s[%d]' % (name, index)
        if isinstance(term, Mapping):
            domain = normalize_domain(term.get('domain'), where + '.domain')
            own = _term_expect(term, where)
        else:
            domain, own = normalize_domain(term, where), None
        if domain in first:
            raise ValidationError(where, term, 'is %s again, already listed as %s' % (domain, first[domain]))
        first[domain] = where
        parsed.append((domain, own or default))
    return parsed


def check_options(options):
    for server in options.get('nameservers') or []:
        try:
            parse_nameserver(server)
        except LiveError as exc:
            raise ValidationError('nameservers', server, str(exc).split(': ', 1)[-1])
    if not 0 < (options.get('timeout') or 0) <= 600:
        raise ValidationError('timeout', options.get('timeout'), 'must be more than 0 and at most 600 seconds')
    if not 1 <= (options.get('concurrency') or 0) <= 256:
        raise ValidationError('concurrency', options.get('concurrency'), 'must be 1 to 256')
    days = options.get('expiry_warning_days')
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_EXPIRY_WARNING_DAYS:
        raise ValidationError('expiry_warning_days', days, 'must be a whole number of days from 0 to %d' % MAX_EXPIRY_WARNING_DAYS)


def check_dane_options(dnssec_probe, bogus_name):
    """The options of the resolver's DNSSEC check, validated before any question."""
    try:
        parse_probe(dnssec_probe)
    except ValidationError as exc:
        raise ValidationError('dane_dnssec_probe', dnssec_probe, exc.rule)
    normalize_domain(bogus_name, 'dane_bogus_name')


def _resolver_validation(dnssec_probe, bogus_name, nameservers, timeout):
    """Whether the resolvers of the run validate DNSSEC, as Postfix's dnssec_probe asks: ``{validates, problems}``."""
    problems = probe_resolver(dnssec_probe, bogus_name, nameservers or None, timeout)
    return {'validates': not problems, 'problems': problems}


def validate(terms, expect=None, nameservers=None, authoritative=False, timeout=10.0, ca_path=None,
             check_mx_tls=False, concurrency=32, expiry_warning_days=EXPIRY_WARNING_DAYS, now=None, terms_name='terms',
             check_dane=False, dane_dnssec_probe='ns:.', dane_bogus_name='dnssec-failed.org'):
    """One result per term, in order (see the lookup's documentation for the shape).

    Certificates are judged at ``now``, the current time unless given (the checks never read the clock).
    ``check_dane`` implies ``check_mx_tls``: the served chain is what the TLSA records are matched against.
    """
    check_options(dict(nameservers=nameservers, timeout=timeout, concurrency=concurrency, expiry_warning_days=expiry_warning_days))
    if check_dane:
        check_dane_options(dane_dnssec_probe, dane_bogus_name)
    parsed = parse_terms(terms, expect, terms_name)
    resolver = Resolver(nameservers=nameservers, authoritative=authoritative, timeout=timeout)
    # Each domain's policy fetch runs on the second pool while its DNS questions are out (see gather).
    with ThreadPoolExecutor(max_workers=concurrency) as pool, ThreadPoolExecutor(max_workers=concurrency) as fetcher:
        # Authoritative servers never validate: there is no resolver whose AD bit to check.
        validation = (pool.submit(_resolver_validation, dane_dnssec_probe, dane_bogus_name, nameservers, timeout)
                      if check_dane and not authoritative else None)
        facts = list(pool.map(lambda item: gather(resolver, item[0], ca_path, timeout, fetcher), parsed))
        if check_mx_tls or check_dane:
            # Many domains share their MX hosts: each host is probed (and its TLSA looked up) once.
            hosts = sorted(set(mx['host'] for fact in facts for mx in fact['mx']['hosts'] if mx['host']))
            lookups = [pool.submit(lookup_tlsa, resolver, host) for host in hosts] if check_dane else []
            probes = dict(zip(hosts, _probe_all(pool, resolver, hosts, ca_path, timeout)))
            tlsa = dict(zip(hosts, [lookup.result() for lookup in lookups]))
            resolver_facts = validation.result() if validation is not None else {'validates': None, 'problems': []}
            for fact in facts:
                own = [mx['host'] for mx in fact['mx']['hosts'] if mx['host']]
                fact['mx_probes'] = dict((host, probes[host]) for host in own)
                if check_dane:
                    fact['dane'] = {'tlsa': dict((host, tlsa[host]) for host in own), 'resolver': resolver_facts}
    now = _now(now)
    return [evaluate(fact, item[1], now=now, expiry_warning_days=expiry_warning_days) for fact, item in zip(facts, parsed)]


def _probe_all(pool, resolver, hosts, ca_path, timeout, addresses=None):
    """The STARTTLS probe of each host, in order, on ``pool``."""
    return list(pool.map(lambda host: probe_mx(resolver, host, ca_path=ca_path, timeout=timeout, addresses=addresses), hosts))


def _now(now):
    # The clock is read here, at the edge: the checks take the time as an argument.
    return now or datetime.datetime.now(datetime.timezone.utc)


def parse_hosts(hosts):
    """The host names to probe, normalized; raises ValidationError naming the item."""
    if not hosts:
        raise ValidationError('hosts', hosts, 'give at least one host name')
    parsed = []
    for index, host in enumerate(hosts):
        where = 'hosts[%d]' % index
        name = normalize_domain(host, where)
        if name in parsed:
            raise ValidationError(where, host, 'is %s again, already listed as hosts[%d]' % (name, parsed.index(name)))
        parsed.append(name)
    return parsed


def _parse_address(address):
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ValidationError('address', address, 'must be an IPv4 or IPv6 address')


def probe_hosts(hosts, nameservers=None, authoritative=False, timeout=10.0, ca_path=None, concurrency=32,
                expiry_warning_days=EXPIRY_WARNING_DAYS, now=None, address=None):
    """One result per host, in order: the STARTTLS probe of each, judged as an MX under an enforce policy.

    With ``address`` every host is probed there instead of at the addresses its name resolves to."""
    check_options(dict(nameservers=nameservers, timeout=timeout, concurrency=concurrency, expiry_warning_days=expiry_warning_days))
    parsed = parse_hosts(hosts)
    addresses = [_parse_address(address)] if address else None
    resolver = Resolver(nameservers=nameservers, authoritative=authoritative, timeout=timeout)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        probes = _probe_all(pool, resolver, parsed, ca_path, timeout, addresses)
    now = _now(now)
    return [probe_result(host, probe, now, expiry_warning_days) for host, probe in zip(parsed, probes)]
