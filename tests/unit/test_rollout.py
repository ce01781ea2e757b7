"""The rollout logic (pure): the state file, the enforce gate, MX changes, retirement and the plan artifact.

Every function takes ``now``, so the times here are fixed and every expected moment is worked out by hand.
"""

import copy
import json
import os
import re

import jsonschema
import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rollout import (
    build_plan, enforce_gate, live_policy, load_state, mx_change, retirement, update_state,
)

NOW = '2026-12-01T10:00:00Z'
DAY = 86400
WEEK = 7 * DAY
TESTING = {'mode': 'testing', 'mx': ['mx1.example.com'], 'max_age': DAY}
ENFORCE = {'mode': 'enforce', 'mx': ['mx1.example.com'], 'max_age': WEEK}
WIDENED = {'mode': 'enforce', 'mx': ['mx1.example.com', 'mx2.example.net'], 'max_age': WEEK}
MOVED = {'mode': 'enforce', 'mx': ['mx2.example.net'], 'max_age': WEEK}


def entry(policy, live_since):
    return {'id': policy_id(policy), 'mode': policy['mode'], 'max_age': policy['max_age'], 'mx': list(policy.get('mx', [])),
            'live_since': live_since}


def published_entry(policy, live_since):
    """An entry as update_state writes it: with the exact text served behind the id."""
    return dict(entry(policy, live_since), policy=render_policy(policy))


def state_of(*entries, domain='example.com'):
    return {'version': 1, 'domains': {domain: {'history': list(entries)}}}


def item(policy, **extra):
    return dict({'domain': 'example.com', 'policy': policy}, **extra)


def info(*hosts, **extra):
    return dict({'domain': 'example.com', 'mx': [{'host': host, 'preference': 10} for host in hosts]}, **extra)


def probe(host, **facts):
    good = {'host': host, 'addresses': ['192.0.2.25'], 'starttls': True, 'tls_version': 'TLSv1.3',
            'certificate_valid': True, 'names': [host], 'not_after': '2027-03-01T00:00:00Z', 'error': None, 'findings': []}
    good.update(facts)
    return good


# --- the state file ---

def test_first_rollout_creates_the_state():
    for empty in (None, {}, '', '  '):
        state = update_state(empty, [item(TESTING)], NOW)
        assert state == state_of(published_entry(TESTING, NOW))


def test_same_id_adds_nothing_and_a_new_id_appends():
    state = state_of(entry(TESTING, '2026-11-01T00:00:00Z'))
    assert update_state(state, [item(TESTING)], NOW) == state
    after = update_state(state, [item(ENFORCE)], NOW)
    assert after['domains']['example.com']['history'] == [entry(TESTING, '2026-11-01T00:00:00Z'), published_entry(ENFORCE, NOW)]
    # The input is not changed: the playbook writes what the filter returns.
    assert len(state['domains']['example.com']['history']) == 1


def test_update_takes_record_module_results_and_skips_absent():
    text = render_policy(ENFORCE)
    registered = {'changed': True, 'results': [
        {'domain': 'Example.COM.', 'name': '_mta-sts.example.com', 'id': policy_id(text), 'policy': text, 'changed': True},
        {'domain': 'gone.example', 'state': 'absent', 'changed': True}]}
    state = update_state({}, registered, NOW)
    assert list(state['domains']) == ['example.com']
    assert live_policy(state, 'example.com') == published_entry(ENFORCE, NOW)
    assert live_policy(state, 'other.example') is None


def test_update_keeps_policy_text_bytes_for_the_id():
    text = 'version: STSv1\nmode: testing\nmx: mx1.example.com\nmax_age: 86400\n'
    state = update_state({}, [item(text)], NOW)
    assert live_policy(state, 'example.com')['id'] == policy_id(text) != policy_id(TESTING)
    # Kept as served, so a refused change can hold the domain on exactly these bytes.
    assert live_policy(state, 'example.com')['policy'] == text


def test_update_refuses_a_clock_before_the_newest_entry_and_duplicates():
    state = state_of(entry(TESTING, NOW))
    with pytest.raises(ValidationError, match='newest live_since of example.com'):
        update_state(state, [item(ENFORCE)], '2026-11-30T00:00:00Z')
    with pytest.raises(ValidationError, match=r'published\[1\].domain'):
        update_state({}, [item(TESTING), item(ENFORCE)], NOW)
    with pytest.raises(ValidationError, match=r'published\[0\].policy'):
        update_state({}, [{'domain': 'example.com'}], NOW)


@pytest.mark.parametrize('change, path, rule', [
    (lambda s: s['domains']['a.example']['history'][2].update(live_since='2026-13-01T00:00:00Z'),
     'state.domains["a.example"].history[2].live_since', 'RFC 3339'),
    (lambda s: s['domains']['a.example']['history'][1].update(live_since='2026-12-31T00:00:00Z'),
     'state.domains["a.example"].history[2].live_since', 'must not be before history[1]'),
    (lambda s: s['domains']['a.example']['history'][0].update(mode='strict'),
     'state.domains["a.example"].history[0].mode', 'must be one of'),
    (lambda s: s['domains']['a.example']['history'][0].update(max_age=-1),
     'state.domains["a.example"].history[0].max_age', 'plain digits'),
    (lambda s: s['domains']['a.example']['history'][1].update(mx=['*.*.example']),
     'state.domains["a.example"].history[1].mx[0]', 'wildcard'),
    (lambda s: s['domains']['a.example']['history'][1].update(id='bad-id'),
     'state.domains["a.example"].history[1].id', 'letters or digits'),
    (lambda s: s['domains']['a.example']['history'][1].update(note='x'),
     'state.domains["a.example"].history[1]', 'unknown key'),
    (lambda s: s['domains']['a.example']['history'][1].update(policy='version: STSv1\nmode: none\nmax_age: 60\n'),
     'state.domains["a.example"].history[1].policy', 'must say the mode, max_age and mx of its entry'),
    (lambda s: s['domains']['a.example']['history'][1].update(policy='mode: bogus\n'),
     'state.domains["a.example"].history[1].policy', ''),
    (lambda s: s['domains']['a.example']['history'][1].pop('mx'),
     'state.domains["a.example"].history[1]', 'required key'),
    (lambda s: s['domains'].update({'A.example': s['domains']['a.example']}),
     'state.domains["A.example"]', 'lower case'),
    (lambda s: s['domains']['a.example'].update(history=[]), 'state.domains["a.example"].history', 'non-empty'),
    (lambda s: s.update(version=2), 'state.version', 'must be 1'),
])
def test_invalid_state_names_the_path(change, path, rule):
    state = {'version': 1, 'domains': {'a.example': {'history': [
        entry(TESTING, '2026-10-01T00:00:00Z'), entry(ENFORCE, '2026-11-01T00:00:00Z'),
        entry(WIDENED, '2026-11-15T00:00:00Z')]}}}
    load_state(copy.deepcopy(state))
    change(state)
    with pytest.raises(ValidationError) as raised:
        load_state(state)
    assert raised.value.field == path
    assert rule in str(raised.value)


def test_state_from_json_text_and_offsets():
    text = json.dumps({'version': 1, 'domains': {'example.com': {'history': [
        dict(entry(TESTING, '2026-11-01T01:00:00+01:00'), mx=['MX1.Example.com.'])]}}})
    assert load_state(text) == state_of(entry(TESTING, '2026-11-01T00:00:00Z'))
    with pytest.raises(ValidationError, match='is not JSON'):
        load_state('{"version": 1,')


# --- the enforce gate ---

def test_gate_not_needed_for_testing_or_an_unchanged_enforce():
    verdict = enforce_gate(item(TESTING), info('mx1.example.com'))
    assert (verdict['verdict'], verdict['allowed'], verdict['checks']) == ('not-needed', True, [])
    state = state_of(entry(ENFORCE, '2026-11-01T00:00:00Z'))
    verdict = enforce_gate(item(dict(ENFORCE, max_age=2 * WEEK)), info('mx1.example.com'), state=state, now=NOW)
    assert verdict['verdict'] == 'not-needed'
    assert 'since 2026-11-01T00:00:00Z' in verdict['reasons'][0]


def test_gate_passes_testing_to_enforce_with_evidence():
    state = state_of(entry(TESTING, '2026-11-01T00:00:00Z'))
    verdict = enforce_gate(item(ENFORCE), info('mx1.example.com'), [probe('mx1.example.com')],
                           {'passed': True, 'reasons': [], 'message': 'example.com may go to enforce: 900 sessions'},
                           state, NOW)
    assert (verdict['verdict'], verdict['allowed'], verdict['override']) == ('pass', True, None)
    assert [(check['check'], check['passed']) for check in verdict['checks']] == [
        ('mx-covered', True), ('mx-tls', True), ('tlsrpt', True)]


def test_gate_refuses_an_mx_not_covered():
    verdict = enforce_gate(item(ENFORCE), info('mx1.example.com', 'backup.example.org'),
                           {'results': [probe('mx1.example.com'), probe('backup.example.org')]})
    assert (verdict['verdict'], verdict['allowed']) == ('refused', False)
    assert verdict['reasons'] == ['backup.example.org matches none of the mx patterns (mx1.example.com)']


def test_gate_refuses_a_missing_probe_and_an_unreachable_mx():
    unreachable = probe('mx2.example.com', starttls=None, certificate_valid=None, tls_version=None,
                        error='connect: timed out')
    policy = dict(ENFORCE, mx=['*.example.com'])
    verdict = enforce_gate(item(policy), info('mx1.example.com', 'mx2.example.com', 'mx3.example.com'),
                           [probe('mx1.example.com'), unreachable])
    assert verdict['verdict'] == 'refused'
    failed = [(check['host'], check['detail']) for check in verdict['checks'] if not check['passed']]
    assert [host for host, _detail in failed] == ['mx2.example.com', 'mx3.example.com']
    assert 'cannot be reached is a refusal, not a pass' in failed[0][1] and 'timed out' in failed[0][1]
    assert 'no STARTTLS probe result for mx3.example.com' in failed[1][1]


@pytest.mark.parametrize('facts, words', [
    ({'starttls': False, 'certificate_valid': None}, 'does not offer STARTTLS'),
    ({'certificate_valid': False, 'error': 'certificate: self-signed'}, 'certificate not valid (certificate: self-signed)'),
    ({'error': 'tls: reset'}, 'probe failed (tls: reset)'),
])
def test_gate_refuses_a_failed_probe(facts, words):
    verdict = enforce_gate(item(ENFORCE), info('mx1.example.com'), [probe('MX1.example.com.', **facts)])
    assert verdict['verdict'] == 'refused'
    assert words in verdict['reasons'][0]


def test_gate_uses_policy_info_probe_facts_without_probes():
    entry_facts = dict(probe('mx1.example.com'), preference=10, covered=True)
    verdict = enforce_gate(item(ENFORCE), {'domain': 'example.com', 'mx': [entry_facts]})
    assert verdict['verdict'] == 'pass'


def test_gate_refuses_on_failed_tlsrpt_evidence_from_either_shape():
    gate = {'passed': False, 'reasons': ['only 40 sessions reported'], 'message': 'example.com should not go to '
            'enforce yet: only 40 sessions reported'}
    for tlsrpt in (gate, {'example.com': gate}):
        verdict = enforce_gate(item(ENFORCE), info('mx1.example.com'), [probe('mx1.example.com')], tlsrpt)
        assert verdict['verdict'] == 'refused'
        assert verdict['reasons'] == [gate['message']]
    other = enforce_gate(item(ENFORCE), info('mx1.example.com'), [probe('mx1.example.com')], {'example.net': gate})
    assert other['reasons'] == ["no TLS-RPT verdict for example.com among the reports' gate (example.net)"]
    assert enforce_gate(item(ENFORCE), info('mx1.example.com'), [probe('mx1.example.com')], {})['verdict'] == 'pass'


def test_gate_override_carries_the_reason_and_an_unneeded_one_says_so():
    refused_item = item(ENFORCE, enforce_override={'reason': 'CAB-123: probe blocked from CI, checked by hand'})
    verdict = enforce_gate(refused_item, info('mx1.example.com'), [])
    assert (verdict['verdict'], verdict['allowed']) == ('override', True)
    assert verdict['override'] == {'reason': 'CAB-123: probe blocked from CI, checked by hand'}
    assert verdict['reasons'][-1] == 'refusal overridden by enforce_override: CAB-123: probe blocked from CI, checked by hand'
    passed = enforce_gate(refused_item, info('mx1.example.com'), [probe('mx1.example.com')])
    assert (passed['verdict'], passed['override']) == ('pass', None)
    assert 'not needed' in passed['reasons'][-1]


@pytest.mark.parametrize('override', [{}, {'reason': ''}, {'reason': '   '}, {'reason': 3}, 'because', {'reason': 'x', 'by': 'me'}])
def test_gate_override_without_a_reason_is_an_error(override):
    with pytest.raises(ValidationError, match='enforce_override'):
        enforce_gate(item(ENFORCE, enforce_override=override), info('mx1.example.com'))


def test_gate_refuses_with_no_known_mx():
    for result in (info(), [{'domain': 'other.example', 'mx': []}]):
        verdict = enforce_gate(item(ENFORCE), result, [])
        assert verdict['verdict'] == 'refused'
        assert verdict['checks'][0]['check'] == 'mx-hosts'


def test_gate_inside_enforce_judges_coverage_and_probes_but_not_reports():
    state = state_of(entry(ENFORCE, '2026-11-01T00:00:00Z'))
    verdict = enforce_gate(item(WIDENED), info('mx1.example.com'), [probe('mx1.example.com')], {'passed': False},
                           state, NOW)
    assert verdict['verdict'] == 'pass'
    assert [check['check'] for check in verdict['checks']] == ['mx-covered', 'mx-tls']


def test_gate_without_state_reads_the_served_policy():
    served = dict(info('mx1.example.com'), mode='enforce', policy=dict(ENFORCE, version='STSv1', extensions={}))
    assert enforce_gate(item(ENFORCE), served)['verdict'] == 'not-needed'


# --- MX changes ---

def test_mx_change_first_rollout_and_no_change():
    assert mx_change(item(ENFORCE), None, ['mx1.example.com'], NOW)['action'] == 'none'
    state = state_of(entry(ENFORCE, '2026-11-01T00:00:00Z'))
    result = mx_change(item(ENFORCE), state, ['mx1.example.com'], NOW)
    assert (result['action'], result['allowed'], result['move_after'], result['reasons']) == ('none', True, None, [])


def test_mx_widen_then_move_then_narrow():
    # enforce, max_age a week, live since 2026-11-01: widening now lets the MX move a week after now.
    state = state_of(entry(ENFORCE, '2026-11-01T00:00:00Z'))
    widen = mx_change(item(WIDENED), state, ['mx1.example.com'], NOW)
    assert (widen['action'], widen['allowed'], widen['added'], widen['removed']) == ('widen', True, ['mx2.example.net'], [])
    assert widen['move_after'] == '2026-12-08T10:00:00Z'

    # The widening went live at NOW: the next run, same policy, still says when.
    state = update_state(state, [item(WIDENED)], NOW)
    waiting = mx_change(item(WIDENED), state, ['mx1.example.com'], '2026-12-03T00:00:00Z')
    assert (waiting['action'], waiting['move_after']) == ('none', '2026-12-08T10:00:00Z')
    assert 'may move after 2026-12-08T10:00:00Z' in waiting['reasons'][0]

    # Moved too early: senders holding the old policy refuse the new MX until then.
    early = mx_change(item(WIDENED), state, ['mx2.example.net'], '2026-12-03T00:00:00Z')
    assert 'MX mx2.example.net is not covered by the enforce policy %s' % policy_id(ENFORCE) in early['reasons'][1]
    assert 'until 2026-12-08T10:00:00Z' in early['reasons'][1]

    # Narrowing while the old MX is still live is refused; after the move it is allowed.
    refused = mx_change(item(MOVED), state, ['mx1.example.com', 'mx2.example.net'], '2026-12-09T00:00:00Z')
    assert (refused['action'], refused['allowed'], refused['removed']) == ('narrow', False, ['mx1.example.com'])
    assert 'live MX mx1.example.com still uses mx1.example.com' in refused['reasons'][0]
    allowed = mx_change(item(MOVED), state, ['mx2.example.net'], '2026-12-09T00:00:00Z')
    assert (allowed['action'], allowed['allowed']) == ('narrow', True)
    assert allowed['reasons'] == ['dropping mx1.example.com: no live MX host uses it']


def test_mx_move_waits_for_every_enforce_policy_a_sender_may_hold():
    # A week-long enforce policy replaced an hour ago by a day-long one: the week still counts.
    state = state_of(entry(dict(ENFORCE, max_age=4 * WEEK), '2026-10-01T00:00:00Z'),
                     entry(dict(ENFORCE, max_age=DAY), '2026-12-01T09:00:00Z'))
    widen = mx_change(item(dict(WIDENED, max_age=DAY)), state, ['mx1.example.com'], NOW)
    assert widen['move_after'] == '2026-12-29T09:00:00Z'


def test_mx_change_in_testing_moves_at_once_and_may_drop():
    state = state_of(entry(TESTING, '2026-11-01T00:00:00Z'))
    widen = mx_change(item(dict(TESTING, mx=['mx1.example.com', 'mx2.example.net'])), state, ['mx1.example.com'], NOW)
    assert (widen['action'], widen['move_after']) == ('widen', None)
    assert 'at once' in widen['reasons'][0]
    narrow = mx_change(item(dict(TESTING, mx=['mx2.example.net'])), state, ['mx1.example.com'], NOW)
    assert (narrow['action'], narrow['allowed']) == ('narrow', True)


def test_mx_narrow_kept_by_a_wildcard_and_unknown_live_mx():
    state = state_of(entry(ENFORCE, '2026-11-01T00:00:00Z'))
    wildcard = item(dict(ENFORCE, mx=['*.example.com']))
    assert mx_change(wildcard, state, [{'host': 'MX1.example.com.'}], NOW)['allowed'] is True
    unknown = mx_change(item(MOVED), state, None, NOW)
    assert unknown['allowed'] is False and 'live_mx' in unknown['reasons'][-1]


# --- retirement ---

def test_retirement_phases():
    live_since = '2026-10-01T00:00:00Z'
    state = state_of(entry(ENFORCE, live_since))
    publish = retirement('example.com', state, NOW)
    assert (publish['phase'], publish['delete_after']) == ('publish-none', None)
    assert publish['policy'] == {'mode': 'none', 'max_age': DAY, 'mx': ['mx1.example.com']}
    assert 'may go 7 days after it is live' in publish['reasons'][0]

    state = update_state(state, [item(publish['policy'])], NOW)
    waiting = retirement('example.com', state, '2026-12-05T00:00:00Z')
    assert (waiting['phase'], waiting['none_since'], waiting['delete_after']) == (
        'waiting', NOW, '2026-12-08T10:00:00Z')
    assert 'may be deleted after 2026-12-08T10:00:00Z' in waiting['reasons'][0]
    done = retirement('example.com', state, '2026-12-08T10:00:00Z')
    assert (done['phase'], done['policy']) == ('may-delete', None)


def test_retirement_waits_the_max_age_of_the_policy_before_none_not_of_none():
    # none republished with another max_age (a new id): the wait still runs from the first none.
    none = {'mode': 'none', 'max_age': 60}
    state = state_of(entry(dict(ENFORCE, max_age=2 * WEEK), '2026-10-01T00:00:00Z'),
                     entry(none, '2026-11-20T00:00:00Z'), entry(dict(none, max_age=120), '2026-11-21T00:00:00Z'))
    result = retirement('example.com', state, NOW)
    assert (result['phase'], result['none_since'], result['delete_after']) == (
        'waiting', '2026-11-20T00:00:00Z', '2026-12-04T00:00:00Z')


def test_retirement_without_state_and_with_only_none():
    assert retirement('example.com', {}, NOW)['phase'] == 'publish-none'
    state = state_of(entry({'mode': 'none', 'max_age': DAY}, '2026-11-30T12:00:00Z'))
    result = retirement('example.com', state, NOW)
    assert (result['phase'], result['delete_after']) == ('waiting', '2026-12-01T12:00:00Z')


# --- the plan ---

SECRET = 'hmac-sha256:c2VjcmV0LWtleQ=='


def registered(*items):
    # What `register:` holds after a record module ran: provider options sit in invocation.
    return {'changed': True, 'results': list(items), 'invocation': {'module_args': {
        'provider': 'rfc2136', 'key_name': 'ansible', 'key_secret': SECRET, 'api_token': SECRET,
        'aws_secret_access_key': SECRET}}}


def test_plan_check_mode_first_rollout():
    policy_text = render_policy(TESTING)
    records = [registered({'domain': 'example.com', 'name': '_mta-sts.example.com', 'zone': 'example.com',
                           'before': [], 'after': ['v=STSv1; id=%s;' % policy_id(TESTING)], 'changed': True,
                           'key_secret': SECRET}),
               registered({'domain': 'example.com', 'name': 'mta-sts.example.com', 'before': {'A': [], 'AAAA': [], 'CNAME': []},
                           'after': {'A': ['192.0.2.10'], 'AAAA': [], 'CNAME': []}, 'changed': True})]
    plan = build_plan([item(TESTING, rua=['mailto:tlsrpt@example.com'])], NOW, True, records)
    assert (plan['version'], plan['generated'], plan['check_mode']) == (1, NOW, True)
    domain = plan['domains'][0]
    assert domain['status'] == 'would publish after verification'
    assert domain['records'] == [
        {'name': '_mta-sts.example.com', 'type': 'TXT', 'before': [], 'after': ['v=STSv1; id=%s;' % policy_id(TESTING)],
         'changed': True, 'note': 'would publish after verification'},
        {'name': 'mta-sts.example.com', 'type': 'A', 'before': [], 'after': ['192.0.2.10'], 'changed': True, 'note': ''}]
    assert domain['policy_file']['after'] == policy_text and domain['policy_file']['before'] is None
    assert domain['policy_file']['diff'].splitlines()[2:] == ['@@ -0,0 +1,4 @@', '+version: STSv1', '+mode: testing',
                                                              '+mx: mx1.example.com', '+max_age: 86400']
    assert domain['gates']['verification']['served'] is None
    assert SECRET not in json.dumps(plan)


def test_plan_statuses_and_overrides():
    live = {'results': [dict(info('mx1.example.com'), id=policy_id(TESTING), mode='testing',
                             policy=dict(TESTING, version='STSv1', extensions={}))]}
    unchanged = build_plan([item(TESTING)], NOW, False, [], live)
    assert unchanged['domains'][0]['status'] == 'unchanged'
    assert unchanged['domains'][0]['policy_file']['diff'] == ''

    overridden = enforce_gate(item(ENFORCE, enforce_override={'reason': 'CAB-123'}), info('mx1.example.com'), [])
    applied = build_plan([item(ENFORCE, enforce_override={'reason': 'CAB-123'})], NOW, False, None, live, [overridden],
                         verification={'results': [{'domain': 'example.com', 'served': True, 'expected_id': policy_id(ENFORCE),
                                                    'addresses': [{'address': '127.0.0.1', 'status': 200, 'id': policy_id(ENFORCE),
                                                                   'matches': True, 'error': None}], 'reason': ''}]})
    domain = applied['domains'][0]
    assert (domain['status'], domain['overrides']) == ('applied', [{'gate': 'enforce', 'reason': 'CAB-123'}])
    assert '-mode: testing' in domain['policy_file']['diff'] and '+mode: enforce' in domain['policy_file']['diff']
    assert domain['gates']['enforce']['verdict'] == 'override'

    refused = enforce_gate(item(ENFORCE), info('mx1.example.com'), [])
    failed = build_plan([item(ENFORCE)], NOW, True, None, live, [refused], errors={'example.com': 'DNS write failed'})
    assert failed['domains'][0]['status'] == 'failed'
    assert failed['domains'][0]['errors'][0] == 'DNS write failed'
    assert 'no STARTTLS probe result' in failed['domains'][0]['errors'][1]


def test_plan_not_served_fails_a_real_run_only():
    served = [{'domain': 'example.com', 'served': False, 'expected_id': policy_id(ENFORCE), 'reason': '127.0.0.1 serves id x',
               'addresses': [{'address': '127.0.0.1', 'status': 200, 'id': 'x', 'matches': False, 'error': None}]}]
    real = build_plan([item(ENFORCE)], NOW, False, verification=served)['domains'][0]
    assert (real['status'], real['errors']) == ('failed', ['the policy of example.com is not served on every address: '
                                                           '127.0.0.1 serves id x'])
    check = build_plan([item(ENFORCE)], NOW, True, verification=served)['domains'][0]
    assert (check['status'], check['errors']) == ('would publish after verification', [])


def test_plan_rejects_results_of_other_domains_and_bad_input():
    with pytest.raises(ValidationError, match=r'records\[0\]\[0\].domain'):
        build_plan([item(TESTING)], NOW, records=[{'domain': 'other.example', 'name': 'x', 'before': [], 'after': []}])
    with pytest.raises(ValidationError, match='check_mode'):
        build_plan([item(TESTING)], NOW, check_mode='yes')
    with pytest.raises(ValidationError, match=r'domains\[1\].domain'):
        build_plan([item(TESTING), item(ENFORCE)], NOW)


# --- the plan's schema (docs/plan.schema.json) ---

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'plan.schema.json')
SECRET_NAME = re.compile(r'token|secret|password|passwd|^aws_|credential|private_key|api_key', re.IGNORECASE)


@pytest.fixture(scope='module')
def validator():
    with open(SCHEMA_PATH) as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def keys_of(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from keys_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from keys_of(item)


def sample_plans():
    """Plans of every status and every input kind, each from registered results that carry provider secrets."""
    live = [dict(info('mx1.example.com'), id=policy_id(TESTING), mode='testing',
                 policy=dict(TESTING, version='STSv1', extensions={}))]
    state = state_of(entry(TESTING, '2026-11-01T00:00:00Z'))
    sts = registered({'domain': 'example.com', 'name': '_mta-sts.example.com', 'before': ['v=STSv1; id=%s;' % policy_id(TESTING)],
                      'after': ['v=STSv1; id=%s;' % policy_id(ENFORCE)], 'changed': True, 'policy': render_policy(ENFORCE),
                      'delegated_to': 'example.com._mta-sts.hoster.example'})
    host = registered({'domain': 'example.com', 'name': 'mta-sts.example.com', 'zone': 'example.com', 'state': 'present',
                       'before': {'A': ['192.0.2.10'], 'AAAA': [], 'CNAME': []},
                       'after': {'A': ['192.0.2.10'], 'AAAA': ['2001:db8::10'], 'CNAME': []}, 'changed': True})
    served = {'results': [{'domain': 'example.com', 'served': True, 'expected_id': policy_id(ENFORCE), 'reason': '',
                           'addresses': [{'address': '127.0.0.1', 'status': 200, 'id': policy_id(ENFORCE), 'matches': True,
                                          'error': None, 'api_token': SECRET}]}], 'invocation': {'module_args': {'key_secret': SECRET}}}
    passed = enforce_gate(item(ENFORCE), info('mx1.example.com'), [probe('mx1.example.com')], None, state, NOW)
    refused = enforce_gate(item(ENFORCE), info('mx1.example.com'), [], None, state, NOW)
    overridden = enforce_gate(item(ENFORCE, enforce_override={'reason': 'CAB-9'}), info('mx1.example.com'), [], None, state, NOW)
    change = mx_change(item(ENFORCE), state, ['mx1.example.com'], NOW)
    yield build_plan([item(ENFORCE)], NOW, True, [sts, host], live, [passed], [change])
    yield build_plan([item(ENFORCE)], NOW, False, [sts, host], live, [overridden], [change], served)
    yield build_plan([item(ENFORCE)], NOW, False, [sts], live, [refused], [change], errors={'example.com': ['write failed']})
    yield build_plan([item(TESTING)], NOW, False, [], live)
    yield build_plan([item(TESTING)], NOW, True, [host], live)
    yield build_plan([], NOW)


def test_plans_match_the_schema_and_carry_no_secret(validator):
    statuses = set()
    for plan in sample_plans():
        errors = sorted(validator.iter_errors(plan), key=str)
        assert not errors, errors[0]
        assert not [key for key in keys_of(plan) if SECRET_NAME.search(key)]
        assert SECRET not in json.dumps(plan)
        statuses.update(domain['status'] for domain in plan['domains'])
    assert statuses == {'would publish after verification', 'applied', 'failed', 'unchanged', 'planned'}


def test_the_schema_admits_no_other_key(validator):
    # additionalProperties is false at every level, so a secret cannot ride along under a new name either.
    plan = next(sample_plans())
    for where in (plan, plan['domains'][0], plan['domains'][0]['records'][0], plan['domains'][0]['policy_file'],
                  plan['domains'][0]['gates'], plan['domains'][0]['gates']['enforce'],
                  plan['domains'][0]['gates']['enforce']['checks'][0], plan['domains'][0]['gates']['mx_change']):
        where['key_secret'] = 'x'
        assert not validator.is_valid(plan)
        del where['key_secret']
    assert validator.is_valid(plan)
    schema_keys = [key for key in keys_of(validator.schema) if SECRET_NAME.search(key)]
    assert schema_keys == []


def test_the_documented_example_is_what_the_filter_makes(validator):
    with open(os.path.join(os.path.dirname(SCHEMA_PATH), 'plan-schema.md')) as handle:
        documented = json.loads(re.search(r'```json\n(.*?)```', handle.read(), re.DOTALL).group(1))
    wanted = item(ENFORCE, enforce_override={'reason': 'CAB-123: MX probe blocked from CI, checked by hand'})
    state = state_of(entry(TESTING, '2026-11-01T00:00:00Z'))
    live = dict(info('mx1.example.com'), id=policy_id(TESTING), policy=dict(TESTING, version='STSv1', extensions={}))
    gate = enforce_gate(wanted, live, [{'host': 'mx1.example.com', 'starttls': None, 'error': 'connect: timed out'}],
                        None, state, NOW)
    records = {'results': [{'domain': 'example.com', 'name': '_mta-sts.example.com', 'changed': True,
                            'before': ['v=STSv1; id=%s;' % policy_id(TESTING)], 'after': ['v=STSv1; id=%s;' % policy_id(ENFORCE)]}]}
    plan = build_plan([wanted], NOW, True, [records], [live], [gate], [mx_change(wanted, state, ['mx1.example.com'], NOW)])
    assert documented == plan
    assert validator.is_valid(documented)


def test_the_documented_state_file_is_valid_and_canonical():
    with open(os.path.join(os.path.dirname(SCHEMA_PATH), 'state-file.md')) as handle:
        documented = json.loads(re.search(r'```json\n(.*?)```', handle.read(), re.DOTALL).group(1))
    assert load_state(documented) == documented
    history = documented['domains']['example.com']['history']
    assert [entry['id'] for entry in history] == [policy_id(TESTING), policy_id(ENFORCE)]


def test_the_rollout_guide_quotes_what_the_filters_say():
    """docs/rollout.md's example sentences, made again from the guide's story: an MX move, then retirement."""
    with open(os.path.join(os.path.dirname(SCHEMA_PATH), 'rollout.md')) as handle:
        guide = handle.read()
    old = {'mode': 'enforce', 'mx': ['mx1.example.com'], 'max_age': WEEK}
    widened = dict(old, mx=['mx1.example.com', 'mx.newhost.example'])
    moved = dict(old, mx=['mx.newhost.example'])
    state = update_state({}, [item(old)], '2026-11-02T09:00:00Z')
    said = mx_change(item(widened), state, ['mx1.example.com'], NOW)['reasons']
    state = update_state(state, [item(widened)], NOW)
    said += mx_change(item(widened), state, ['mx.newhost.example'], '2026-12-03T10:00:00Z')['reasons']
    said += mx_change(item(moved), state, ['mx1.example.com', 'mx.newhost.example'], '2026-12-09T10:00:00Z')['reasons']
    none = retirement('example.com', state, '2026-12-10T00:00:00Z')['policy']
    state = update_state(state, [item(none)], '2026-12-10T00:00:00Z')
    said.append('example.com: waiting: ' + retirement('example.com', state, '2026-12-12T00:00:00Z')['reasons'][0])
    gate = enforce_gate(item(old), info('mx1.example.com', 'backup.example.org'),
                        [probe('mx1.example.com', certificate_valid=False, error='certificate: hostname mismatch')],
                        {'passed': False, 'message': 'example.com should not go to enforce yet: only 40 sessions reported for '
                         'example.com over the last 14 days (2026-11-17 to 2026-11-30); at least 100 are needed'})
    said += gate['reasons']
    assert len(said) == 9
    for sentence in said:
        assert '\n' + sentence + '\n' in guide or '   ' + sentence + '\n' in guide, sentence
