# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Safe rollout (RFC 8461 §8): when each policy went live, the enforce gate, MX changes, retirement, the plan.

Pure code: the state file comes in as data and goes out as data, the moment to judge at comes in
as ``now``; nothing here reads a clock, a file or the network. The state file is documented in
docs/state-file.md, the plan in docs/plan-schema.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import json

from collections.abc import Mapping
from datetime import timedelta

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain, strip_root
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._mx import matches_any, normalize_pattern
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    MODES, parse_policy, policy_id, policy_text, render_policy, validate_id, _check_max_age,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import format_utc, utc_datetime
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_summary import parse_time

STATE_VERSION = 1
PLAN_VERSION = 1
ENTRY_KEYS = ('id', 'mode', 'max_age', 'mx', 'live_since')
# The exact text served behind the id: without it a policy given as text (or with extensions) could not be served
# again byte for byte while a refused change holds the domain on its live policy.
OPTIONAL_ENTRY_KEYS = ('policy',)
# What retire.yml publishes: mode none only has to outlive the senders' next look at the TXT id.
RETIRE_MAX_AGE = 86400
LIVE_SINCE_RULE = 'must be an RFC 3339 date-time such as 2026-12-01T10:00:00Z'


# --- the state file: when each policy went live ---

def _moment(value, field):
    try:
        return parse_time(value, field)
    except ValidationError as exc:
        raise ValidationError(field, value, exc.rule + "; in a playbook: now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ')")


def _entry(value, where):
    if not isinstance(value, Mapping):
        raise ValidationError(where, value, 'must be a mapping with the keys %s' % ', '.join(ENTRY_KEYS))
    for key in value:
        if key not in ENTRY_KEYS + OPTIONAL_ENTRY_KEYS:
            raise ValidationError(where, key, 'unknown key; allowed: %s' % ', '.join(ENTRY_KEYS + OPTIONAL_ENTRY_KEYS))
    for key in ENTRY_KEYS:
        if key not in value:
            raise ValidationError(where, key, 'required key is missing')
    mode = value['mode']
    if mode not in MODES:
        raise ValidationError(where + '.mode', mode, 'must be one of %s' % ', '.join(MODES))
    patterns = value['mx']
    if not isinstance(patterns, list):
        raise ValidationError(where + '.mx', patterns, 'must be a list of mx patterns')
    mx = [normalize_pattern(pattern, '%s.mx[%d]' % (where, index)) for index, pattern in enumerate(patterns)]
    if mode != 'none' and not mx:
        raise ValidationError(where + '.mx', patterns, 'at least one mx pattern is required unless mode is none')
    live_since = value['live_since']
    moment = utc_datetime(live_since) if isinstance(live_since, str) else None
    if moment is None:
        raise ValidationError(where + '.live_since', live_since, LIVE_SINCE_RULE)
    try:
        max_age = _check_max_age(value['max_age'])
    except ValidationError as exc:
        raise ValidationError(where + '.max_age', value['max_age'], exc.rule)
    entry = {'id': validate_id(value['id'], where + '.id'), 'mode': mode, 'max_age': max_age, 'mx': mx,
             'live_since': format_utc(moment)}
    if value.get('policy') is not None:
        text = value['policy']
        if not isinstance(text, str):
            raise ValidationError(where + '.policy', text, 'must be the policy text served behind the id')
        try:
            parsed = parse_policy(text)
        except ValidationError as exc:
            raise ValidationError(where + '.policy', exc.value, exc.rule)
        if (parsed['mode'], parsed['max_age'], parsed['mx']) != (mode, max_age, mx):
            raise ValidationError(where + '.policy', text, 'must say the mode, max_age and mx of its entry')
        entry['policy'] = text
    return entry


def load_state(state, field='state'):
    """The state file's data, validated and in canonical form; None, '' or {} (no file yet) is an empty state.

    A JSON string is read as the file's text. Errors name the path inside the state,
    e.g. ``state.domains["example.com"].history[2].live_since``.
    """
    if state is None or (isinstance(state, str) and not state.strip()):
        state = {}
    if isinstance(state, str):
        try:
            state = json.loads(state)
        except ValueError as exc:
            raise ValidationError(field, state[:80], 'is not JSON (%s)' % exc)
    if not isinstance(state, Mapping):
        raise ValidationError(field, state, 'must be a mapping (the state file), or empty when there is none yet')
    if not state:
        return {'version': STATE_VERSION, 'domains': {}}
    for key in state:
        if key not in ('version', 'domains'):
            raise ValidationError(field, key, 'unknown key; allowed: version, domains')
    if state.get('version') != STATE_VERSION:
        raise ValidationError(field + '.version', state.get('version'), 'must be %d' % STATE_VERSION)
    domains = state.get('domains')
    if not isinstance(domains, Mapping):
        raise ValidationError(field + '.domains', domains, 'must be a mapping of domain to {history: [...]}')
    checked = {}
    for name, record in domains.items():
        where = '%s.domains[%s]' % (field, json.dumps(name))
        if normalize_domain(name, where) != name:
            raise ValidationError(where, name, 'must be the domain in lower case (A-labels) without a final dot')
        if not isinstance(record, Mapping) or set(record) != {'history'}:
            raise ValidationError(where, record, 'must be a mapping with the one key history')
        history = record['history']
        if not isinstance(history, list) or not history:
            raise ValidationError(where + '.history', history, 'must be a non-empty list of entries, newest last')
        entries = []
        for index, value in enumerate(history):
            entry = _entry(value, '%s.history[%d]' % (where, index))
            if entries and utc_datetime(entry['live_since']) < utc_datetime(entries[-1]['live_since']):
                raise ValidationError('%s.history[%d].live_since' % (where, index), entry['live_since'],
                                      'must not be before history[%d].live_since (%s): entries are newest last'
                                      % (index - 1, entries[-1]['live_since']))
            if entries and entry['id'] == entries[-1]['id']:
                raise ValidationError('%s.history[%d].id' % (where, index), entry['id'],
                                      'repeats the id of history[%d]: an entry is added only when the id changes' % (index - 1))
            entries.append(entry)
        checked[name] = {'history': entries}
    return {'version': STATE_VERSION, 'domains': checked}


def _history(state, domain):
    record = state['domains'].get(domain)
    return record['history'] if record else []


def update_state(state, published, now):
    """The state after publishing: an entry per domain whose published id differs from its newest entry.

    ``published``: ``{domain, policy}`` items (the policy text or dict behind the id just published; an ``id`` key,
    as the record modules return it, is taken as the id). Items with ``state: absent`` are skipped. A domain with no
    entry yet gets one even when its id was published earlier: from now on is the only time known for sure.
    """
    checked = load_state(state)
    moment = _moment(now, 'now')
    if isinstance(published, Mapping) and 'results' in published:
        published = published['results']
    if not isinstance(published, list):
        raise ValidationError('published', published, 'must be a list of {domain, policy} items')
    seen = set()
    for index, item in enumerate(published):
        where = 'published[%d]' % index
        if not isinstance(item, Mapping):
            raise ValidationError(where, item, 'must be a mapping with domain and policy')
        if item.get('state') == 'absent':
            continue
        domain = normalize_domain(item.get('domain'), where + '.domain')
        if domain in seen:
            raise ValidationError(where + '.domain', domain, 'appears more than once')
        seen.add(domain)
        if item.get('policy') is None:
            raise ValidationError(where + '.policy', None, 'is required: the policy behind the id published')
        text = policy_text(item['policy'], where + '.policy')
        parsed = parse_policy(text)
        new_id = validate_id(item['id'], where + '.id') if item.get('id') is not None else policy_id(text)
        history = checked['domains'].setdefault(domain, {'history': []})['history']
        if history and history[-1]['id'] == new_id:
            continue
        if history and utc_datetime(history[-1]['live_since']) > moment:
            raise ValidationError('now', format_utc(moment), 'must not be before the newest live_since of %s (%s)'
                                  % (domain, history[-1]['live_since']))
        history.append({'id': new_id, 'mode': parsed['mode'], 'max_age': parsed['max_age'], 'mx': parsed['mx'],
                        'live_since': format_utc(moment), 'policy': text})
    return checked


def live_policy(state, domain):
    """The newest entry of ``domain`` in the state (a copy), or None."""
    history = _history(load_state(state), normalize_domain(domain, 'domain'))
    return dict(history[-1]) if history else None


def _held_until(history, end, pending_since):
    """``(entry, until)`` for each entry before index ``end``: the latest moment a sender may still apply it.

    A sender may fetch an entry until the next one goes live and caches it for its max_age (RFC 8461 §5.1).
    ``pending_since``: when the entry at ``end`` goes live, for an entry not in ``history`` yet.
    """
    held = []
    for index in range(end):
        entry = history[index]
        last_fetch = utc_datetime(history[index + 1]['live_since']) if index + 1 < len(history) else pending_since
        held.append((entry, last_fetch + timedelta(seconds=entry['max_age'])))
    return held


# --- the inventory item ---

def _domain_item(item, field='domain_item'):
    """``(domain, parsed policy, policy text, override or None)`` of an mta_sts_domains item."""
    if not isinstance(item, Mapping):
        raise ValidationError(field, item, 'must be a mta_sts_domains item (a mapping with domain and policy)')
    domain = normalize_domain(item.get('domain'), field + '.domain')
    if item.get('policy') is None:
        raise ValidationError('%s.policy of %s' % (field, domain), None, 'is required')
    text = policy_text(item['policy'], '%s.policy of %s' % (field, domain))
    override = item.get('enforce_override')
    if override is not None:
        where = 'enforce_override of %s' % domain
        if not isinstance(override, Mapping):
            raise ValidationError(where, override, 'must be a mapping {reason: "..."}')
        for key in override:
            if key != 'reason':
                raise ValidationError(where, key, 'unknown key; allowed: reason')
        reason = override.get('reason')
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError(where + '.reason', reason, 'must be a non-empty string saying why the gate is '
                                  'overridden (it is printed and written into the plan)')
        override = {'reason': reason.strip()}
    return domain, parse_policy(text), text, override


def _host_name(value, field):
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be a host name')
    return strip_root(value).lower()


def _results(value, field):
    """The result items of a registered task (``{results: [...]}``), a list of them, or one item."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        if 'results' in value:
            value = value['results']
        elif 'domain' in value or 'host' in value:
            return [value]
        else:
            # A skipped task registers neither results nor a domain.
            return []
    if not isinstance(value, list):
        raise ValidationError(field, value, 'must be a registered result, a list of result items or one item')
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ValidationError('%s[%d]' % (field, index), item, 'must be a mapping')
    return value


def _for_domain(value, domain, field):
    """The item of ``domain`` among results (matched by their ``domain``), or None."""
    for index, item in enumerate(_results(value, field)):
        if normalize_domain(item.get('domain'), '%s[%d].domain' % (field, index)) == domain:
            return item
    return None


def _mx_hosts(live_mx, field):
    """MX host names from a list of names, a list of ``{host}`` entries or a policy_info result (its ``mx``)."""
    if isinstance(live_mx, Mapping):
        live_mx = live_mx.get('mx')
    if not isinstance(live_mx, list):
        raise ValidationError(field, live_mx, 'must be a list of MX host names or the policy_info result of the domain')
    hosts = []
    for index, entry in enumerate(live_mx):
        host = entry.get('host') if isinstance(entry, Mapping) else entry
        host = _host_name(host, '%s[%d]' % (field, index))
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def _live_source(state, domain, info):
    """The policy live now: the state's newest entry of the domain, else what policy_info saw served, else None."""
    history = _history(load_state(state), domain) if state is not None else []
    if history:
        return history[-1]
    served = info.get('policy') if info else None
    if isinstance(served, Mapping) and served.get('mode') in MODES:
        return {'mode': served['mode'], 'mx': [normalize_pattern(pattern) for pattern in served.get('mx') or []],
                'max_age': served.get('max_age'), 'id': info.get('id'), 'live_since': None}
    return None


# --- the enforce gate ---

def _probe_verdict(host, facts):
    """``(passed, detail)`` for one MX host from its probe facts (mx_tls_info's result or a policy_info mx entry)."""
    if facts is None:
        return False, ('no STARTTLS probe result for %s: the gate needs positive evidence for every MX '
                       '(probe it with mx_tls_info, from mta_sts_probe_host where port 25 is blocked)' % host)
    error = facts.get('error')
    starttls = facts.get('starttls')
    if starttls is None:
        return False, ('%s could not be probed (%s): an MX that cannot be reached is a refusal, not a pass; '
                       'probe from a host that reaches its port 25 (mta_sts_probe_host)' % (host, error or 'no answer'))
    if starttls is False:
        return False, '%s does not offer STARTTLS; senders refuse it under enforce' % host
    if facts.get('certificate_valid') is not True:
        return False, '%s: certificate not valid (%s); senders refuse it under enforce' % (host, error or 'not verified')
    if error:
        return False, '%s: probe failed (%s)' % (host, error)
    return True, '%s offers STARTTLS (%s) with a valid certificate%s' % (
        host, facts.get('tls_version') or 'TLS', ' until %s' % facts['not_after'] if facts.get('not_after') else '')


def _probe_facts(probes, info_entry, host):
    facts = probes.get(host)
    if facts is None and info_entry is not None and (info_entry.get('starttls') is not None or info_entry.get('error')):
        facts = info_entry
    return facts


def _tlsrpt_verdict(tlsrpt_gate, domain):
    """The TLS-RPT gate's verdict for ``domain``: tlsrpt_enforce_gate's result, or tlsrpt_report_info's ``gate``."""
    if not isinstance(tlsrpt_gate, Mapping):
        raise ValidationError('tlsrpt_gate', tlsrpt_gate, 'must be the verdict of tlsrpt_enforce_gate (or the gate '
                              'of tlsrpt_report_info), or none when reports are not a source')
    if not tlsrpt_gate:
        return None
    if 'passed' not in tlsrpt_gate:
        if domain not in tlsrpt_gate:
            # Reports are a source but say nothing of this domain: no evidence, no enforce.
            return {'passed': False, 'message': 'no TLS-RPT verdict for %s among the reports\' gate (%s)'
                    % (domain, ', '.join(sorted(tlsrpt_gate)))}
        tlsrpt_gate = tlsrpt_gate[domain]
        if not isinstance(tlsrpt_gate, Mapping) or 'passed' not in tlsrpt_gate:
            raise ValidationError('tlsrpt_gate.%s' % domain, tlsrpt_gate, 'must be a verdict with passed')
    return tlsrpt_gate


def enforce_gate(domain_item, info, probes=None, tlsrpt_gate=None, state=None, now=None):
    """Whether ``domain_item``'s policy may go live in enforce mode; see the filter mta_sts_enforce_gate."""
    domain, wanted, _text, override = _domain_item(domain_item)
    if now is not None:
        _moment(now, 'now')
    info = _for_domain(info, domain, 'info')
    probe_items = _results(probes, 'probes')
    probe_index = dict((_host_name(item.get('host'), 'probes[%d].host' % index), item) for index, item in enumerate(probe_items))
    tlsrpt = _tlsrpt_verdict(tlsrpt_gate, domain) if tlsrpt_gate is not None else None
    live = _live_source(state, domain, info)

    verdict = {'domain': domain, 'wanted_mode': wanted['mode'], 'allowed': True, 'verdict': 'not-needed',
               'reasons': [], 'checks': [], 'override': None}
    if wanted['mode'] != 'enforce':
        verdict['reasons'].append('%s wants mode %s: the gate judges only a move to enforce' % (domain, wanted['mode']))
        return verdict
    live_enforce = live is not None and live['mode'] == 'enforce'
    if live_enforce and set(live['mx']) == set(wanted['mx']):
        since = ' since %s' % live['live_since'] if live.get('live_since') else ''
        verdict['reasons'].append('%s is in enforce mode with the same mx patterns already%s' % (domain, since))
        return verdict

    checks = verdict['checks']
    entries = dict((_host_name(entry.get('host') or '', 'info.mx.host'), entry)
                   for entry in (info or {}).get('mx') or [] if isinstance(entry, Mapping))
    hosts = [host for host in entries if host]
    if info is None:
        checks.append({'check': 'mx-hosts', 'passed': False,
                       'detail': 'no policy_info result for %s: its MX hosts are unknown' % domain})
    elif not hosts:
        checks.append({'check': 'mx-hosts', 'passed': False,
                       'detail': 'no MX host of %s is known (a null MX, or the MX lookup failed): there is nothing '
                                 'to give positive evidence for' % domain})
    for host in hosts:
        covered = matches_any(wanted['mx'], host)
        relation = 'matches' if covered else 'matches none of'
        checks.append({'check': 'mx-covered', 'host': host, 'passed': covered,
                       'detail': '%s %s the mx patterns (%s)' % (host, relation, ', '.join(wanted['mx']))})
    for host in hosts:
        passed, detail = _probe_verdict(host, _probe_facts(probe_index, entries[host], host))
        checks.append({'check': 'mx-tls', 'host': host, 'passed': passed, 'detail': detail})
    # Reports count only for the same MX set (tlsrpt_enforce_gate): inside enforce a widened set has none yet,
    # and its safety is the MX change rule's (mta_sts_mx_change).
    if tlsrpt is not None and not live_enforce:
        checks.append({'check': 'tlsrpt', 'passed': bool(tlsrpt['passed']),
                       'detail': tlsrpt.get('message') or '; '.join(tlsrpt.get('reasons') or []) or
                       ('reports passed' if tlsrpt['passed'] else 'reports did not pass')})

    failed = [check['detail'] for check in checks if not check['passed']]
    if not failed:
        verdict['verdict'] = 'pass'
        verdict['reasons'].append('%s may go to enforce: %s' % (domain, '; '.join(check['detail'] for check in checks)))
        if override:
            verdict['reasons'].append('enforce_override is set but not needed: every check passed; remove it')
        return verdict
    verdict['reasons'].extend(failed)
    if override:
        verdict['verdict'] = 'override'
        verdict['override'] = override
        verdict['reasons'].append('refusal overridden by enforce_override: %s' % override['reason'])
    else:
        verdict['verdict'] = 'refused'
        verdict['allowed'] = False
    return verdict


# --- MX changes in enforce mode ---

def _move_after(history, widened, pending_since):
    """When MX hosts covered only by the widened entry (index ``widened`` in history, or a pending one) may move:
    once no sender can still hold an older enforce policy (RFC 8461 §8: the old max_age after the widening)."""
    moments = [until for entry, until in _held_until(history, widened, pending_since) if entry['mode'] == 'enforce']
    return max(moments) if moments else None


def mx_change(domain_item, state, live_mx, now):
    """What the wanted mx patterns change against the live policy, and whether that is allowed now."""
    domain, wanted, _text, _override = _domain_item(domain_item)
    moment = _moment(now, 'now')
    history = _history(load_state(state), domain)
    hosts = _mx_hosts(live_mx, 'live_mx') if live_mx is not None else None
    result = {'domain': domain, 'action': 'none', 'allowed': True, 'added': [], 'removed': [], 'move_after': None,
              'reasons': []}
    reasons = result['reasons']
    if not history:
        reasons.append('no policy of %s is recorded as live yet: there is nothing to widen or narrow' % domain)
        return result
    live = history[-1]
    result['added'] = [pattern for pattern in wanted['mx'] if pattern not in live['mx']]
    result['removed'] = [pattern for pattern in live['mx'] if pattern not in wanted['mx']]

    if result['added']:
        move_after = _move_after(history, len(history), moment)
        result['action'] = 'widen'
        when = ('after %s (the older enforce policies\' max_age after the widened policy goes live; the state file '
                'will record when)' % format_utc(move_after)) if move_after else 'at once (no enforce policy is cached)'
        reasons.append('widening %s by %s: MX hosts under the new patterns may move in %s' % (
            domain, ', '.join(result['added']), when))
        result['move_after'] = format_utc(move_after) if move_after else None
    elif not result['removed'] and len(history) > 1:
        # The widening went live in an earlier run: say when the move is safe.
        widened = [pattern for pattern in live['mx'] if pattern not in history[-2]['mx']]
        move_after = _move_after(history, len(history) - 1, None) if widened else None
        if move_after:
            result['move_after'] = format_utc(move_after)
            reasons.append('the policy live since %s added %s: MX hosts under it may move %s' % (
                live['live_since'], ', '.join(widened),
                'now' if move_after <= moment else 'after %s' % format_utc(move_after)))

    if result['removed']:
        result['action'] = 'narrow'
        if hosts is None:
            stranded = None
        else:
            stranded = [host for host in hosts
                        if matches_any(result['removed'], host) and not matches_any(wanted['mx'], host)]
        if wanted['mode'] != 'enforce':
            reasons.append('dropping %s in mode %s: senders only report an uncovered MX' % (
                ', '.join(result['removed']), wanted['mode']))
        elif stranded is None:
            result['allowed'] = False
            reasons.append('dropping %s from an enforce policy needs the live MX hosts (live_mx) to show no MX uses '
                           'it' % ', '.join(result['removed']))
        elif stranded:
            result['allowed'] = False
            reasons.append('refused: live MX %s still %s %s, which the new policy drops; widen first, move the MX '
                           'once the old max_age has passed, then drop the pattern (RFC 8461 §8)' % (
                               ', '.join(stranded), 'uses' if len(stranded) == 1 else 'use',
                               ', '.join(result['removed'])))
        else:
            reasons.append('dropping %s: no live MX host uses it' % ', '.join(result['removed']))

    # An MX that moved before an older enforce policy expired is refused by senders still holding it.
    for host in hosts or []:
        for entry, until in _held_until(history, len(history), moment):
            if entry['mode'] == 'enforce' and until > moment and not matches_any(entry['mx'], host):
                reasons.append('MX %s is not covered by the enforce policy %s (live since %s), which senders may hold '
                               'until %s; they refuse to deliver to it until then' % (
                                   host, entry['id'], entry['live_since'], format_utc(until)))
    return result


# --- retirement ---

def retirement(domain, state, now, max_age=RETIRE_MAX_AGE):
    """Where the retirement of ``domain`` stands (RFC 8461 §8.3): publish none, wait, or delete."""
    domain = normalize_domain(domain, 'domain')
    moment = _moment(now, 'now')
    max_age = _check_max_age(max_age)
    history = _history(load_state(state), domain)
    result = {'domain': domain, 'phase': 'publish-none', 'delete_after': None, 'none_since': None, 'reasons': [],
              'policy': None}
    reasons = result['reasons']
    if not history or history[-1]['mode'] != 'none':
        live = history[-1] if history else None
        result['policy'] = {'mode': 'none', 'max_age': max_age, 'mx': list(live['mx']) if live else []}
        if live:
            reasons.append('publish mode none under a new id first; the records and the policy may go %s after it is '
                           'live (the max_age of the %s policy live now)' % (_duration(live['max_age']), live['mode']))
        else:
            reasons.append('no policy of %s is recorded in the state file: publish mode none first, then wait the max_age '
                           'of the policy it replaces' % domain)
        return result
    first_none = len(history) - 1
    while first_none > 0 and history[first_none - 1]['mode'] == 'none':
        first_none -= 1
    none_since = utc_datetime(history[first_none]['live_since'])
    result['none_since'] = format_utc(none_since)
    held = [until for _entry, until in _held_until(history, first_none, none_since)]
    if held:
        delete_after = max(held)
        basis = 'the max_age of the policy live before none (%s)' % _duration(history[first_none - 1]['max_age'])
    else:
        # What was live before is unknown (the state began with none): wait at least none's own max_age.
        delete_after = none_since + timedelta(seconds=history[first_none]['max_age'])
        basis = 'no policy before none is recorded, so the max_age of none itself'
    result['delete_after'] = format_utc(delete_after)
    if moment < delete_after:
        result['phase'] = 'waiting'
        reasons.append('mode none is live since %s; the records and the policy may be deleted after %s (%s)' % (
            result['none_since'], result['delete_after'], basis))
    else:
        result['phase'] = 'may-delete'
        reasons.append('mode none is live since %s and %s has passed (since %s): the records and the policy may be deleted'
                       % (result['none_since'], basis, result['delete_after']))
    return result


def _duration(seconds):
    if seconds % 86400 == 0:
        days = seconds // 86400
        return '%d day%s' % (days, '' if days == 1 else 's')
    return '%d seconds' % seconds


# --- the plan artifact (docs/plan-schema.md) ---

# The plan copies named fields only, never a whole result: a registered result carries the module's
# invocation (provider options), and nothing of it may reach a file reviewers and CI logs see.
_GATE_FIELDS = ('verdict', 'allowed', 'wanted_mode', 'reasons', 'checks', 'override')
_MX_CHANGE_FIELDS = ('action', 'allowed', 'added', 'removed', 'move_after', 'reasons')
_CHECK_FIELDS = ('check', 'host', 'passed', 'detail')
_ADDRESS_FIELDS = ('address', 'status', 'id', 'matches', 'error')


def _pick(value, fields):
    return dict((field, value.get(field)) for field in fields if field in value)


def _values(value, field):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(field, value, 'must be a list of record values (strings)')
    return list(value)


def _record_changes(item, where, check_mode):
    """The plan's record entries of one record module result item (TXT lists, or A/AAAA/CNAME per type)."""
    name = item.get('name')
    if not isinstance(name, str):
        raise ValidationError(where + '.name', name, 'must be the record name (a result item of a record module)')
    before, after = item.get('before'), item.get('after')
    notes = []
    if item.get('delegated_to'):
        notes.append('delegated: CNAME %s -> %s' % (name, item['delegated_to']))
    if item.get('record_name'):
        notes.append('the TXT lives at %s' % item['record_name'])
    if isinstance(before, Mapping) or isinstance(after, Mapping):
        before, after = before or {}, after or {}
        changes = []
        for rtype in sorted(set(before) | set(after)):
            old = _values(before.get(rtype), '%s.before.%s' % (where, rtype))
            new = _values(after.get(rtype), '%s.after.%s' % (where, rtype))
            if old or new:
                changes.append({'name': name, 'type': rtype, 'before': old, 'after': new, 'changed': old != new,
                                'note': '; '.join(notes)})
        return changes
    old = _values(before, where + '.before')
    new = _values(after, where + '.after')
    changed = bool(item.get('changed', old != new))
    if check_mode and changed and name.startswith('_mta-sts.'):
        notes.append('would publish after verification')
    return [{'name': name, 'type': item.get('type') or 'TXT', 'before': old, 'after': new, 'changed': changed,
             'note': '; '.join(notes)}]


def _served_text(served, where):
    """The policy text policy_info saw served: its ``policy`` (parsed, rendered back) or text."""
    if served is None:
        return None
    if isinstance(served, Mapping):
        return render_policy(dict((key, served[key]) for key in ('version', 'mode', 'mx', 'max_age', 'extensions')
                                  if key in served))
    return policy_text(served, where)


def _policy_file(domain, item, live, where):
    after = policy_text(item['policy'], where + '.policy') if item.get('policy') is not None else None
    before = _served_text(live.get('policy'), 'live.%s.policy' % domain) if live else None
    id_before = live.get('id') if live else None
    lines_before = before.splitlines() if before is not None else []
    lines_after = after.splitlines() if after is not None else []
    diff = '\n'.join(difflib.unified_diff(lines_before, lines_after, 'served/%s' % domain, 'planned/%s' % domain,
                                          lineterm=''))
    return {'before': before, 'after': after, 'diff': diff, 'id_before': id_before,
            'id_after': policy_id(after) if after is not None else None}


def _verification(result, check_mode):
    if result is None:
        if check_mode:
            return {'served': None, 'expected_id': None, 'addresses': [],
                    'reason': 'not run in check mode: bytes that are not deployed cannot be verified'}
        return None
    checked = _pick(result, ('served', 'expected_id', 'reason'))
    checked['addresses'] = [_pick(address, _ADDRESS_FIELDS) for address in result.get('addresses') or []
                            if isinstance(address, Mapping)]
    return checked


def _errors_of(errors, domain):
    if errors is None:
        return []
    if not isinstance(errors, Mapping):
        raise ValidationError('errors', errors, 'must be a mapping of domain to a sentence or a list of sentences')
    found = []
    for name, value in errors.items():
        if normalize_domain(name, 'errors key') == domain and value:
            found.extend([value] if isinstance(value, str) else [str(sentence) for sentence in value])
    return found


def _check_domains(results, domains, field):
    for index, item in enumerate(_results(results, field)):
        name = normalize_domain(item.get('domain'), '%s[%d].domain' % (field, index))
        if name not in domains:
            raise ValidationError('%s[%d].domain' % (field, index), name, 'is not one of the domains planned')


def build_plan(domains, now, check_mode=False, records=None, live=None, gates=None, mx_changes=None,
               verification=None, errors=None):
    """The plan artifact: per domain its record changes, policy file change, gate verdicts, overrides and status.

    ``domains``: the mta_sts_domains items; ``records``: record module results (one registered result, or a list
    of them); ``live``: policy_info results read before the change; ``gates``/``mx_changes``: the verdicts of
    mta_sts_enforce_gate / mta_sts_mx_change; ``verification``: served_policy_info results; ``errors``: domain ->
    sentences of what else failed. Only named fields are copied: no provider option ever enters.
    """
    moment = _moment(now, 'now')
    if not isinstance(check_mode, bool):
        raise ValidationError('check_mode', check_mode, 'must be true or false (ansible_check_mode)')
    if not isinstance(domains, list):
        raise ValidationError('domains', domains, 'must be the list of mta_sts_domains items')
    record_sets = records if isinstance(records, list) and all(
        isinstance(entry, Mapping) and 'domain' not in entry for entry in records) else [records]
    names = []
    for index, item in enumerate(domains):
        if not isinstance(item, Mapping):
            raise ValidationError('domains[%d]' % index, item, 'must be a mapping with domain')
        name = normalize_domain(item.get('domain'), 'domains[%d].domain' % index)
        if name in names:
            raise ValidationError('domains[%d].domain' % index, name, 'appears more than once')
        names.append(name)
    for field, value in (('live', live), ('gates', gates), ('mx_changes', mx_changes), ('verification', verification)):
        _check_domains(value, names, field)
    for index, value in enumerate(record_sets):
        _check_domains(value, names, 'records[%d]' % index)

    planned = []
    for index, (name, item) in enumerate(zip(names, domains)):
        where = 'domains[%d]' % index
        changes = []
        for set_index, value in enumerate(record_sets):
            for item_index, result in enumerate(_results(value, 'records[%d]' % set_index)):
                if normalize_domain(result.get('domain'), 'records.domain') == name:
                    changes.extend(_record_changes(result, 'records[%d][%d]' % (set_index, item_index), check_mode))
        policy_file = _policy_file(name, item, _for_domain(live, name, 'live'), where)
        gate = _for_domain(gates, name, 'gates')
        change = _for_domain(mx_changes, name, 'mx_changes')
        checked_gate = _pick(gate, _GATE_FIELDS) if gate else None
        if checked_gate and checked_gate.get('checks'):
            checked_gate['checks'] = [_pick(check, _CHECK_FIELDS) for check in checked_gate['checks']
                                      if isinstance(check, Mapping)]
        served = _verification(_for_domain(verification, name, 'verification'), check_mode)
        overrides = []
        if gate and gate.get('verdict') == 'override' and isinstance(gate.get('override'), Mapping):
            overrides.append({'gate': 'enforce', 'reason': str(gate['override'].get('reason'))})

        problems = _errors_of(errors, name)
        if gate and gate.get('allowed') is False:
            problems.extend(str(reason) for reason in gate.get('reasons') or [])
        if change and change.get('allowed') is False:
            problems.extend(str(reason) for reason in change.get('reasons') or [])
        # In check mode the new bytes are not deployed, so not being served is expected, not a failure.
        if served and served.get('served') is False and not check_mode:
            problems.append('the policy of %s is not served on every address: %s' % (name, served.get('reason')))
        new_id = policy_file['id_after'] is not None and policy_file['id_after'] != policy_file['id_before']
        changed = new_id or any(entry['changed'] for entry in changes)
        if problems:
            status = 'failed'
        elif not changed:
            status = 'unchanged'
        elif check_mode:
            status = 'would publish after verification' if new_id else 'planned'
        else:
            status = 'applied'
        planned.append({'domain': name, 'records': changes, 'policy_file': policy_file,
                        'gates': {'enforce': checked_gate, 'mx_change': _pick(change, _MX_CHANGE_FIELDS) if change else None,
                                  'verification': served},
                        'overrides': overrides, 'status': status, 'errors': problems})
    return {'version': PLAN_VERSION, 'generated': format_utc(moment), 'check_mode': check_mode, 'domains': planned}
