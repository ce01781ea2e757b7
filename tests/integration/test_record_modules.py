"""The record modules through real ansible-playbook runs, against every provider.

Writes are counted at the server (the counting DNS proxy in front of Knot) or on
disk (zone file replaced), never taken from what the module reports.
"""

import os

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from tests.integration.playbook import run_playbook

STS = 'mailsec.mta_sts.mta_sts_record'
TLSRPT = 'mailsec.mta_sts.tlsrpt_record'


def task(backend, module, **options):
    args = backend.module_args()
    args.update(options)
    return {'name': 'under test', module: args}


def joined(backend, name):
    return sorted(b''.join(value).decode() for value in backend.strings(name))


def assert_no_change_and_no_write(backend, tasks, workdir):
    """Run ``tasks`` again: nothing may change and the provider must receive no write."""
    backend.reset()
    run = run_playbook(tasks, workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['changed'] is False, run
    assert backend.writes() == 0


def test_create_then_second_run_sends_no_write(backend, domain, workdir):
    name = '_mta-sts.' + domain
    backend.reset()
    first = run_playbook([task(backend, STS, domain=domain, id='abc123')], workdir=workdir)
    assert first.returncode == 0, first
    assert first.result['changed'] is True
    assert first.result['after'] == ['v=STSv1; id=abc123;']
    assert first.result['before'] == []
    assert first.result['zone'] == 'alpha.example'
    assert joined(backend, name) == ['v=STSv1; id=abc123;']
    assert backend.writes() == 1

    assert_no_change_and_no_write(backend, [task(backend, STS, domain=domain, id='abc123')], workdir)


def test_check_mode_changes_nothing_and_diff_shows_the_change(backend, domain, workdir):
    name = '_mta-sts.' + domain
    backend.seed(name, ['v=STSv1; id=old1;'], ttl=3600)
    backend.reset()
    run = run_playbook([task(backend, STS, domain=domain, id='new2')], check=True, diff=True, workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['changed'] is True
    assert joined(backend, name) == ['v=STSv1; id=old1;']
    assert backend.writes() == 0
    diff = run.result['diff'][0]
    assert '"v=STSv1; id=old1;"' in diff['before'] and 'new2' not in diff['before']
    assert '"v=STSv1; id=new2;"' in diff['after'] and 'old1' not in diff['after']
    assert '-"v=STSv1; id=old1;"' in run.output and '+"v=STSv1; id=new2;"' in run.output


def test_unrelated_txt_kept_and_duplicates_collapsed(backend, domain, workdir):
    name = '_mta-sts.' + domain
    backend.seed(name, ['v=STSv1; id=one;', 'unrelated note', 'v=STSv1; id=two;'], ttl=3600)
    run = run_playbook([task(backend, STS, domain=domain, id='three')], workdir=workdir)
    assert run.returncode == 0, run
    assert sorted(run.result['before']) == ['v=STSv1; id=one;', 'v=STSv1; id=two;']
    assert joined(backend, name) == ['unrelated note', 'v=STSv1; id=three;']


def test_absent_removes_only_the_managed_record(backend, domain, workdir):
    name = '_mta-sts.' + domain
    backend.seed(name, ['v=STSv1; id=gone;', 'keep me'], ttl=3600)
    run = run_playbook([task(backend, STS, domain=domain, state='absent')], workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['changed'] is True and run.result['after'] == []
    assert joined(backend, name) == ['keep me']
    assert_no_change_and_no_write(backend, [task(backend, STS, domain=domain, state='absent')], workdir)


def test_equivalent_spelling_is_left_alone(backend, domain, workdir):
    name = '_mta-sts.' + domain
    backend.seed(name, ['v=STSv1;id=same'], ttl=3600)
    assert_no_change_and_no_write(backend, [task(backend, STS, domain=domain, id='same')], workdir)


def test_ttl_change_is_a_change(backend, domain, workdir):
    name = '_mta-sts.' + domain
    first = run_playbook([task(backend, STS, domain=domain, id='ttl1', ttl=3600)], workdir=workdir)
    assert first.returncode == 0, first
    run = run_playbook([task(backend, STS, domain=domain, id='ttl1', ttl=600)], workdir=workdir)
    assert run.result['changed'] is True, run
    assert backend.ttl(name) == 600
    assert_no_change_and_no_write(backend, [task(backend, STS, domain=domain, id='ttl1', ttl=600)], workdir)


def test_policy_dict_derives_the_id_the_filter_gives(backend, domain, workdir):
    policy = {'mode': 'testing', 'mx': ['mx1.alpha.example', '*.backup.alpha.example'], 'max_age': 86400}
    run = run_playbook([
        {'set_fact': {'expected_id': '{{ policy | mailsec.mta_sts.policy_id }}'}, 'vars': {'policy': policy}},
        task(backend, STS, domain=domain, policy=policy),
    ], workdir=workdir)
    assert run.returncode == 0, run
    expected = run.results[0]['ansible_facts']['expected_id']
    assert len(expected) == 32
    assert run.result['id'] == expected
    assert joined(backend, '_mta-sts.' + domain) == ['v=STSv1; id=%s;' % expected]


def test_tlsrpt_long_value_is_split_and_idempotent(backend, domain, workdir):
    name = '_smtp._tls.' + domain
    rua = ['mailto:tlsrpt-%02d@reports.alpha.example' % i for i in range(10)] + ['https://reports.alpha.example/tlsrpt']
    backend.seed(name, ['unrelated'], ttl=3600)
    run = run_playbook([task(backend, TLSRPT, domain=domain, rua=rua)], workdir=workdir)
    assert run.returncode == 0, run
    expected = 'v=TLSRPTv1; rua=' + ','.join(rua)
    assert len(expected) > 255
    assert run.result['after'] == [expected]
    stored = [value for value in backend.strings(name) if value != (b'unrelated',)]
    assert len(stored) == 1 and len(stored[0]) == 2 and all(len(part) <= 255 for part in stored[0])
    assert b''.join(stored[0]).decode() == expected
    assert_no_change_and_no_write(backend, [task(backend, TLSRPT, domain=domain, rua=rua)], workdir)


def test_cname_is_never_written_over(backend, domain, workdir):
    name = '_mta-sts.' + domain
    backend.seed_cname(name, '_mta-sts.provider.beta.example')
    backend.reset()
    run = run_playbook([task(backend, STS, domain=domain, id='abc')], workdir=workdir)
    assert run.returncode != 0
    assert 'is a CNAME to _mta-sts.provider.beta.example' in run.result['msg']
    assert run.result['conflict'] is True
    assert name in run.result['msg']
    assert backend.writes() == 0


def test_bulk_domains_one_write_per_zone(backend, workdir):
    domains = ['bulk%d.alpha.example' % i for i in range(5)] + ['bulk%d.beta.example' % i for i in range(5)]
    backend.seed('_mta-sts.bulk0.alpha.example', ['v=STSv1; id=old;'], ttl=3600)
    backend.seed('_mta-sts.bulk3.beta.example', ['v=STSv1; id=old;'], ttl=3600)
    items = domains[:-2] + [{'domain': domains[-2], 'id': 'own1'}, {'domain': domains[-1], 'state': 'absent'}]
    tasks = [task(backend, STS, domains=items, id='bulk1')]
    backend.reset()
    run = run_playbook(tasks, workdir=workdir)
    assert run.returncode == 0, run
    assert backend.writes() == 2
    by_domain = dict((result['domain'], result) for result in run.result['results'])
    assert by_domain['bulk3.beta.example']['after'] == ['v=STSv1; id=own1;']
    assert by_domain['bulk4.beta.example']['after'] == []
    for name in domains[:-2]:
        assert joined(backend, '_mta-sts.' + name) == ['v=STSv1; id=bulk1;']
    assert_no_change_and_no_write(backend, tasks, workdir)


@pytest.mark.parametrize('module, options, field, rule', [
    (STS, {'domain': 'exa mple.test', 'id': 'abc'}, 'domain', ''),
    (STS, {'domain': 'DOMAIN', 'id': 'test-123'}, 'id', 'letters or digits'),
    (STS, {'domain': 'DOMAIN', 'id': 'a' * 33}, 'id', '32'),
    (TLSRPT, {'domain': 'DOMAIN', 'rua': ['noscheme']}, 'rua', 'mailto: or https:'),
    (STS, {'domain': 'DOMAIN', 'policy': {'mode': 'enforce', 'mx': ['mx1.alpha.example'], 'max_age': 31557601}}, 'max_age', '31557600'),
    (STS, {'domain': 'DOMAIN', 'policy': {'mode': 'enforce', 'mx': ['*.*.example.com'], 'max_age': 86400}},
     "mx '*.*.example.com'", 'a wildcard may only be the whole left-most label'),
    (STS, {'domains': ['DOMAIN', {'domain': 'x.alpha.example', 'id': 'bad id'}], 'id': 'good'}, 'domains[1].id', ''),
    # Ansible's list handling would split these on the comma: refused whatever the shape, never split.
    (TLSRPT, {'domain': 'DOMAIN', 'rua': 'https://r.alpha.example/t?a=1,mailto:x@alpha.example'}, 'rua', 'a comma separates URIs'),
    (TLSRPT, {'domain': 'DOMAIN', 'rua': 'https://r.alpha.example/t?a=1,2'}, 'rua', 'percent-encode a comma inside a URI as %2C'),
    (TLSRPT, {'domain': 'DOMAIN', 'rua': ['mailto:x@alpha.example', 'https://r.alpha.example/t?a=1,2']}, 'rua',
     'give several URIs as a list'),
    (STS, {'domain': 'b\u00fccher_.alpha.example', 'id': 'abc'}, 'domain', 'IDNA 2008'),
    (STS, {'domain': 'DOMAIN', 'state': 'absent', 'policy_check': {'nameservers': ['ns1.alpha.example']}},
     'policy_check.nameservers', 'must be an IP address, ip:port or [ipv6]:port'),
])
def test_bad_input_fails_before_anything_is_sent(backend, domain, workdir, module, options, field, rule):
    options = dict((key, domain if value == 'DOMAIN' else value) for key, value in options.items())
    if 'domains' in options:
        options['domains'] = [domain if item == 'DOMAIN' else item for item in options['domains']]
    backend.reset()
    run = run_playbook([task(backend, module, **options)], workdir=workdir)
    assert run.returncode != 0
    assert run.result['msg'].startswith(field), run.result['msg']
    assert rule in run.result['msg']
    assert backend.messages() == 0
    assert backend.strings('_mta-sts.' + domain) == []


def test_rua_as_one_string_is_one_uri(backend, domain, workdir):
    run = run_playbook([task(backend, TLSRPT, domain=domain, rua='https://r.alpha.example/t?a=1%2C2')], workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['rua'] == ['https://r.alpha.example/t?a=1%2C2']
    assert joined(backend, '_smtp._tls.' + domain) == ['v=TLSRPTv1; rua=https://r.alpha.example/t?a=1%2C2']


def test_short_max_age_is_published_with_a_warning(backend, domain, workdir):
    policy = {'mode': 'enforce', 'mx': ['mx1.alpha.example'], 'max_age': 0}
    run = run_playbook([task(backend, STS, domain=domain, policy=policy)], workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['changed'] is True
    assert '[WARNING]: %s: max_age 0 is under a day (86400)' % domain in run.output


def test_u_label_domain_is_published_under_its_a_label(backend, workdir):
    given = 'b\u00fccher-%s.alpha.example' % backend.name
    a_label = 'xn--bcher-%s-' % backend.name
    tasks = [task(backend, STS, domain=given, id='idn1')]
    run = run_playbook(tasks, workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['domain'].startswith(a_label) and run.result['domain'].isascii()
    assert run.result['results'][0]['domain_unicode'] == given
    assert run.result['name'] == '_mta-sts.' + run.result['domain']
    assert joined(backend, run.result['name']) == ['v=STSv1; id=idn1;']
    assert_no_change_and_no_write(backend, tasks, workdir)


# --- the live policy, fetched from nginx (lab CA) at the address Knot gives: rfc2136 only ---

OLD_POLICY = {'mode': 'testing', 'mx': ['mx1.alpha.example'], 'max_age': 604800}
NEW_POLICY = {'mode': 'enforce', 'mx': ['mx1.alpha.example'], 'max_age': 604800}
NONE_POLICY = {'mode': 'none', 'max_age': 86400}


def serve(policy_web, knot, served):
    """Serve ``{domain: policy}`` at mta-sts.<domain> (None: the host has no address) and restart nginx."""
    for domain, policy in served.items():
        if policy is not None:
            knot.add_records('alpha.example', ['mta-sts.%s. 300 IN A 127.0.0.1' % domain])
            policy_web.serve('mta-sts.' + domain, render_policy(policy))
    policy_web.apply()


def live_task(rfc2136, knot, policy_web, **options):
    options['policy_check'] = {'nameservers': ['%s:%d' % (knot.address, knot.port)], 'ca_path': policy_web.ca_path}
    return task(rfc2136, STS, **options)


def test_removal_warns_unless_the_live_policy_is_mode_none(rfc2136, knot, policy_web, workdir):
    enforced, retired, unserved = ('live%d-%s.alpha.example' % (os.getpid(), kind) for kind in ('enforce', 'none', 'gone'))
    for name in (enforced, retired, unserved):
        rfc2136.seed('_mta-sts.' + name, ['v=STSv1; id=old1;'])
    serve(policy_web, knot, {enforced: NEW_POLICY, retired: NONE_POLICY, unserved: None})
    run = run_playbook([live_task(rfc2136, knot, policy_web, domains=[enforced, retired, unserved], state='absent')],
                       workdir=workdir)
    assert run.returncode == 0, run
    output = ' '.join(run.output.split())
    assert ('[WARNING]: %s: removing _mta-sts.%s while https://mta-sts.%s/.well-known/mta-sts.txt serves mode enforce '
            '(max_age 604800)' % (enforced, enforced, enforced)) in output
    assert 'RFC 8461 section 8.3: publish mode: none with a new id first' in output
    assert ('[WARNING]: %s: removing _mta-sts.%s, but the live policy could not be confirmed to be mode none '
            '(https://mta-sts.%s/.well-known/mta-sts.txt:' % (unserved, unserved, unserved)) in output
    assert 'removing _mta-sts.%s' % retired not in output
    for name in (enforced, retired, unserved):
        assert rfc2136.strings('_mta-sts.' + name) == []


def test_policy_check_disabled_asks_no_policy_host(rfc2136, knot, policy_web, workdir):
    name = 'live%d-off.alpha.example' % os.getpid()
    rfc2136.seed('_mta-sts.' + name, ['v=STSv1; id=%s;' % policy_id(OLD_POLICY)])
    serve(policy_web, knot, {name: OLD_POLICY})
    before = len(policy_web.requests())
    options = live_task(rfc2136, knot, policy_web, domain=name, policy=NEW_POLICY)
    options[STS]['policy_check']['enabled'] = False
    run = run_playbook([options], check=True, diff=True, workdir=workdir)
    assert run.returncode == 0 and run.result['changed'] is True, run
    assert ('-# policy behind id %s: not looked up (policy_check.enabled is false)' % policy_id(OLD_POLICY)) in run.output
    assert len(policy_web.requests()) == before
    options[STS].update(state='absent', policy=None)
    run = run_playbook([options], workdir=workdir)
    assert run.returncode == 0 and run.result['changed'] is True, run
    assert '[WARNING]' not in run.output
    assert len(policy_web.requests()) == before


def test_removal_of_nothing_asks_no_policy_host(rfc2136, knot, policy_web, workdir):
    name = 'live%d-empty.alpha.example' % os.getpid()
    serve(policy_web, knot, {name: NEW_POLICY})
    before = len(policy_web.requests())
    run = run_playbook([live_task(rfc2136, knot, policy_web, domain=name, state='absent')], workdir=workdir)
    assert run.returncode == 0 and run.result['changed'] is False, run
    assert '[WARNING]' not in run.output
    assert len(policy_web.requests()) == before


def test_check_diff_of_an_id_change_shows_the_policies(rfc2136, knot, policy_web, workdir):
    still_old, already_new = ('live%d-%s.alpha.example' % (os.getpid(), kind) for kind in ('old', 'new'))
    for name in (still_old, already_new):
        rfc2136.seed('_mta-sts.' + name, ['v=STSv1; id=%s;' % policy_id(OLD_POLICY)])
    serve(policy_web, knot, {still_old: OLD_POLICY, already_new: NEW_POLICY})
    rfc2136.reset()
    run = run_playbook([live_task(rfc2136, knot, policy_web, domains=[still_old, already_new], policy=NEW_POLICY)],
                       check=True, diff=True, workdir=workdir)
    assert run.returncode == 0, run
    assert rfc2136.writes() == 0
    by_domain = dict((result['domain'], result) for result in run.result['results'])
    assert by_domain[still_old]['previous_policy'] == render_policy(OLD_POLICY)
    assert 'previous_policy' not in by_domain[already_new]
    for result in by_domain.values():
        assert result['policy'] == render_policy(NEW_POLICY)
    old_id, new_id = policy_id(OLD_POLICY), policy_id(NEW_POLICY)
    assert '--- before: policy behind id %s' % old_id in run.output
    assert '+++ after: policy behind id %s' % new_id in run.output
    assert '-mode: testing\n+mode: enforce' in run.output
    assert ('-# policy behind id %s: not known (the policy host already serves the new policy, id %s)'
            % (old_id, new_id)) in run.output


def test_render_policy_warns_of_a_short_max_age_and_rstrip_false_keeps_the_served_bytes(workdir):
    """The filters' documented promises, through ansible-playbook: the warning, and lookup('file') with rstrip=false."""
    path = os.path.join(workdir, 'mta-sts.txt')
    with open(path, 'wb') as handle:
        handle.write(render_policy(NEW_POLICY).encode())
    run = run_playbook([
        {'set_fact': {'short': "{{ {'mode': 'enforce', 'mx': ['mx1.alpha.example'], 'max_age': 86400} | mailsec.mta_sts.render_policy }}",
                      'kept': "{{ lookup('ansible.builtin.file', '%s', rstrip=false) | mailsec.mta_sts.policy_id }}" % path,
                      'stripped': "{{ lookup('ansible.builtin.file', '%s') | mailsec.mta_sts.policy_id }}" % path}},
    ], workdir=workdir)
    assert run.returncode == 0, run
    assert '[WARNING]: render_policy: max_age 86400 is under a week (604800) in enforce mode' in run.output
    facts = run.result['ansible_facts']
    assert facts['kept'] == policy_id(render_policy(NEW_POLICY).encode())
    assert facts['stripped'] != facts['kept']
