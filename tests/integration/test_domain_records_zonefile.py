"""domain_records through real ansible-playbook runs on the zonefile provider: a domain's four kinds in one run.

Records are read back from the zone files with dnspython and writes counted on disk (a file replaced: its inode,
mtime or size changed), never taken from what the module reports.
"""

import pytest

from tests.integration.backends import ZonefileBackend
from tests.integration.playbook import run_playbook

MODULE = 'mailsec.mta_sts.domain_records'
SPKI = '0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6'
NEXT_SPKI = 'a' * 64
# Nothing listens here: a probe of it fails at once (connection refused).
NO_MX = '127.0.9.99'


@pytest.fixture
def zones(tmp_path):
    return ZonefileBackend(str(tmp_path))


def task(zones, **options):
    args = zones.module_args()
    args.update(options)
    return {'name': 'under test', MODULE: args}


def whole_set(domain, record_id='abc1', spki=SPKI):
    """All four kinds of ``domain``, its MX host ``mx.<domain>``."""
    return {'domain': domain, 'sts': {'id': record_id}, 'host': {'addresses': ['192.0.2.10', '2001:db8::10']},
            'tlsa': [{'host': 'mx.' + domain, 'records': ['3 1 1 ' + spki]}]}


DOMAINS = [whole_set('one.alpha.example'), whole_set('two.alpha.example'), whole_set('three.beta.example')]


def published(zones, domain):
    return dict(sts=zones.strings('_mta-sts.' + domain), tlsrpt=zones.strings('_smtp._tls.' + domain),
                host=zones.typed('mta-sts.' + domain, 'A', 'AAAA'),
                tlsa=zones.typed('_25._tcp.mx.' + domain, 'TLSA')['TLSA'])


def test_three_domains_all_kinds_one_write_per_zone_and_a_rerun_writes_nothing(zones):
    # At the run's TTL: the zonefile provider leaves a kept value's own TTL line alone (a gap of its own).
    zones.seed('_smtp._tls.two.alpha.example', ['not a report address, kept'], ttl=600)
    publish = [task(zones, domains=DOMAINS, tlsrpt={'rua': ['mailto:tlsrpt@alpha.example']}, ttl=600)]
    first = run_playbook(publish)
    assert first.returncode == 0, first
    assert zones.writes() == 2     # one write per zone file, four kinds of two or one domains in each
    for domain in ('one.alpha.example', 'two.alpha.example', 'three.beta.example'):
        assert published(zones, domain) == dict(
            sts=[(b'v=STSv1; id=abc1;',)], tlsrpt=sorted([(b'v=TLSRPTv1; rua=mailto:tlsrpt@alpha.example',)]
                                                         + ([(b'not a report address, kept',)] if domain.startswith('two') else [])),
            host={'A': ['192.0.2.10'], 'AAAA': ['2001:db8::10']}, tlsa=['3 1 1 ' + SPKI])
        assert zones.ttl('_mta-sts.' + domain) == 600
    results = first.result['results']
    assert [(r['domain'], r['changed']) for r in results] == [
        ('one.alpha.example', True), ('two.alpha.example', True), ('three.beta.example', True)]
    assert results[0]['sts']['after'] == ['v=STSv1; id=abc1;'] and results[0]['tlsrpt']['rua'] == ['mailto:tlsrpt@alpha.example']
    assert results[2]['tlsa'][0]['name'] == '_25._tcp.mx.three.beta.example' and results[2]['host']['zone'] == 'beta.example'
    assert first.result['changed'] is True and first.result['api'] is None
    files = zones.texts()

    zones.reset()
    again = run_playbook(publish)
    assert again.returncode == 0, again
    assert again.result['changed'] is False and not any(r['changed'] for r in again.result['results'])
    assert zones.writes() == 0 and zones.texts() == files


def test_check_mode_predicts_and_shows_every_kinds_diff_and_writes_nothing(zones):
    assert run_playbook([task(zones, domains=DOMAINS[:1])]).returncode == 0
    zones.reset()
    files = zones.texts()
    change = [task(zones, domains=[dict(whole_set('one.alpha.example', record_id='abc2', spki=NEXT_SPKI),
                                        host={'state': 'absent'}, tlsrpt={'rua': 'mailto:r@alpha.example'})],
                   serving_check={'enabled': False})]
    checked = run_playbook(change, check=True, diff=True)
    assert checked.returncode == 0, checked
    assert checked.result['changed'] is True
    assert zones.writes() == 0 and zones.texts() == files
    diffs = checked.result['diff']
    afters = ''.join(diff['after'] for diff in diffs)
    befores = ''.join(diff['before'] for diff in diffs)
    assert '"v=STSv1; id=abc2;"' in afters and '"v=STSv1; id=abc1;"' in befores
    assert '"v=TLSRPTv1; rua=mailto:r@alpha.example"' in afters
    assert '192.0.2.10' in befores and '192.0.2.10' not in afters
    assert NEXT_SPKI in afters and SPKI in befores
    result = checked.result['results'][0]
    assert result['host']['after'] == {'A': [], 'AAAA': [], 'CNAME': []}

    # The TLSA change drops the served key's record: the MX is looked at first (here: nothing answers).
    change[0][MODULE]['serving_check'] = {'address': NO_MX}
    refused = run_playbook(change)
    assert refused.returncode != 0 and refused.result['conflict'] is True
    assert 'serving_check.enabled=false' in refused.result['msg'] and zones.writes() == 0

    change[0][MODULE]['serving_check'] = {'enabled': False}
    done = run_playbook(change)
    assert done.returncode == 0, done
    assert zones.writes() == 1
    assert published(zones, 'one.alpha.example') == dict(
        sts=[(b'v=STSv1; id=abc2;',)], tlsrpt=[(b'v=TLSRPTv1; rua=mailto:r@alpha.example',)],
        host={'A': [], 'AAAA': []}, tlsa=['3 1 1 ' + NEXT_SPKI])


@pytest.mark.parametrize('domains, field, words', [
    ([whole_set('one.alpha.example'), dict(whole_set('two.alpha.example'), tlsrpt={'rua': 'mailto:a@x.example,b@x.example'})],
     'domains[1].tlsrpt.rua', 'comma'),
    ([dict(whole_set('one.alpha.example'), tlsa=[{'host': 'mx.one.alpha.example', 'records': ['3 1 1 ' + SPKI]},
                                                 {'host': 'mx2.one.alpha.example', 'current': 'not a certificate'}])],
     'domains[0].tlsa[1].current', 'PEM'),
    ([dict(whole_set('one.alpha.example'), sts={'idd': 'abc1'})], 'domains[0].sts.idd', 'unknown key'),
    ([whole_set('one.alpha.example'), dict(whole_set('two.alpha.example'), tlsa=[{'host': 'mx.one.alpha.example', 'records': ['3 1 1 ' + SPKI]}])],
     'domains[1].tlsa[0]', 'managed by domains[0].tlsa[0] too'),
])
def test_bad_input_is_refused_naming_the_field_before_anything_is_read(zones, domains, field, words):
    failed = run_playbook([task(zones, domains=domains, tlsrpt={'rua': 'mailto:r@alpha.example'})])
    assert failed.returncode != 0
    assert failed.result['field'] == field and words in failed.result['msg'], failed.result
    assert zones.writes() == 0


def test_a_conflict_in_one_kind_of_one_domain_writes_nothing_in_any_zone(zones):
    zones.seed_cname('_smtp._tls.two.alpha.example', 'reports.hoster.example')
    failed = run_playbook([task(zones, domains=DOMAINS, tlsrpt={'rua': 'mailto:r@alpha.example'})])
    assert failed.returncode != 0
    assert failed.result['conflict'] is True
    assert '_smtp._tls.two.alpha.example is a CNAME to reports.hoster.example' in failed.result['msg']
    assert zones.writes() == 0
    assert published(zones, 'three.beta.example') == dict(sts=[], tlsrpt=[], host={'A': [], 'AAAA': []}, tlsa=[])


def test_removing_an_sts_record_looks_at_the_live_policy_and_a_kinds_own_state_and_ttl_win(zones):
    zones.seed('_mta-sts.one.alpha.example', ['v=STSv1; id=old1;'], ttl=3600)
    # Nothing answers DNS at NO_MX: the live policy cannot be confirmed to be mode none, which the run says.
    # The task's state is every kind's that gives none of its own.
    removed = run_playbook([task(zones, domains=[{'domain': 'one.alpha.example', 'sts': {},
                                                  'tlsrpt': {'rua': 'mailto:r@alpha.example', 'ttl': 120, 'state': 'present'}}],
                                 state='absent', policy_check={'nameservers': [NO_MX], 'timeout': 1})])
    assert removed.returncode == 0, removed
    assert any('removing _mta-sts.one.alpha.example, but the live policy could not be confirmed to be mode none' in text
               for text in removed.result['warnings']), removed.result.get('warnings')
    assert zones.strings('_mta-sts.one.alpha.example') == [] and zones.writes() == 1
    assert zones.ttl('_smtp._tls.one.alpha.example') == 120
    assert removed.result['results'][0]['sts']['before'] == ['v=STSv1; id=old1;']
