"""tlsa_record and the tlsa_data filter through real ansible-playbook runs, on the zonefile provider.

Records are read back from the zone file with dnspython and writes counted on disk (the file replaced), never
taken from what the module reports; the expected record data comes from ``openssl``.
"""

import hashlib
import itertools
import subprocess

import pytest

from tests.integration.backends import ZonefileBackend
from tests.integration.playbook import run_playbook
from tests.lab.pki import LabCA, self_signed

MODULE = 'mailsec.mta_sts.tlsa_record'
_hosts = itertools.count(1)
# Nothing listens here: a probe of it fails at once (connection refused).
NO_MX = '127.0.9.99'


def openssl(args, data):
    return subprocess.run(['openssl'] + args, input=data, check=True, capture_output=True).stdout


def spki_sha256(cert_pem):
    return hashlib.sha256(openssl(['pkey', '-pubin', '-outform', 'DER'],
                                  openssl(['x509', '-noout', '-pubkey'], cert_pem))).hexdigest()


@pytest.fixture(scope='module')
def zones(tmp_path_factory):
    return ZonefileBackend(str(tmp_path_factory.mktemp('tlsa-zones')))


@pytest.fixture(scope='module')
def certs():
    return dict((name, self_signed(['mx.alpha.example'], key_type=key_type))
                for name, key_type in (('a', 'ec'), ('b', 'rsa')))


@pytest.fixture
def host():
    return 'mx%d.alpha.example' % next(_hosts)


def task(zones, **options):
    args = zones.module_args()
    args.update(options)
    return {'name': 'under test', MODULE: args}


def tlsa(zones, name):
    """The TLSA records at ``name``, read by dnspython, as "u s m hex"."""
    return sorted(' '.join(text.split()[:3]) + ' ' + ''.join(text.split()[3:]).lower()
                  for text in zones.records(name, 'TLSA'))


def test_current_and_next_are_published_once_and_a_rerun_writes_nothing(zones, certs, host):
    name = '_25._tcp.' + host
    zones.seed_record(name, 'TXT', '"v=TLSRPTv1-ish; not ours"')
    a, b = '3 1 1 ' + spki_sha256(certs['a'][0]), '3 1 1 ' + spki_sha256(certs['b'][0])
    public_b = openssl(['x509', '-noout', '-pubkey'], certs['b'][0]).decode()
    publish = [task(zones, hosts=[host, {'host': host.replace('mx', 'smtp'), 'smtp_port': 2525}],
                    current=certs['a'][0].decode(), next=public_b, ttl=600)]
    zones.reset()
    first = run_playbook(publish, workdir=None)
    assert first.returncode == 0, first
    assert first.result['changed'] is True
    results = first.result['results']
    assert [(r['host'], r['name'], r['port']) for r in results] == [
        (host, name, 25), (host.replace('mx', 'smtp'), '_2525._tcp.' + host.replace('mx', 'smtp'), 2525)]
    assert results[0]['before'] == [] and sorted(results[0]['after']) == sorted([a, b])
    assert (results[0]['current'], results[0]['next']) == (a, b)
    assert tlsa(zones, name) == sorted([a, b])
    assert tlsa(zones, '_2525._tcp.' + host.replace('mx', 'smtp')) == sorted([a, b])
    assert zones.typed(name, 'TXT') == {'TXT': ['"v=TLSRPTv1-ish; not ours"']}
    assert zones.writes() == 1
    # A certificate is public, but current/next are no_log: a private key given by mistake never reaches a log.
    assert certs['a'][0].decode().splitlines()[1] not in first.output

    texts = zones.texts()
    zones.reset()
    again = run_playbook(publish)
    assert again.returncode == 0, again
    assert again.result['changed'] is False
    assert zones.writes() == 0 and zones.texts() == texts


def test_switch_in_check_and_diff_mode_then_absent_keeps_other_types(zones, certs, host):
    name = '_25._tcp.' + host
    a, b = '3 1 1 ' + spki_sha256(certs['a'][0]), '3 1 1 ' + spki_sha256(certs['b'][0])
    zones.seed_record(name, 'TLSA', a, ttl=3600)
    zones.seed_record(name, 'TLSA', b, ttl=3600)
    zones.seed_record(name, 'TXT', '"kept"')
    unchecked = {'enabled': False}
    switch = [task(zones, host=host, current=certs['b'][0].decode(), serving_check=unchecked)]

    zones.reset()
    planned = run_playbook(switch, check=True, diff=True)
    assert planned.returncode == 0, planned
    assert planned.result['changed'] is True and planned.result['after'] == [b]
    assert zones.writes() == 0 and tlsa(zones, name) == sorted([a, b])
    diff = planned.result['diff'][0]
    assert diff['before'] == '%s 3600 IN TLSA %s\n%s 3600 IN TLSA %s\n' % (name, a, name, b) or \
        diff['before'] == '%s 3600 IN TLSA %s\n%s 3600 IN TLSA %s\n' % (name, b, name, a)
    assert diff['after'] == '%s 3600 IN TLSA %s\n' % (name, b)
    assert '-%s 3600 IN TLSA %s' % (name, a) in planned.output
    assert any('serving_check.enabled is false' in text for text in planned.result['warnings'])

    applied = run_playbook(switch)
    assert applied.returncode == 0, applied
    assert tlsa(zones, name) == [b] and zones.typed(name, 'TXT') == {'TXT': ['"kept"']}

    zones.reset()
    removed = run_playbook([task(zones, host=host, state='absent', serving_check=unchecked)])
    assert removed.returncode == 0, removed
    assert removed.result['before'] == [b] and removed.result['after'] == []
    assert tlsa(zones, name) == [] and zones.typed(name, 'TXT') == {'TXT': ['"kept"']}
    assert zones.writes() == 1


def test_a_removal_the_mx_cannot_be_probed_for_is_refused_naming_the_override(zones, certs, host):
    name = '_25._tcp.' + host
    a, b = '3 1 1 ' + spki_sha256(certs['a'][0]), '3 1 1 ' + spki_sha256(certs['b'][0])
    zones.seed_record(name, 'TLSA', a)
    zones.seed_record(name, 'TLSA', b)
    texts = zones.texts()
    for check in (False, True):
        run = run_playbook([task(zones, host=host, current=certs['b'][0].decode(),
                                 serving_check={'address': NO_MX, 'timeout': 5})], check=check)
        assert run.returncode != 0, run
        assert run.result['conflict'] is True
        assert 'nothing was written' in run.result['msg'] and 'serving_check.enabled=false' in run.result['msg']
        serving = run.result['results'][0]['serving']
        assert serving['matched'] == [] and serving['error'], serving
    assert zones.texts() == texts
    # Adding a record removes nothing: no probe, no refusal.
    added = run_playbook([task(zones, host=host, records=[a, b, '3 1 1 ' + 'ab' * 32],
                               serving_check={'address': NO_MX})])
    assert added.returncode == 0, added
    assert 'serving' not in added.result['results'][0]


def test_a_cname_at_the_name_is_refused_and_nothing_written(zones, certs, host):
    name = '_25._tcp.' + host
    zones.seed_record(name, 'CNAME', 'tlsa.hoster.example.')
    zones.reset()
    # The provider options from module_defaults, through the dns action group.
    run = run_playbook([{'module_defaults': {'group/mailsec.mta_sts.dns': zones.module_args()},
                         MODULE: {'host': host, 'current': certs['a'][0].decode()}}])
    assert run.returncode != 0 and run.result['conflict'] is True
    assert '%s is a CNAME to tlsa.hoster.example' % name in run.result['msg']
    assert zones.writes() == 0


def test_bad_input_is_refused_before_any_write_naming_the_field(zones, certs, host):
    cert = certs['a'][0].decode()
    private = certs['a'][1].decode()
    cases = [
        (dict(host=host, current='-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'), 'current',
         'is not a valid X.509 certificate'),
        (dict(hosts=[host, {'host': 'mx.alpha.example', 'next': cert, 'usage': 1}], current=cert), 'hosts[1].usage',
         'unusable for SMTP (RFC 7672 section 3.1.3)'),
        (dict(host=host, current=cert, usage=0), 'usage', 'unusable for SMTP'),
        (dict(host=host, current=cert, selector=2), 'selector', 'must be one of 0 (Cert), 1 (SPKI)'),
        (dict(host=host, current=cert, matching_type=3), 'matching_type', 'must be one of 0 (Full)'),
        (dict(host='_25._tcp.' + host, current=cert), 'host', 'bad label'),
        (dict(host='mx_1.alpha.example', current=cert), 'host', 'bad label'),
        (dict(host=host, current=cert, smtp_port=70000), 'smtp_port', '1 to 65535'),
        (dict(host=host, records=['3 1 1 zz']), 'records[0]', 'must be hexadecimal'),
        (dict(host=host, state='present'), 'current', 'current, next or records is required'),
        (dict(host=host, current=cert, serving_check={'timeout': 0}), 'serving_check.timeout', 'more than 0'),
    ]
    tasks = [dict(task(zones, **options), ignore_errors=True) for options, _field, _rule in cases]
    zones.reset()
    run = run_playbook(tasks)
    assert len(run.results) == len(cases)
    for result, (options, field, rule) in zip(run.results, cases):
        assert result['_status'] == 'failed', (options, result)
        assert result['field'] == field, (field, result['msg'])
        assert rule in result['msg'], (rule, result['msg'])
    assert zones.writes() == 0

    # A private key given by mistake is refused and never echoed, not even at -vvv (which shows module arguments).
    refused = run_playbook([task(zones, host=host, next=cert + private)], verbosity=3)
    assert refused.returncode != 0
    assert refused.result['field'] == 'next' and 'never the private key' in refused.result['msg']
    for line in private.splitlines()[1:-1]:
        assert line not in refused.output
    assert zones.writes() == 0


def test_the_tlsa_data_filter_gives_what_the_module_publishes(zones, certs, host):
    ca = LabCA()
    chain, _key = ca.issue([host])
    tasks = [
        {'name': 'data', 'ansible.builtin.set_fact': {
            'default': "{{ chain | mailsec.mta_sts.tlsa_data }}",
            'ta': "{{ ca_pem | mailsec.mta_sts.tlsa_data(usage=2, selector=0, matching_type=2) }}"}},
        task(zones, host=host, records=['{{ default }}', '{{ ta }}']),
        {'name': 'usage 1', 'ansible.builtin.debug': {'msg': '{{ chain | mailsec.mta_sts.tlsa_data(usage=1) }}'},
         'ignore_errors': True},
        {'name': 'not PEM', 'ansible.builtin.debug': {'msg': '{{ "garbage" | mailsec.mta_sts.tlsa_data }}'},
         'ignore_errors': True},
    ]
    run = run_playbook(tasks, play_vars={'chain': chain.decode(), 'ca_pem': ca.chain_pem.decode()})
    facts = run.results[0]['ansible_facts']
    assert facts['default'] == '3 1 1 ' + spki_sha256(chain)
    assert facts['ta'] == '2 0 2 ' + hashlib.sha512(openssl(['x509', '-outform', 'DER'], ca.chain_pem)).hexdigest()
    assert run.results[1]['changed'] is True
    # 2 0 2 is published, with the warnings that say why it is fragile.
    warnings = ' '.join(run.results[1]['results'][0]['warnings'])
    assert "Let's Encrypt" in warnings and 'a renewal breaks the record' in warnings
    assert "Let's Encrypt" in run.output
    assert tlsa(zones, '_25._tcp.' + host) == sorted([facts['default'], facts['ta']])
    assert 'tlsa_data.usage 1: must be one of 2 (DANE-TA), 3 (DANE-EE)' in run.results[2]['msg']
    assert "tlsa_data input '<7 characters>': holds no PEM block" in run.results[3]['msg']
