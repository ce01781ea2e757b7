"""The rollout filters through one real ansible-playbook run: the state file written, rewritten and left alone,
the enforce gate (refused, overridden, passed, a bad override), an MX widening, retirement, and the plan of a
check-mode record run, written to a file with no secret in it.

The record module runs on the zone file provider: real module results (with their invocation) and no server.
Times are fixed so every moment asserted is worked out by hand; one task uses the documented now() form.
"""

import json
import os

import jsonschema

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from tests.integration.backends import ZonefileBackend
from tests.integration.playbook import run_playbook

SECRET = 'c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw=='
TESTING = {'mode': 'testing', 'mx': ['mx1.alpha.example'], 'max_age': 86400}
ENFORCE = {'mode': 'enforce', 'mx': ['mx1.alpha.example'], 'max_age': 604800}
WIDENED = {'mode': 'enforce', 'mx': ['mx1.alpha.example', 'mx2.alpha.example'], 'max_age': 604800}
T1, T2, T3 = '2026-11-01T10:00:00Z', '2026-11-20T10:00:00Z', '2026-12-01T10:00:00Z'
UPDATE = ("{{ lookup('file', state_file, errors='ignore') | default('', true) "
          "| mailsec.mta_sts.mta_sts_state_update(%s, '%s') | to_nice_json(indent=2) }}\n")
GOOD_PROBE = {'host': 'mx1.alpha.example', 'starttls': True, 'tls_version': 'TLSv1.3', 'certificate_valid': True,
              'not_after': '2027-03-01T00:00:00Z', 'error': None}
UNREACHABLE = {'host': 'mx1.alpha.example', 'starttls': None, 'tls_version': None, 'certificate_valid': None,
               'error': 'connect: Connection refused'}
SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs', 'plan.schema.json')
# ansible_check_mode is false in this run: the plan is the one of the check-mode record run above.
PLAN = ("{{ [widened_item] | mailsec.mta_sts.mta_sts_plan(now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ'), not ansible_check_mode, "
        "[widen], [live_info], [widen_gate], [mx_change]) | to_nice_json(indent=2) }}\n")
INFO = {'domain': 'alpha.example', 'mx': [{'host': 'mx1.alpha.example', 'preference': 10}]}


def tasks(zone_args):
    return [
        {'name': 'first rollout', 'copy': {'dest': '{{ state_file }}',
                                           'content': UPDATE % ("[{'domain': 'alpha.example', 'policy': testing}]", T1)}},
        {'name': 'gates', 'set_fact': {
            'refused': '{{ enforce_item | mailsec.mta_sts.mta_sts_enforce_gate(info, [unreachable], none, state) }}',
            'overridden': '{{ override_item | mailsec.mta_sts.mta_sts_enforce_gate(info, [unreachable], none, state) }}',
            'passed': "{{ enforce_item | mailsec.mta_sts.mta_sts_enforce_gate(info, {'results': [good_probe]}, "
                      "{'passed': true, 'message': 'reports fine'}, state, '%s') }}" % T1},
         'vars': {'state': "{{ lookup('file', state_file) }}"}},
        {'name': 'override without a reason', 'set_fact': {
            'bad': "{{ enforce_item | combine({'enforce_override': {'reason': ''}}) "
                   "| mailsec.mta_sts.mta_sts_enforce_gate(info) }}"}, 'ignore_errors': True},
        {'name': 'publish enforce', 'mailsec.mta_sts.mta_sts_record': dict(zone_args, domain='alpha.example', policy=ENFORCE),
         'register': 'sts'},
        {'name': 'enforce went live', 'copy': {'dest': '{{ state_file }}', 'content': UPDATE % ('sts.results', T2)}},
        {'name': 'same id again', 'copy': {'dest': '{{ state_file }}', 'content': UPDATE % ('sts.results', T3)}},
        {'name': 'widen in check mode', 'mailsec.mta_sts.mta_sts_record': dict(zone_args, domain='alpha.example', policy=WIDENED,
                                                                               key_name='ansible', key_secret=SECRET),
         'check_mode': True, 'register': 'widen'},
        {'name': 'judge the widening', 'set_fact': {
            'live': "{{ state | mailsec.mta_sts.mta_sts_live_policy('alpha.example') }}",
            'mx_change': "{{ widened_item | mailsec.mta_sts.mta_sts_mx_change(state, ['mx1.alpha.example'], '%s') }}" % T3,
            'widen_gate': "{{ widened_item | mailsec.mta_sts.mta_sts_enforce_gate(info, [good_probe], none, state) }}",
            'retire': "{{ 'alpha.example' | mailsec.mta_sts.mta_sts_retirement(state, '%s') }}" % T3},
         'vars': {'state': "{{ lookup('file', state_file) | from_json }}"}},
        {'name': 'write the plan', 'copy': {'dest': '{{ plan_file }}', 'content': PLAN}},
        {'name': 'a broken state file', 'set_fact': {
            'broken': "{{ {'version': 1, 'domains': {'alpha.example': {'history': [{'id': 'abc', 'mode': 'testing', "
                      "'max_age': 86400, 'mx': ['mx1.alpha.example'], 'live_since': 'yesterday'}]}}} "
                      "| mailsec.mta_sts.mta_sts_live_policy('alpha.example') }}"}, 'ignore_errors': True},
    ]


def test_rollout_filters_in_a_playbook(tmp_path):
    zones = ZonefileBackend(str(tmp_path))
    state_file, plan_file = tmp_path / 'mta-sts-state.json', tmp_path / 'plan.json'
    widened_text = render_policy(WIDENED)
    play_vars = {
        'state_file': str(state_file), 'plan_file': str(plan_file), 'testing': TESTING, 'info': INFO,
        'good_probe': GOOD_PROBE, 'unreachable': UNREACHABLE,
        'enforce_item': {'domain': 'alpha.example', 'policy': ENFORCE},
        'override_item': {'domain': 'alpha.example', 'policy': ENFORCE,
                          'enforce_override': {'reason': 'CAB-123: port 25 blocked from CI, checked by hand'}},
        'widened_item': {'domain': 'alpha.example', 'policy': WIDENED},
        'live_info': dict(INFO, id=policy_id(ENFORCE), mode='enforce', policy=dict(ENFORCE, version='STSv1', extensions={})),
    }
    run = run_playbook(tasks(zones.module_args()), play_vars=play_vars)
    assert run.returncode == 0, run
    results = dict((result['_task'], result) for result in run.results)

    # The state file: written twice, then left alone when the id did not change.
    assert [results[name]['changed'] for name in ('first rollout', 'enforce went live', 'same id again')] == [True, True, False]
    state = json.loads(state_file.read_text())
    assert state == {'version': 1, 'domains': {'alpha.example': {'history': [
        {'id': policy_id(TESTING), 'mode': 'testing', 'max_age': 86400, 'mx': ['mx1.alpha.example'], 'live_since': T1,
         'policy': render_policy(TESTING)},
        {'id': policy_id(ENFORCE), 'mode': 'enforce', 'max_age': 604800, 'mx': ['mx1.alpha.example'], 'live_since': T2,
         'policy': render_policy(ENFORCE)}]}}}

    gates = results['gates']['ansible_facts']
    assert (gates['refused']['verdict'], gates['refused']['allowed']) == ('refused', False)
    assert 'Connection refused' in gates['refused']['reasons'][0] and 'not a pass' in gates['refused']['reasons'][0]
    assert (gates['overridden']['verdict'], gates['overridden']['override']) == (
        'override', {'reason': 'CAB-123: port 25 blocked from CI, checked by hand'})
    assert gates['passed']['verdict'] == 'pass'
    assert [check['check'] for check in gates['passed']['checks']] == ['mx-covered', 'mx-tls', 'tlsrpt']
    bad = results['override without a reason']
    assert bad['_status'] == 'failed' and "enforce_override of alpha.example.reason '': must be a non-empty string" in bad['msg']
    broken = results['a broken state file']
    assert broken['_status'] == 'failed'
    assert 'state.domains["alpha.example"].history[0].live_since \'yesterday\': must be an RFC 3339' in broken['msg']

    judged = results['judge the widening']['ansible_facts']
    assert judged['live']['id'] == policy_id(ENFORCE)
    assert (judged['mx_change']['action'], judged['mx_change']['added'], judged['mx_change']['move_after']) == (
        'widen', ['mx2.alpha.example'], '2026-12-08T10:00:00Z')
    assert judged['widen_gate']['verdict'] == 'pass'
    assert (judged['retire']['phase'], judged['retire']['policy']['mode']) == ('publish-none', 'none')

    # The plan of the check-mode run: the new TXT value, the policy diff, the gates; no secret.
    plan_text = plan_file.read_text()
    plan = json.loads(plan_text)
    with open(SCHEMA) as handle:
        jsonschema.validate(plan, json.load(handle), cls=jsonschema.Draft202012Validator)
    assert plan['version'] == 1 and plan['check_mode'] is True
    domain = plan['domains'][0]
    assert domain['status'] == 'would publish after verification'
    assert domain['records'] == [{'name': '_mta-sts.alpha.example', 'type': 'TXT',
                                  'before': ['v=STSv1; id=%s;' % policy_id(ENFORCE)],
                                  'after': ['v=STSv1; id=%s;' % policy_id(WIDENED)], 'changed': True,
                                  'note': 'would publish after verification'}]
    assert domain['policy_file']['after'] == widened_text
    assert (domain['policy_file']['id_before'], domain['policy_file']['id_after']) == (policy_id(ENFORCE), policy_id(WIDENED))
    assert '+mx: mx2.alpha.example' in domain['policy_file']['diff'].splitlines()
    assert domain['gates']['mx_change']['move_after'] == '2026-12-08T10:00:00Z'
    assert results['widen in check mode']['invocation']['module_args']['key_secret'] != SECRET
    assert SECRET not in plan_text and 'key_secret' not in plan_text and 'invocation' not in plan_text
    # Check mode wrote no record: the zone file still announces the enforce id.
    assert policy_id(WIDENED) not in (tmp_path / 'alpha.example.zone').read_text()
