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

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import evaluate, normalize_expect
from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import (
    LiveError, Resolver, gather, parse_nameserver, probe_mx,
)

OPTIONS = dict(
    expect=dict(type='dict'),
    nameservers=dict(type='list', elements='str'),
    authoritative=dict(type='bool', default=False),
    timeout=dict(type='float', default=10.0),
    ca_path=dict(type='path'),
    check_mx_tls=dict(type='bool', default=False),
    concurrency=dict(type='int', default=16),
)


def parse_terms(terms, expect=None):
    """``[(domain, normalized expect or None)]``; raises ValidationError naming the term."""
    default = normalize_expect(expect) if expect else None
    parsed = []
    for index, term in enumerate(terms):
        where = 'terms[%d]' % index
        if isinstance(term, dict):
            unknown = sorted(set(term) - set(['domain', 'expect']))
            if unknown:
                raise ValidationError(where + '.' + unknown[0], term[unknown[0]], 'unknown key; allowed: domain, expect')
            domain = normalize_domain(term.get('domain'), where + '.domain')
            own = term.get('expect')
            parsed.append((domain, normalize_expect(own) if own else default))
        else:
            parsed.append((normalize_domain(term, where), default))
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


def validate(terms, expect=None, nameservers=None, authoritative=False, timeout=10.0, ca_path=None,
             check_mx_tls=False, concurrency=16, now=None):
    """One result per term, in order (see the lookup's documentation for the shape)."""
    check_options(dict(nameservers=nameservers, timeout=timeout, concurrency=concurrency))
    parsed = parse_terms(terms, expect)
    resolver = Resolver(nameservers=nameservers, authoritative=authoritative, timeout=timeout)
    # Each domain's policy fetch runs on the second pool while its DNS questions are out (see gather).
    with ThreadPoolExecutor(max_workers=concurrency) as pool, ThreadPoolExecutor(max_workers=concurrency) as fetcher:
        facts = list(pool.map(lambda item: gather(resolver, item[0], ca_path, timeout, fetcher), parsed))
        if check_mx_tls:
            # Many domains share their MX hosts: each host is probed once.
            hosts = sorted(set(mx['host'] for fact in facts for mx in fact['mx']['hosts'] if mx['host']))
            probes = dict(zip(hosts, pool.map(lambda host: probe_mx(resolver, host, ca_path=ca_path, timeout=timeout), hosts)))
            for fact in facts:
                fact['mx_probes'] = dict((mx['host'], probes[mx['host']]) for mx in fact['mx']['hosts'] if mx['host'])
    return [evaluate(fact, item[1], now=now) for fact, item in zip(facts, parsed)]
