# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Whether every address of ``mta-sts.<domain>`` serves exactly the policy about to be announced.

RFC 8461 §8: the new policy must be served before its id is published, or senders
cache the old policy under the new id. A policy host behind several addresses
(several web servers, IPv4 and IPv6) is served only when each of them serves the new
bytes, so each address is fetched on its own, as a strict sender would fetch it.
This judges the fetch only, never the TXT record (not yet published on a first rollout).

``judge_address`` and ``judge_domain`` are pure; ``verify`` does the I/O: it resolves,
fetches, and tries again until every domain is served or ``wait_timeout`` has passed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import ipaddress
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import judge_policy_fetch
from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import EXPIRY_WARNING_DAYS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import Resolver, fetch_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, policy_text
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import check_options

MAX_WAIT_TIMEOUT = 3600
MAX_INTERVAL = 600


class Expected(object):
    """One domain to verify: the exact bytes that must be served, their id, and the addresses to fetch from."""

    def __init__(self, domain, body, addresses):
        self.domain = domain
        self.host = 'mta-sts.' + domain
        self.body = body
        self.id = policy_id(body)
        self.addresses = addresses   # None: every A/AAAA of the host, looked up at each try


def _addresses(value, where):
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ValidationError(where, value, 'must be a non-empty list of IP addresses')
    found = []
    for index, address in enumerate(value):
        try:
            address = str(ipaddress.ip_address(str(address).strip()))
        except ValueError:
            raise ValidationError('%s[%d]' % (where, index), address, 'must be an IPv4 or IPv6 address')
        if address not in found:
            found.append(address)
    return found


def parse_domains(domains):
    """``[Expected]`` from the ``domains`` option; raises ValidationError naming the item and the field.

    Keys other than ``domain``, ``policy`` and ``addresses`` are left alone, so an item of the
    inventory's domain list (with ``rua``, ``host_record``...) can be passed as it is.
    """
    if not domains:
        raise ValidationError('domains', domains, 'give at least one domain')
    parsed = []
    first = {}
    for index, item in enumerate(domains):
        where = 'domains[%d]' % index
        if not isinstance(item, Mapping):
            raise ValidationError(where, item, 'must be a dict with domain and policy')
        domain = normalize_domain(item.get('domain'), where + '.domain')
        if domain in first:
            raise ValidationError(where + '.domain', item.get('domain'), 'is %s again, already listed as %s' % (domain, first[domain]))
        first[domain] = where
        if item.get('policy') is None:
            raise ValidationError(where + '.policy', None, 'give the policy that must be served (its text or a dict)')
        try:
            # The same rule as the policy host's: a dict is rendered, text is kept byte for byte.
            text = policy_text(item['policy'], where + '.policy')
        except ValidationError as exc:
            field = exc.field if str(exc.field).startswith(where) else '%s.policy' % where
            raise ValidationError(field, exc.value, exc.rule)
        parsed.append(Expected(domain, text.encode('utf-8'), _addresses(item.get('addresses'), where + '.addresses')))
    return parsed


def check_wait(wait_timeout, interval):
    if isinstance(wait_timeout, bool) or not isinstance(wait_timeout, (int, float)) or not 0 <= wait_timeout <= MAX_WAIT_TIMEOUT:
        raise ValidationError('wait_timeout', wait_timeout, 'must be 0 (one try) to %d seconds' % MAX_WAIT_TIMEOUT)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval <= MAX_INTERVAL:
        raise ValidationError('interval', interval, 'must be more than 0 and at most %d seconds' % MAX_INTERVAL)


def _served_id(body):
    try:
        return policy_id(body)
    except ValidationError:
        return None   # not a policy at all: there is no id to name


def judge_address(expected, address, fetch, now, warning_days):
    """What one address served, judged as a strict sender judges a fetch, and whether it is the expected bytes."""
    # published=True: every fault is what it will be once the id is out.
    findings, _policy, _id = judge_policy_fetch(fetch, expected.domain, True, now, warning_days)
    prefix = (fetch.get('url') or '') + ': '
    errors = [item for item in findings if item['severity'] == 'error']
    body = fetch.get('body')
    status = fetch.get('status')
    error = None
    if errors:
        message = errors[0]['message']
        error = '%s: %s' % (errors[0]['code'], message[len(prefix):] if message.startswith(prefix) else message)
    return {
        'address': address,
        'status': status,
        'id': _served_id(body) if status == 200 and body is not None else None,
        'matches': not errors and status == 200 and body == expected.body,
        'error': error,
        'findings': findings,
    }


def judge_domain(expected, entries, dns_error=None, attempts=1):
    """One result: served when there is at least one address and every address serves the expected bytes."""
    differing = [entry for entry in entries if not entry['matches']]
    reason = None
    if dns_error is not None:
        reason = '%s has no address to fetch from: %s' % (expected.host, dns_error)
    elif not entries:
        reason = '%s has no address to fetch from' % expected.host
    elif differing:
        reason = '; '.join(_difference(expected, entry) for entry in differing)
    return {
        'domain': expected.domain,
        'served': reason is None,
        'expected_id': expected.id,
        'addresses': entries,
        'reason': reason,
        'attempts': attempts,
    }


def _difference(expected, entry):
    where = '%s at %s' % (expected.host, entry['address'])
    if entry['error']:
        return '%s: %s' % (where, entry['error'])
    if entry['id']:
        return '%s serves the policy with id %s, not %s' % (where, entry['id'], expected.id)
    return '%s serves other bytes than the policy with id %s' % (where, expected.id)


def _now():
    # The clock is read here, at the edge: the checks take the time as an argument.
    return datetime.datetime.now(datetime.timezone.utc)


def _try_once(pool, resolver, pending, ca_path, timeout, warning_days, attempts):
    """One try of each pending domain: its addresses (given, or looked up now), each fetched on its own."""
    def lookup(expected):
        if expected.addresses is not None:
            return expected.addresses, None
        found, error = resolver.addresses(expected.host)
        return list(dict.fromkeys(found)), (error if not found else None)
    looked_up = list(pool.map(lookup, pending))
    jobs = [(expected, address) for expected, (addresses, _error) in zip(pending, looked_up) for address in addresses]
    fetches = list(pool.map(lambda job: fetch_policy(resolver, job[0].domain, ca_path=ca_path, timeout=timeout,
                                                     addresses=[job[1]]), jobs))
    now = _now()
    entries = dict((expected.domain, []) for expected in pending)
    for (expected, address), fetch in zip(jobs, fetches):
        entries[expected.domain].append(judge_address(expected, address, fetch, now, warning_days))
    return [judge_domain(expected, entries[expected.domain], error, attempts[expected.domain])
            for expected, (_addresses, error) in zip(pending, looked_up)]


def verify(domains, nameservers=None, authoritative=False, timeout=10.0, ca_path=None, concurrency=32,
           expiry_warning_days=EXPIRY_WARNING_DAYS, wait_timeout=0, interval=5.0, sleep=time.sleep, clock=time.monotonic):
    """One result per domain, in order, and whether all are served.

    Domains not served yet are tried again every ``interval`` seconds until ``wait_timeout`` has
    passed since the first try; the last try starts by then, so the call ends within
    ``wait_timeout`` plus one try (at most ``timeout`` per address, with the address lookup).
    """
    check_options(dict(nameservers=nameservers, timeout=timeout, concurrency=concurrency, expiry_warning_days=expiry_warning_days))
    check_wait(wait_timeout, interval)
    parsed = parse_domains(domains)
    resolver = Resolver(nameservers=nameservers, authoritative=authoritative, timeout=timeout)
    results = {}
    attempts = dict((expected.domain, 0) for expected in parsed)
    deadline = clock() + wait_timeout
    pending = parsed
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while True:
            for expected in pending:
                attempts[expected.domain] += 1
            for result in _try_once(pool, resolver, pending, ca_path, timeout, expiry_warning_days, attempts):
                results[result['domain']] = result
            pending = [expected for expected in pending if not results[expected.domain]['served']]
            remaining = deadline - clock()
            if not pending or remaining <= 0:
                break
            sleep(min(interval, remaining))
    ordered = [results[expected.domain] for expected in parsed]
    return ordered, all(result['served'] for result in ordered)
