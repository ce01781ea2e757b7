"""The validator against real servers: Knot for DNS, nginx for the policy, Postfix for STARTTLS."""

import time

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate
from tests.integration.playbook import run_playbook
from tests.integration.validation_lab import CASES, ValidationLab


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    lab = ValidationLab(str(tmp_path_factory.mktemp('validation')))
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope='module')
def results(lab):
    """Every case in one call, the way a drift check runs; MX probed."""
    found = validate(list(CASES), nameservers=lab.nameservers, ca_path=lab.ca_path, timeout=3, check_mx_tls=True, concurrency=8)
    return dict((result['domain'], result) for result in found)


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
])
def test_hostile_cases_give_the_documented_error(results, domain, code, valid):
    result = results[domain]
    assert code in codes(result, 'error'), result['findings']
    assert result['valid'] is valid


@pytest.mark.parametrize('domain, code, severity', [
    ('html.example', 'policy-content-type', 'warning'),
    ('split.example', 'sts-record-multistring', 'info'),
    ('cname.example', 'sts-record-cname', 'info'),
    ('testing.example', 'mx-certificate-invalid', 'warning'),
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
