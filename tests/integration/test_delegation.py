"""Delegation to a hosting provider (RFC 8461 section 8.2) through real ansible-playbook runs.

The customer's zone is alpha.example, the hoster's beta.example (the lab zones).
The customer side publishes two CNAMEs (mta_sts_record with delegate_to, mta_sts_host_record
with target), the hoster side the TXT record at record_name and its policy host's address;
the validate lookup then follows the CNAMEs through Knot to the policy nginx serves.
"""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from tests.integration.playbook import run_playbook

STS = 'mailsec.mta_sts.mta_sts_record'
HOST = 'mailsec.mta_sts.mta_sts_host_record'
HOSTER = 'beta.example'
POLICY = {'mode': 'enforce', 'mx': ['mx1.beta.example'], 'max_age': 604800}


def task(backend, module, **options):
    args = backend.module_args()
    args.update(options)
    return {module: args}


def hoster_name(customer):
    return '%s._mta-sts.%s' % (customer, HOSTER)


def customer_tasks(backend, customer):
    return [task(backend, STS, domain=customer, delegate_to=hoster_name(customer)),
            task(backend, HOST, domain=customer, target='mta-sts.' + HOSTER)]


def hoster_tasks(backend, customer):
    return [task(backend, STS, domain=customer, record_name=hoster_name(customer), policy=POLICY),
            task(backend, HOST, domain=HOSTER, addresses=['127.0.0.1'])]


@pytest.fixture(params=['rfc2136', 'cloudflare'])
def provider(request):
    return request.getfixturevalue(request.param)


def test_both_sides_publish_once_and_a_managed_txt_goes_with_the_delegation(provider, domain, workdir):
    sts_name = '_mta-sts.' + domain
    provider.seed(sts_name, ['v=STSv1; id=before1;'])
    hoster_host_published = provider.typed('mta-sts.' + HOSTER, 'A')['A'] == ['127.0.0.1']
    provider.reset()
    run = run_playbook(customer_tasks(provider, domain) + hoster_tasks(provider, domain), diff=True, workdir=workdir)
    assert run.returncode == 0, run
    delegated, host, record, _hoster_host = run.results
    assert delegated['changed'] and delegated['results'][0]['delegated_to'] == hoster_name(domain)
    assert delegated['results'][0]['cname'] == {'before': [], 'after': [hoster_name(domain)]}
    assert delegated['results'][0]['before'] == ['v=STSv1; id=before1;'] and delegated['results'][0]['after'] == []
    assert '+%s.' % hoster_name(domain) in run.output and '-"v=STSv1; id=before1;"' in run.output
    assert record['results'][0]['record_name'] == hoster_name(domain) and record['zone'] == HOSTER
    assert host['after'] == {'A': [], 'AAAA': [], 'CNAME': ['mta-sts.beta.example']}
    assert provider.typed(sts_name, 'CNAME', 'TXT') == {'CNAME': [hoster_name(domain) + '.'], 'TXT': []}
    assert provider.typed('mta-sts.' + domain, 'CNAME') == {'CNAME': ['mta-sts.beta.example.']}
    assert provider.typed(hoster_name(domain), 'TXT') == {'TXT': ['"v=STSv1; id=%s;"' % policy_id(render_policy(POLICY))]}
    # One write per task that changed something: the customer's CNAMEs (2), the hoster's TXT (1) and, unless an
    # earlier test published it, the hoster's policy host address (1).
    assert provider.writes() == (3 if hoster_host_published else 4)

    provider.reset()
    again = run_playbook(customer_tasks(provider, domain) + hoster_tasks(provider, domain), workdir=workdir)
    assert again.returncode == 0, again
    assert [result['changed'] for result in again.results] == [False] * 4
    assert provider.writes() == 0


def test_refusals_write_nothing(provider, domain, workdir):
    sts_name = '_mta-sts.' + domain
    provider.seed_cname(sts_name, hoster_name(domain))
    provider.reset()
    # Not delegated in the task: the CNAME stays someone else's, as before.
    plain = run_playbook([task(provider, STS, domain=domain, id='abc1')], workdir=workdir)
    assert plain.returncode != 0 and plain.result['conflict'] is True
    assert plain.result['msg'].startswith('%s is a CNAME to %s (delegated' % (sts_name, hoster_name(domain)))
    # Absent with another target leaves the CNAME alone; with its own target removes it.
    other = run_playbook([task(provider, STS, domain=domain, delegate_to='elsewhere.beta.example', state='absent')],
                         workdir=workdir)
    assert other.returncode == 0 and other.result['changed'] is False, other
    assert provider.writes() == 0

    blocked = 'blocked-' + domain
    provider.seed('_mta-sts.' + blocked, ['v=STSv1; id=x1;', 'google-site-verification=abc'])
    provider.reset()
    refused = run_playbook([task(provider, STS, domains=[{'domain': blocked, 'delegate_to': hoster_name(blocked)}])],
                           workdir=workdir)
    assert refused.returncode != 0 and refused.result['conflict'] is True
    assert 'holds TXT "google-site-verification=abc" that is not a v=STSv1 record' in refused.result['msg'], refused.result['msg']
    assert provider.writes() == 0
    assert sorted(b''.join(value).decode() for value in provider.strings('_mta-sts.' + blocked)) == [
        'google-site-verification=abc', 'v=STSv1; id=x1;']

    provider.reset()
    undone = run_playbook([task(provider, STS, domain=domain, delegate_to=hoster_name(domain), state='absent')],
                          workdir=workdir)
    assert undone.returncode == 0 and undone.result['changed'] is True, undone
    assert provider.typed(sts_name, 'CNAME') == {'CNAME': []}
    assert provider.writes() == 1


def test_validate_follows_both_cnames_to_the_hoster(rfc2136, knot, policy_web, domain, workdir):
    # The hoster's one policy host serves every customer's policy under the customer's name.
    policy_web.serve('mta-sts.' + domain, render_policy(POLICY))
    policy_web.apply()
    knot.add_records('alpha.example', ['%s. 300 IN MX 10 mx1.beta.example.' % domain])
    check = {'set_fact': {'checked': "{{ lookup('mailsec.mta_sts.validate', domain, expect={'policy': policy}, "
                                     "nameservers=nameservers, ca_path=ca_path, timeout=5) }}"},
             'vars': {'domain': domain, 'policy': POLICY, 'nameservers': ['%s:%d' % (knot.address, knot.port)],
                      'ca_path': policy_web.ca_path}}
    run = run_playbook(hoster_tasks(rfc2136, domain) + customer_tasks(rfc2136, domain) + [check], workdir=workdir)
    assert run.returncode == 0, run
    checked = run.result['ansible_facts']['checked']
    findings = [finding['code'] for finding in checked['findings']]
    assert checked['valid'] is True and checked['in_sync'] is True, checked['findings']
    assert checked['id'] == policy_id(render_policy(POLICY))
    assert 'sts-record-cname' in findings
