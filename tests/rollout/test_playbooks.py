"""playbooks/site.yml, then drift.yml and retire.yml, through ansible-playbook on the rollout lab (conftest.py). The tests run in file order on
one inventory: each starts from the DNS, policy host and state file the previous one left."""

import copy
import json
import os
import ssl

import pytest

from tests.rollout.conftest import (
    POLICY_HOST, STALE_HOST, Inventory, base_domains, changed_tasks, policy, task_results,
)
from tests.integration.policy_host_lab import https_get


def policy_id(policy_dict):
    # The collection's own rule (docs/policy-id.md), not a copy of it.
    from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id as rule
    return rule(policy_dict)


def txt(lab, name):
    return [value.strip('"') for value in lab.knot.query(name, 'TXT')]


def sts_id(lab, domain):
    values = [value for value in txt(lab, '_mta-sts.%s.' % domain) if value.startswith('v=STSv1')]
    assert len(values) <= 1, values
    return values[0].split('id=')[1].rstrip(';').strip() if values else None


def served(lab, domain, address=POLICY_HOST):
    return https_get(address, 'mta-sts.' + domain, context=lab.ca.client_context())


def plan_domain(plan, domain):
    return next(item for item in plan['domains'] if item['domain'] == domain)


@pytest.fixture(scope='module')
def inventory(lab):
    return Inventory(lab, base_domains())


@pytest.fixture(scope='module')
def first_run(inventory):
    return inventory.run('site.yml')


def test_first_rollout_serves_verifies_and_publishes_every_domain(lab, inventory, first_run):
    assert first_run.returncode == 0, first_run
    for item in inventory.domains:
        domain = item['domain']
        answer = served(lab, domain)
        assert answer.status == 200 and answer.body.decode() == render(item['policy'])
        if 'delegation' in item:
            continue
        assert lab.knot.query('mta-sts.%s.' % domain, 'A') == [POLICY_HOST]
        assert sts_id(lab, domain) == policy_id(item['policy'])
    # The delegated customer (RFC 8461 8.2): two CNAMEs in its zone, the TXT in the provider's.
    assert lab.knot.query('_mta-sts.cust.test.', 'CNAME') == ['cust.test._mta-sts.hoster.test.']
    assert lab.knot.query('mta-sts.cust.test.', 'CNAME') == ['mta-sts.hoster.test.']
    assert txt(lab, 'cust.test._mta-sts.hoster.test.') == ['v=STSv1; id=%s;' % policy_id(policy('cust.test'))]
    assert txt(lab, '_smtp._tls.alpha.test.') == ['v=TLSRPTv1; rua=mailto:tlsrpt@alpha.test']
    state = inventory.state()
    assert sorted(state['domains']) == ['alpha.test', 'beta.test', 'cust.test', 'stale.test']
    assert [entry['id'] for entry in state['domains']['beta.test']['history']] == [policy_id(policy('beta.test', 'enforce', 604800))]
    plan = inventory.plan()
    assert plan['check_mode'] is False
    assert {item['domain']: item['status'] for item in plan['domains']} == dict.fromkeys(
        ['alpha.test', 'beta.test', 'cust.test', 'stale.test'], 'applied')
    # beta.test went to enforce on positive evidence: its MX covered and its probe passed.
    gate = plan_domain(plan, 'beta.test')['gates']['enforce']
    assert gate['verdict'] == 'pass', gate
    assert {check['check'] for check in gate['checks']} == {'mx-covered', 'mx-tls'}


def test_second_run_changes_nothing(lab, inventory, first_run):
    assert first_run.returncode == 0, first_run
    serial = lab.knot.query('alpha.test.', 'SOA')
    state_before = inventory.state()
    run = inventory.run('site.yml')
    assert run.returncode == 0, run
    assert changed_tasks(run) == []
    assert lab.knot.query('alpha.test.', 'SOA') == serial
    assert inventory.state() == state_before
    assert {item['status'] for item in inventory.plan()['domains']} == {'unchanged'}


def render(policy_dict):
    from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import render_policy
    return render_policy(policy_dict)


def test_a_domain_whose_policy_host_serves_stale_bytes_keeps_its_old_id(lab, inventory, first_run):
    assert first_run.returncode == 0, first_run
    old_policy = policy('stale.test')
    old_id = sts_id(lab, 'stale.test')
    assert old_id == policy_id(old_policy)
    # Its policy changes while a second address (now in its A records too) serves other bytes; alpha.test changes
    # at the same time and must go on.
    changed_policy = policy('stale.test', max_age=172800)
    stale = inventory.domain('stale.test')
    stale.update(policy=changed_policy, host_record={'addresses': [POLICY_HOST, STALE_HOST]})
    alpha = inventory.domain('alpha.test')
    alpha['policy'] = policy('alpha.test', max_age=172800)
    inventory.write()
    run = inventory.run('site.yml')
    assert run.returncode != 0, run
    failure = task_results(run, 'Fail, naming each domain that was held back and why (the others are converged)')[-1]['msg']
    assert 'stale.test: not published, the policy hosts do not serve the new policy' in failure, failure
    assert STALE_HOST in failure and 'its id stays %s' % old_id in failure, failure
    assert 'alpha.test' not in failure and 'beta.test' not in failure
    assert sts_id(lab, 'stale.test') == old_id
    assert sorted(lab.knot.query('mta-sts.stale.test.', 'A')) == sorted([POLICY_HOST, STALE_HOST])
    # The other domains went on: alpha.test's new policy is live under its new id.
    assert sts_id(lab, 'alpha.test') == policy_id(alpha['policy'])
    state = inventory.state()
    assert [entry['id'] for entry in state['domains']['stale.test']['history']] == [old_id]
    assert len(state['domains']['alpha.test']['history']) == 2
    assert plan_domain(inventory.plan(), 'stale.test')['status'] == 'failed'
    # Back to what is live (the next run puts its A record back to one address).
    stale.update(policy=old_policy, host_record={'addresses': [POLICY_HOST]})
    inventory.write()


def test_check_diff_shows_the_plan_and_changes_nothing(lab, inventory):
    alpha = inventory.domain('alpha.test')
    wanted = policy('alpha.test', mode='testing', max_age=259200)
    alpha['policy'] = wanted
    inventory.write()
    before = (sts_id(lab, 'alpha.test'), served(lab, 'alpha.test').body, inventory.state())
    os.unlink(inventory.path('out', 'plan', 'plan.json'))
    run = inventory.run('site.yml', check=True, diff=True)
    assert run.returncode == 0, run
    assert (sts_id(lab, 'alpha.test'), served(lab, 'alpha.test').body, inventory.state()) == before
    # Every planned change is in the diff: the policy file and the record.
    assert 'max_age: 259200' in run.output
    assert '_mta-sts.alpha.test' in run.output and policy_id(wanted) in run.output
    plan = inventory.plan()
    assert plan['check_mode'] is True
    entry = plan_domain(plan, 'alpha.test')
    assert entry['status'] == 'would publish after verification'
    assert entry['policy_file']['id_after'] == policy_id(wanted) and entry['policy_file']['id_before'] == before[0]
    assert '+max_age: 259200' in entry['policy_file']['diff']
    assert plan_domain(plan, 'beta.test')['status'] == 'unchanged'
    assert lab.tsig_secret not in json.dumps(plan)
    # Put alpha.test back as it is live, for the next tests.
    alpha['policy'] = policy('alpha.test', max_age=172800)
    inventory.write()


def test_enforce_is_refused_without_positive_evidence_for_every_mx(lab, inventory):
    inventory.set_domains(inventory.domains + [
        {'domain': 'gamma.test', 'policy': policy('gamma.test', 'enforce', 604800),
         'host_record': {'addresses': [POLICY_HOST]}},
        {'domain': 'uncov.test', 'policy': policy('uncov.test', 'enforce', 604800),
         'host_record': {'addresses': [POLICY_HOST]}},
    ])
    run = inventory.run('site.yml')
    assert run.returncode != 0, run
    failure = task_results(run, 'Fail, naming each domain that was held back and why (the others are converged)')[-1]['msg']
    assert 'gamma.test: enforce gate refused' in failure and 'mx1.gamma.test' in failure, failure
    assert 'uncov.test: enforce gate refused' in failure and 'mx2.uncov.test matches none of' in failure, failure
    for domain in ('gamma.test', 'uncov.test'):
        assert sts_id(lab, domain) is None
        # Nothing was live, so the policy host serves nothing for it (not even a certificate).
        with pytest.raises(ssl.SSLError):
            served(lab, domain)
    plan = inventory.plan()
    assert plan_domain(plan, 'gamma.test')['gates']['enforce']['verdict'] == 'refused'
    assert plan_domain(plan, 'gamma.test')['status'] == 'failed'


def test_an_override_with_a_reason_goes_to_enforce_and_says_why(lab, inventory):
    reason = 'CAB-123: the MX certificate is replaced tonight, checked by hand'
    inventory.domain('gamma.test')['enforce_override'] = {'reason': reason}
    inventory.set_domains([item for item in inventory.domains if item['domain'] != 'uncov.test'])
    run = inventory.run('site.yml')
    assert run.returncode == 0, run
    assert sts_id(lab, 'gamma.test') == policy_id(policy('gamma.test', 'enforce', 604800))
    shown = task_results(run, 'Show each enforce override and its reason')
    assert any(reason in result.get('msg', '') for result in shown[-1]['results']), shown
    entry = plan_domain(inventory.plan(), 'gamma.test')
    assert entry['overrides'] == [{'gate': 'enforce', 'reason': reason}]
    assert entry['gates']['enforce']['verdict'] == 'override'


def test_mx_changes_in_enforce_mode_widen_first_and_never_strand_a_live_mx(lab, inventory):
    gamma = inventory.domain('gamma.test')
    # Kept as text, with LF line ends and an extension: a refused change must hold these exact bytes, not a rebuild.
    widened = ('version: STSv1\nmode: enforce\nmx: mx1.gamma.test\nmx: mx2.gamma.test\nmax_age: 604800\n'
               'x-rollout-ticket: cab-123\n')
    gamma['policy'] = widened
    inventory.write()
    run = inventory.run('site.yml')
    assert run.returncode == 0, run
    assert sts_id(lab, 'gamma.test') == policy_id(widened)
    said = task_results(run, 'Show each MX change and when the MX may move (RFC 8461 section 8)')[-1]['results']
    assert [result['msg'].split(':')[:2] for result in said] == [['gamma.test', ' widen']], said
    assert 'may move' in said[0]['msg'], said
    # Dropping the pattern its live MX host still uses is refused; gamma.test keeps the widened policy.
    gamma['policy'] = policy('gamma.test', 'enforce', 604800, mx=['mx2.gamma.test'])
    inventory.write()
    try:
        run = inventory.run('site.yml')
    finally:
        gamma['policy'] = widened
        inventory.write()
    assert run.returncode != 0, run
    failure = task_results(run, 'Fail, naming each domain that was held back and why (the others are converged)')[-1]['msg']
    assert 'gamma.test: MX change refused' in failure and 'live MX mx1.gamma.test still uses mx1.gamma.test' in failure, failure
    assert sts_id(lab, 'gamma.test') == policy_id(widened)
    assert served(lab, 'gamma.test').body.decode() == widened


def test_enforce_is_refused_when_the_reports_are_a_source_and_give_no_evidence(lab, inventory):
    alpha = inventory.domain('alpha.test')
    live_policy, live_id = alpha['policy'], sts_id(lab, 'alpha.test')
    alpha['policy'] = policy('alpha.test', 'enforce', 604800)
    os.makedirs(inventory.path('reports'), exist_ok=True)
    inventory.extra = {'mta_sts_tlsrpt_source': {'paths': [inventory.path('reports')]}}
    inventory.write()
    try:
        run = inventory.run('site.yml')
    finally:
        alpha['policy'] = live_policy
        inventory.extra = {}
        inventory.write()
    assert run.returncode != 0, run
    failure = task_results(run, 'Fail, naming each domain that was held back and why (the others are converged)')[-1]['msg']
    assert 'alpha.test: enforce gate refused' in failure, failure
    checks = plan_domain(inventory.plan(), 'alpha.test')['gates']['enforce']['checks']
    assert [check['passed'] for check in checks if check['check'] == 'tlsrpt'] == [False], checks
    # Its MX host is good: only the missing report evidence held it back, and it keeps what is live.
    assert all(check['passed'] for check in checks if check['check'] != 'tlsrpt'), checks
    assert sts_id(lab, 'alpha.test') == live_id
    assert served(lab, 'alpha.test').body.decode() == render(live_policy)


def test_bad_inventory_fails_before_any_change_naming_domain_and_field(lab, inventory):
    serial = lab.knot.query('alpha.test.', 'SOA')
    original = copy.deepcopy(inventory.domains)
    bad = copy.deepcopy(original)
    bad[1] = dict(bad[1], policy={'mode': 'enforced', 'mx': ['mx1.beta.test'], 'max_age': 604800})
    bad[2] = dict(bad[2], rua='ftp://x')
    inventory.set_domains(bad)
    try:
        run = inventory.run('site.yml')
    finally:
        inventory.set_domains(original)
    assert run.returncode != 0
    failed = [result for result in run.results if result['_status'] == 'failed' and not result.get('ignore_errors')]
    message = failed[-1]['msg']
    assert "mta_sts_domains[1] (beta.test).policy.mode 'enforced': must be one of" in message, message
    assert "mta_sts_domains[2] (%s).rua 'ftp://x'" % bad[2]['domain'] in message, message
    assert [result for result in run.results if result['_task'].startswith('Look at the selected')] == []
    assert lab.knot.query('alpha.test.', 'SOA') == serial


# --- drift.yml, on what site.yml converged ---

def report_files(inventory):
    names = ('drift.json', 'drift.junit.xml', 'drift.md')
    texts = {}
    for name in names:
        with open(inventory.path('out', 'drift', name)) as handle:
            texts[name] = handle.read()
    return texts


def test_drift_is_clean_on_a_converged_inventory(lab, inventory):
    # gamma.test went to enforce by override with a bad MX certificate: drift would (rightly) flag it.
    inventory.set_domains([item for item in inventory.domains if item['domain'] != 'gamma.test'])
    run = inventory.run('drift.yml')
    assert run.returncode == 0, run
    texts = report_files(inventory)
    report = json.loads(texts['drift.json'])
    assert report['passed'] is True, report
    assert sorted(domain['domain'] for domain in report['domains']) == ['alpha.test', 'beta.test', 'cust.test', 'stale.test']
    assert texts['drift.junit.xml'].count('<testcase') == 4 * 5 and '<failure' not in texts['drift.junit.xml']
    assert '| alpha.test |' in texts['drift.md'].replace('`', '')
    # The short table is printed.
    assert 'alpha.test' in task_results(run, 'Show the short table')[-1]['msg'][1]
    for text in list(texts.values()) + [run.output]:
        assert lab.tsig_secret not in text


def test_drift_fails_on_a_record_changed_behind_its_back(lab, inventory):
    live = '"v=STSv1; id=%s;"' % sts_id(lab, 'alpha.test')
    lab.knot.remove_records('alpha.test', '_mta-sts.alpha.test. 300 IN TXT %s' % live)
    lab.knot.add_records('alpha.test', '_mta-sts.alpha.test. 300 IN TXT "v=STSv1; id=edited1;"')
    try:
        run = inventory.run('drift.yml')
    finally:
        lab.knot.remove_records('alpha.test', '_mta-sts.alpha.test. 300 IN TXT "v=STSv1; id=edited1;"')
        lab.knot.add_records('alpha.test', '_mta-sts.alpha.test. 300 IN TXT %s' % live)
    assert run.returncode == 2, run
    failure = task_results(run, 'Fail on any drift, invalid domain or certificate near expiry')[-1]['msg']
    assert 'alpha.test' in failure and 'beta.test' not in failure, failure
    texts = report_files(inventory)
    report = json.loads(texts['drift.json'])
    assert [domain['domain'] for domain in report['domains'] if not domain['passed']] == ['alpha.test']
    assert 'classname="alpha.test"' in texts['drift.junit.xml'] and '<failure' in texts['drift.junit.xml']
    for text in list(texts.values()) + [run.output]:
        assert lab.tsig_secret not in text


# --- retire.yml ---

def test_retire_publishes_mode_none_then_waits(lab, inventory):
    alpha_id = sts_id(lab, 'alpha.test')
    inventory.domain('beta.test')['state'] = 'absent'
    inventory.write()
    run = inventory.run('retire.yml')
    assert run.returncode == 0, run
    none_policy = {'mode': 'none', 'max_age': 86400, 'mx': ['mx1.beta.test']}
    assert sts_id(lab, 'beta.test') == policy_id(none_policy)
    assert served(lab, 'beta.test').body.decode() == render(none_policy)
    assert sts_id(lab, 'alpha.test') == alpha_id
    history = inventory.state()['domains']['beta.test']['history']
    assert [entry['mode'] for entry in history] == ['enforce', 'none']
    said = task_results(run, 'Say where each retirement stands')[-1]['results'][0]['msg']
    assert said.startswith('beta.test: waiting:') and 'may be deleted after' in said, said
    # Again: nothing to do but wait, and nothing changes.
    run = inventory.run('retire.yml')
    assert run.returncode == 0, run
    assert changed_tasks(run) == []
    assert sts_id(lab, 'beta.test') == policy_id(none_policy)


def test_retire_deletes_once_the_old_max_age_has_passed(lab, inventory):
    state = inventory.state()
    history = state['domains']['beta.test']['history']
    # The enforce policy (max_age a week) was replaced by none eight days ago.
    history[0]['live_since'] = '2020-01-01T00:00:00Z'
    history[1]['live_since'] = '2020-01-02T00:00:00Z'
    inventory.write_state(state)
    run = inventory.run('retire.yml')
    assert run.returncode == 0, run
    assert sts_id(lab, 'beta.test') is None
    assert lab.knot.query('mta-sts.beta.test.', 'A') == []
    with pytest.raises(ssl.SSLError):
        served(lab, 'beta.test')
    said = task_results(run, 'Say what is left to do by hand')[-1]['results'][0]['msg']
    assert said.startswith('beta.test is retired'), said
    # The other domains are as they were.
    assert sts_id(lab, 'alpha.test') == policy_id(inventory.domain('alpha.test')['policy'])
