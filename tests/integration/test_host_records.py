"""mta_sts_host_record through real ansible-playbook runs, against every provider.

Records are read back, and writes counted, at the server (Knot behind the counting
proxy, moto behind the fault proxy, the Cloudflare stand-in) or on disk, never taken
from what the module reports.
"""

import pytest

from tests.integration.playbook import run_playbook

HOST = 'mailsec.mta_sts.mta_sts_host_record'
ADDRESSES = ['127.0.0.10', '2001:DB8:0::10']


def task(backend, **options):
    args = backend.module_args()
    args.update(options)
    return {'name': 'under test', HOST: args}


def test_addresses_are_published_once_and_other_types_stay(backend, domain, workdir):
    name = 'mta-sts.' + domain
    backend.seed(name, ['site-verification=abc'], ttl=300)
    backend.seed_record(name, 'MX', '10 mx1.alpha.example.')
    others = backend.typed(name, 'TXT', 'MX')
    backend.reset()
    first = run_playbook([task(backend, domain=domain, addresses=ADDRESSES, ttl=600)], workdir=workdir)
    assert first.returncode == 0, first
    assert first.result['changed'] is True
    assert first.result['before'] == {'A': [], 'AAAA': [], 'CNAME': []}
    assert first.result['after'] == {'A': ['127.0.0.10'], 'AAAA': ['2001:db8::10'], 'CNAME': []}
    assert backend.typed(name, 'A', 'AAAA', 'CNAME') == {'A': ['127.0.0.10'], 'AAAA': ['2001:db8::10'], 'CNAME': []}
    assert backend.typed(name, 'TXT', 'MX') == others and others['MX']
    assert backend.writes() == 1

    backend.reset()
    again = run_playbook([task(backend, domain=domain, addresses=list(reversed(ADDRESSES)), ttl=600)], workdir=workdir)
    assert again.returncode == 0, again
    assert again.result['changed'] is False
    assert backend.writes() == 0

    # A CNAME may not sit beside the TXT and MX: refused, naming them, before any write.
    backend.reset()
    refused = run_playbook([task(backend, domain=domain, target='policy.hoster.example')], workdir=workdir)
    assert refused.returncode != 0
    assert refused.result['conflict'] is True
    assert 'a CNAME cannot share its name with other records' in refused.result['msg']
    assert '%s holds MX, TXT;' % name in refused.result['msg'], refused.result['msg']
    assert backend.writes() == 0
    assert backend.typed(name, 'A', 'AAAA', 'CNAME') == {'A': ['127.0.0.10'], 'AAAA': ['2001:db8::10'], 'CNAME': []}


def test_switch_to_cname_with_check_mode_and_diff(backend, domain, workdir):
    name = 'mta-sts.' + domain
    setup = run_playbook([task(backend, domain=domain, addresses=ADDRESSES)], workdir=workdir)
    assert setup.returncode == 0, setup
    switch = [task(backend, domains=[{'domain': domain, 'target': 'Policy.Hoster.Example.'}])]

    backend.reset()
    planned = run_playbook(switch, check=True, diff=True, workdir=workdir)
    assert planned.returncode == 0, planned
    assert planned.result['changed'] is True
    assert backend.writes() == 0
    assert backend.typed(name, 'A', 'AAAA', 'CNAME') == {'A': ['127.0.0.10'], 'AAAA': ['2001:db8::10'], 'CNAME': []}
    diff = planned.result['diff'][0]
    assert diff['before'] == '%s 3600 IN A 127.0.0.10\n%s 3600 IN AAAA 2001:db8::10\n' % (name, name)
    assert diff['after'] == '%s 3600 IN CNAME policy.hoster.example.\n' % name
    assert '-%s 3600 IN A 127.0.0.10' % name in planned.output and '+%s 3600 IN CNAME policy.hoster.example.' % name in planned.output

    backend.reset()
    applied = run_playbook(switch, workdir=workdir)
    assert applied.returncode == 0, applied
    result = applied.result['results'][0]
    assert (result['changed'], result['after']) == (True, {'A': [], 'AAAA': [], 'CNAME': ['policy.hoster.example']})
    assert backend.typed(name, 'A', 'AAAA', 'CNAME') == {'A': [], 'AAAA': [], 'CNAME': ['policy.hoster.example.']}
    assert backend.writes() == 1

    backend.reset()
    again = run_playbook(switch, workdir=workdir)
    assert again.returncode == 0 and again.result['changed'] is False, again
    assert backend.writes() == 0

    backend.reset()
    removed = run_playbook([task(backend, domain=domain, state='absent')], workdir=workdir)
    assert removed.returncode == 0 and removed.result['changed'] is True, removed
    assert backend.typed(name, 'A', 'AAAA', 'CNAME') == {'A': [], 'AAAA': [], 'CNAME': []}
    assert backend.writes() == 1


@pytest.mark.parametrize('options, field, rule', [
    (dict(addresses=['192.0.2.300']), 'addresses[0]', 'must be an IPv4 or IPv6 address'),
    (dict(domains=[{'domain': 'x.alpha.example', 'addresses': ['192.0.2.1', 'fe80::1::2']}]), 'domains[0].addresses[1]',
     'must be an IPv4 or IPv6 address'),
    (dict(addresses=['192.0.2.1'], target='policy.hoster.example'), None, 'mutually exclusive: addresses|target'),
    (dict(domains=[{'domain': 'x.alpha.example', 'addresses': ['192.0.2.1'], 'target': 'p.example'}]), 'domains[0].target',
     'give addresses or target, not both'),
    (dict(), 'addresses', 'addresses or target is required with state=present'),
    (dict(target='bad name.example'), 'target', 'must be a DNS name'),
])
def test_bad_input_fails_naming_the_field_before_any_io(rfc2136, domain, workdir, options, field, rule):
    if 'domains' not in options:
        options = dict(options, domain=domain)
    rfc2136.reset()
    run = run_playbook([task(rfc2136, **options)], workdir=workdir)
    assert run.returncode != 0
    assert rule in run.result['msg'], run.result['msg']
    if field is not None:
        assert run.result['field'] == field and run.result['msg'].startswith(field + ' '), run.result['msg']
    assert rfc2136.messages() == 0
