"""The validator against real servers: Knot for DNS, nginx for the policy, Postfix for STARTTLS."""

import os
import re
import time

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate
from tests.integration.playbook import run_playbook
from tests.integration.validation_lab import CASES, DNS_FAULTS, MX_LISTENERS, ValidationLab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    lab = ValidationLab(str(tmp_path_factory.mktemp('validation')))
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope='module')
def real_run(lab, tmp_path_factory):
    """One ansible-playbook run, the way a drift check runs: policy_info over every case with the MX probed,
    mx_tls_info over every lab MX host (and one without an address), and the lookup."""
    options = {'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'timeout': 3}
    run = run_playbook([
        {'mailsec.mta_sts.policy_info': dict(options, domains=list(CASES) + list(DNS_FAULTS), check_mx_tls=True, concurrency=8)},
        {'mailsec.mta_sts.mx_tls_info': dict(options, hosts=sorted(MX_LISTENERS) + ['nowhere.good.example'])},
        {'set_fact': {'from_lookup': "{{ query('mailsec.mta_sts.validate', *domains, nameservers=nameservers, ca_path=ca_path, "
                                     "timeout=3, check_mx_tls=true) }}"},
         'vars': {'domains': ['good.example', 'expiring.example', 'refused.test'], 'nameservers': lab.nameservers,
                  'ca_path': lab.ca_path}},
    ], workdir=str(tmp_path_factory.mktemp('real-run')))
    assert run.returncode == 0, run
    return run


@pytest.fixture(scope='module')
def results(real_run):
    return dict((result['domain'], result) for result in real_run.results[0]['results'])


@pytest.fixture(scope='module')
def probed(real_run):
    return dict((result['host'], result) for result in real_run.results[1]['results'])


def codes(result, severity=None):
    return sorted(set(f['code'] for f in result['findings'] if severity is None or f['severity'] == severity))


def test_good_domain_is_valid_with_no_errors_or_warnings(results, lab):
    good = results['good.example']
    assert good['valid'] is True and good['mode'] == 'enforce'
    assert codes(good, 'error') == [] and codes(good, 'warning') == []
    assert good['policy']['mx'] == ['mx1.good.example']
    assert good['records']['tlsrpt'] == ['v=TLSRPTv1; rua=mailto:tlsrpt@good.example']
    mx = good['mx'][0]
    assert (mx['host'], mx['covered'], mx['starttls'], mx['certificate_valid']) == ('mx1.good.example', True, True, True)
    assert 'mx1.good.example' in mx['names']
    assert good['in_sync'] is None and good['drift'] == []


@pytest.mark.parametrize('domain, code, valid', [
    ('redirect.example', 'policy-redirect', False),
    ('notfound.example', 'policy-http-status', False),
    ('error.example', 'policy-http-status', False),
    ('big.example', 'policy-too-large', False),
    ('stall.example', 'policy-fetch-failed', False),
    ('wrongname.example', 'policy-certificate-invalid', False),
    ('expired.example', 'policy-certificate-invalid', False),
    ('untrusted.example', 'policy-certificate-invalid', False),
    ('twosts.example', 'sts-record-multiple', False),
    ('uncovered.example', 'mx-not-covered', True),
    ('wildcard.example', 'mx-not-covered', True),
    ('nostarttls.example', 'mx-starttls-missing', True),
    ('mxmismatch.example', 'mx-certificate-invalid', True),
    ('oldtls.example', 'mx-tls-failed', True),
    ('badsts.example', 'sts-record-invalid', False),
    ('badpolicy.example', 'policy-invalid', False),
    # Strict senders (postfix-mta-sts-resolver) drop these policies, so they are not applied.
    ('html.example', 'policy-content-type', False),
    ('charset.example', 'policy-charset-missing', False),
    ('tlsrptbad.example', 'tlsrpt-record-invalid', True),
    ('tlsrpttwo.example', 'tlsrpt-record-multiple', True),
    ('refused.test', 'sts-dns-error', False),
    ('refused.test', 'mx-lookup-failed', False),
    ('gone.good.example', 'mx-nxdomain', False),
])
def test_hostile_cases_give_the_documented_error(results, domain, code, valid):
    result = results[domain]
    assert code in codes(result, 'error'), result['findings']
    assert result['valid'] is valid


@pytest.mark.parametrize('domain, code, severity', [
    ('split.example', 'sts-record-multistring', 'info'),
    ('cname.example', 'sts-record-cname', 'info'),
    ('testing.example', 'mx-certificate-invalid', 'warning'),
    ('expiring.example', 'policy-certificate-expiring', 'warning'),
    ('expiring.example', 'mx-certificate-expiring', 'warning'),
    ('oneday.example', 'max-age-short-enforce', 'warning'),
    ('none.example', 'mode-none', 'info'),
    ('nullmx.example', 'mx-null', 'info'),
    ('nomx.example', 'mx-none', 'info'),
    ('testing.example', 'mode-testing', 'info'),
])
def test_working_but_worth_knowing(results, domain, code, severity):
    result = results[domain]
    assert result['valid'] is True, result['findings']
    assert code in codes(result, severity), result['findings']
    assert codes(result, 'error') == []


def test_redirect_names_where_it_points(results):
    message = [f['message'] for f in results['redirect.example']['findings'] if f['code'] == 'policy-redirect'][0]
    assert 'https://mta-sts.good.example/.well-known/mta-sts.txt' in message


def test_split_and_cname_records_are_read_as_senders_do(results):
    assert results['split.example']['id'] == 'split1'
    assert results['cname.example']['id'] == results['good.example']['id']


def test_stalling_body_ends_within_the_timeout(lab):
    started = time.monotonic()
    [result] = validate(['stall.example'], nameservers=lab.nameservers, ca_path=lab.ca_path, timeout=2)
    assert time.monotonic() - started < 2 + 3
    assert 'timeout' in [f['message'] for f in result['findings'] if f['code'] == 'policy-fetch-failed'][0].lower()


def test_drift_against_the_desired_policy(lab):
    policy = lab.policies['good.example']
    [same] = validate([{'domain': 'good.example', 'expect': {'policy': policy, 'rua': ['mailto:tlsrpt@good.example']}}],
                      nameservers=lab.nameservers, ca_path=lab.ca_path)
    assert same['in_sync'] is True and same['drift'] == []
    [moved] = validate(['good.example'], expect={'mode': 'testing', 'mx': ['mx1.good.example', 'mx2.good.example']},
                       nameservers=lab.nameservers, ca_path=lab.ca_path)
    assert moved['in_sync'] is False
    drift = dict((item['field'], item) for item in moved['drift'])
    assert drift['mode']['live'] == 'enforce' and drift['mode']['desired'] == 'testing'
    assert 'mx' in drift


def test_authoritative_asks_the_zones_own_server_on_port_53(lab):
    [cached] = validate(['auth.example'], nameservers=lab.nameservers, ca_path=lab.ca_path)
    [fresh] = validate(['auth.example'], nameservers=lab.nameservers, ca_path=lab.ca_path, authoritative=True)
    assert cached['id'] == 'stale1'
    assert fresh['id'] == 'fresh1'


def test_bad_options_fail_before_any_lookup(lab):
    with pytest.raises(ValidationError, match="terms\\[1\\] 'bad domain'"):
        validate(['good.example', 'bad domain'], nameservers=lab.nameservers)
    with pytest.raises(ValidationError, match='nameservers'):
        validate(['good.example'], nameservers=['ns1.example:53'])


def test_lookup_and_module_give_the_same_result(lab, workdir):
    options = {'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'timeout': 3}
    run = run_playbook([
        {'set_fact': {'from_lookup': "{{ query('mailsec.mta_sts.validate', 'good.example', 'redirect.example', "
                                     "nameservers=nameservers, ca_path=ca_path, timeout=3) }}"},
         'vars': {'nameservers': lab.nameservers, 'ca_path': lab.ca_path}},
        {'mailsec.mta_sts.policy_info': dict(options, domains=['good.example', 'redirect.example'])},
    ], workdir=workdir)
    assert run.returncode == 0, run
    from_lookup = run.results[0]['ansible_facts']['from_lookup']
    from_module = run.results[1]['results']
    assert [r['valid'] for r in from_lookup] == [True, False]
    assert from_lookup == from_module


# --- what a real run reports: every documented code, at the current time ---

def documented_codes():
    with open(os.path.join(REPO, 'docs', 'findings.md')) as doc:
        return set(re.findall(r'^### `([a-z0-9-]+)`$', doc.read(), re.MULTILINE))


def test_every_documented_code_is_reported_by_a_real_run(real_run):
    """Fails when a documented finding code can only appear in unit tests: each one must come out of
    ansible-playbook runs of policy_info, mx_tls_info and the lookup against the lab."""
    reported = set()
    for result in real_run.results[0]['results'] + real_run.results[1]['results'] + real_run.results[2]['ansible_facts']['from_lookup']:
        reported.update(finding['code'] for finding in result['findings'])
    # The dane-* codes need DNSSEC (a signing Knot, a validating unbound): tests/dane/test_check_dane.py reports each.
    documented = set(code for code in documented_codes() if not code.startswith('dane-'))
    assert len(documented) > 30
    assert sorted(documented - reported) == []
    assert sorted(reported - documented) == []


def test_expiring_certificates_are_judged_at_the_time_of_the_run(results, real_run):
    expiring = results['expiring.example']
    assert expiring['valid'] is True
    message = [f['message'] for f in expiring['findings'] if f['code'] == 'policy-certificate-expiring'][0]
    assert 'in 2.' in message or 'in 3.0 days' in message, message
    assert [f['severity'] for f in expiring['findings'] if f['code'] == 'mx-certificate-expiring'] == ['warning']
    assert not [f for f in results['good.example']['findings'] if 'expiring' in f['code']]
    lookup = dict((r['domain'], r) for r in real_run.results[2]['ansible_facts']['from_lookup'])
    assert 'policy-certificate-expiring' in codes(lookup['expiring.example'], 'warning')


def test_the_warning_window_changes_the_verdict(lab, workdir):
    options = {'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'timeout': 3, 'check_mx_tls': True}
    run = run_playbook([
        {'mailsec.mta_sts.policy_info': dict(options, domains=['expiring.example'], expiry_warning_days=2)},
        {'mailsec.mta_sts.policy_info': dict(options, domains=['expiring.example'], expiry_warning_days=30)},
        {'mailsec.mta_sts.policy_info': dict(options, domains=['expiring.example'], expiry_warning_days=-1)},
    ], workdir=workdir)
    narrow, wide = run.results[0]['results'][0], run.results[1]['results'][0]
    assert codes(narrow) == [], narrow['findings']
    assert codes(wide, 'warning') == ['mx-certificate-expiring', 'policy-certificate-expiring']
    assert run.results[2]['_status'] == 'failed'
    assert run.results[2]['msg'] == "expiry_warning_days -1: must be a whole number of days from 0 to 365"


def test_a_served_policy_that_no_record_announces_is_a_warning(results):
    unannounced = results['unannounced.example']
    # (its MX, 127.0.0.29, has no listener: mx-probe-failed is the other warning)
    assert codes(unannounced, 'warning') == ['mx-probe-failed', 'policy-unannounced']
    assert codes(unannounced, 'error') == [] and codes(unannounced, 'info') == ['sts-record-missing', 'tlsrpt-record-missing']
    assert unannounced['valid'] is False and unannounced['mode'] == 'enforce'


def test_max_age_zero_is_reported(results):
    assert 'max-age-short' in codes(results['maxage0.example'], 'warning')
    assert results['maxage0.example']['valid'] is True


def test_utf8_policy_with_its_charset_is_valid(results):
    ok = results['charsetok.example']
    assert ok['valid'] is True and codes(ok, 'error') == []
    assert ok['policy']['extensions'] == {'comment': u'caf\u00e9 cr\u00e8me'}


def test_named_mx_hosts_are_probed_as_under_enforce(probed):
    def found(host):
        return [(f['code'], f['severity']) for f in probed[host]['findings']]
    good = probed['mx1.good.example']
    assert found('mx1.good.example') == [] and good['certificate_valid'] is True and good['starttls'] is True
    assert good['addresses'] == ['127.0.0.21'] and good['tls_version'] in ('TLSv1.2', 'TLSv1.3')
    assert found('mx1.nostarttls.example') == [('mx-starttls-missing', 'error')]
    assert found('mx1.mxmismatch.example') == [('mx-certificate-invalid', 'error')]
    assert found('mx1.oldtls.example') == [('mx-tls-failed', 'error')]
    assert found('mx1.expiring.example') == [('mx-certificate-expiring', 'warning')]
    assert found('nowhere.good.example') == [('mx-probe-failed', 'warning')]
    assert list(probed) == sorted(MX_LISTENERS) + ['nowhere.good.example']


# --- the same inventory list drives the record modules and the validator ---

def test_record_module_items_are_the_expected_state(lab, workdir):
    domains = [
        {'domain': 'good.example', 'policy': lab.policies['good.example']},
        {'domain': 'testing.example', 'policy': lab.policies['testing.example'], 'state': 'present'},
        {'domain': 'gone.good.example', 'state': 'absent'},
        {'domain': 'split.example', 'id': 'other1'},
    ]
    options = {'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'timeout': 3}
    provider = {'provider': 'rfc2136', 'server': lab.knot.address, 'port': lab.knot.port, 'ttl': 300,
                'key_name': lab.knot.key_name, 'key_secret': lab.knot.key_secret}
    run = run_playbook([
        {'mailsec.mta_sts.policy_info': dict(options, domains=domains)},
        {'set_fact': {'from_lookup': "{{ query('mailsec.mta_sts.validate', *domains, nameservers=nameservers, ca_path=ca_path) }}"},
         'vars': {'domains': domains, 'nameservers': lab.nameservers, 'ca_path': lab.ca_path}},
        # The very list the record module takes.
        {'mailsec.mta_sts.mta_sts_record': dict(provider, domains=domains), 'check_mode': True},
        {'mailsec.mta_sts.policy_info': dict(options, domains=[{'domain': 'good.example', 'state': 'absent'}])},
    ], workdir=workdir)
    assert run.results[0]['_status'] == 'ok', run
    from_module = run.results[0]['results']
    assert from_module == run.results[1]['ansible_facts']['from_lookup']
    assert [r['in_sync'] for r in from_module] == [True, True, True, False]
    assert from_module[3]['drift'] == [{'field': 'id', 'desired': 'other1', 'live': 'split1'}]
    assert run.results[2]['_status'] == 'ok', run.results[2]
    # The record module agrees: only split.example would change.
    assert [r['changed'] for r in run.results[2]['results']] == [False, False, False, True]
    assert run.results[3]['results'][0]['drift'] == [{'field': 'state', 'desired': 'absent', 'live': 'present'}]


def test_the_same_domain_twice_is_refused_naming_the_term(lab, workdir):
    run = run_playbook([
        {'set_fact': {'twice': "{{ query('mailsec.mta_sts.validate', 'good.example', 'GOOD.EXAMPLE.', nameservers=ns) }}"},
         'vars': {'ns': lab.nameservers}, 'ignore_errors': True},
        {'mailsec.mta_sts.policy_info': {'domains': ['good.example', {'domain': 'Good.Example.'}], 'nameservers': lab.nameservers},
         'ignore_errors': True},
        {'mailsec.mta_sts.policy_info': {'domains': [{'domain': 'good.example', 'mode': 'sometimes'}], 'nameservers': lab.nameservers},
         'ignore_errors': True},
    ], workdir=workdir)
    assert "terms[1] 'GOOD.EXAMPLE.': is good.example again, already listed as terms[0]" in run.results[0]['msg']
    assert run.results[1]['msg'] == "domains[1] {'domain': 'Good.Example.'}: is good.example again, already listed as domains[0]"
    assert run.results[2]['msg'] == "domains[0].mode 'sometimes': must be one of enforce, testing, none"


def test_module_defaults_of_the_validate_group(lab, workdir):
    run = run_playbook([{
        'module_defaults': {'group/mailsec.mta_sts.validate': {'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'timeout': 3}},
        'block': [
            {'mailsec.mta_sts.policy_info': {'domains': ['good.example']}},
            {'mailsec.mta_sts.mx_tls_info': {'hosts': ['mx1.good.example']}},
        ],
    }], workdir=workdir)
    assert run.returncode == 0, run
    assert run.results[0]['results'][0]['valid'] is True
    assert run.results[1]['results'][0]['certificate_valid'] is True
