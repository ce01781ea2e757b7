"""The drift check's reports (_drift_report and the drift_report / drift_failures filters), from real validator results."""

import json
import re
import xml.etree.ElementTree as ET

import pytest

from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _drift_report
from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import evaluate
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import FINDINGS
from tests.unit.plugins.module_utils.test_checks import (
    NOW, POLICY_DICT, POLICY_ID, RUA, certificate, failed_fetch, fetch, make_facts, mx, no_sts, no_tlsrpt, probe, sts,
)

SECRET = 'S3CR3T-tsig-key-never-in-a-report'
EXPECT = {'policy': POLICY_DICT, 'rua': [RUA]}


def result(domain='example.com', expect='default', **facts):
    return evaluate(dict(make_facts(**facts), domain=domain), EXPECT if expect == 'default' else expect, NOW)


def fleet():
    """Four domains as the lookup returns them: clean; drifted with a broken fetch; an MX certificate near expiry; no policy."""
    clean = result('clean.example')
    drifted = result('drifted.example', sts_txt=sts('v=STSv1; id=old1;'),
                     policy_fetch=failed_fetch('connect', 'mta-sts.drifted.example:443: refused | closed\nagain <b>&</b>'))
    expiring = result('expiring.example', probes={'mx1.example.com': probe('mx1.example.com', cert=certificate(
        ['mx1.example.com'], not_after='2026-06-06T12:00:00Z'))}, mx_lookup=mx('mx1.example.com'))
    nothing = result('nothing.example', expect=None, sts_txt=no_sts(), tlsrpt_txt=no_tlsrpt(), policy_fetch=failed_fetch('dns', 'no address'))
    return [clean, drifted, expiring, nothing]


def report(results=None, **options):
    return _drift_report.build_report(fleet() if results is None else results, NOW, **options)


def by_domain(built):
    return dict((domain['domain'], domain) for domain in built['domains'])


def checks(domain):
    return dict((check['check'], check) for check in domain['checks'])


def test_every_finding_code_belongs_to_a_check():
    assert set(_drift_report.check_of(code) for code in FINDINGS) == {'record', 'policy', 'mx', 'certificates'}
    assert [_drift_report.check_of(code) for code in ('sts-record-missing', 'tlsrpt-dns-error', 'policy-redirect', 'max-age-short',
                                                      'mx-not-covered', 'policy-certificate-expiring', 'mx-certificate-invalid')] == [
        'record', 'record', 'policy', 'policy', 'mx', 'certificates', 'certificates']


def test_the_checks_of_each_domain():
    domains = by_domain(report())
    assert domains['clean.example']['passed'] is True
    assert all(check['passed'] and not check['failures'] for check in domains['clean.example']['checks'])

    drifted = checks(domains['drifted.example'])
    assert [name for name, check in drifted.items() if not check['passed']] == ['policy', 'in_sync']
    assert drifted['policy']['failures'][0].startswith('policy-fetch-failed: ')
    assert drifted['in_sync']['failures'][-2:] == ['id is "old1", wanted "%s"' % POLICY_ID, 'policy is null, wanted "%s"' % POLICY_ID]

    expiring = checks(domains['expiring.example'])
    assert [name for name, check in expiring.items() if not check['passed']] == ['certificates']
    assert expiring['certificates']['failures'] == [
        'the certificate of mx1.example.com expires at 2026-06-06T12:00:00Z, in 5 days (fewer than 14)']

    # No record, no desired state: every finding is info, yet no policy applies.
    nothing = domains['nothing.example']
    assert nothing['in_sync'] is None and checks(nothing)['in_sync']['skipped'] is True
    assert [name for name, check in checks(nothing).items() if not check['passed']] == ['record']
    assert checks(nothing)['record']['failures'][0].startswith('no valid MTA-STS policy: ')


def test_certificate_days_left_from_the_policy_host_and_the_probed_mx_hosts():
    domains = by_domain(report())
    # The policy host's certificate (policy_certificate) ends 2027-01-01: 213 whole days after NOW.
    assert {'host': 'mta-sts.clean.example', 'not_after': '2027-01-01T00:00:00Z', 'days_left': 213} in domains['clean.example']['certificates']
    # Soonest first, then by host.
    assert [item['host'] for item in domains['clean.example']['certificates']] == ['a.mx.example.com', 'mta-sts.clean.example', 'mx1.example.com']
    assert domains['expiring.example']['certificate_days_left'] == 5
    assert domains['expiring.example']['certificates'][0]['host'] == 'mx1.example.com'
    # The fetch failed before TLS: only the MX hosts' certificates are known.
    assert [item['host'] for item in domains['drifted.example']['certificates']] == ['a.mx.example.com', 'mx1.example.com']
    unprobed = result(probes=None)
    assert by_domain(report([unprobed]))['example.com']['certificates'] == [
        {'host': 'mta-sts.example.com', 'not_after': '2027-01-01T00:00:00Z', 'days_left': 213}]
    blind = result(probes=None, policy_fetch=failed_fetch('timeout', 'no answer'))
    assert by_domain(report([blind]))['example.com']['certificate_days_left'] is None
    # The bound is whole days: 5 left fails at 6, passes at 5.
    assert by_domain(report(expiry_days=6))['expiring.example']['passed'] is False
    assert by_domain(report(expiry_days=5))['expiring.example']['passed'] is True


def test_expired_certificate_shows_as_expired():
    expired = result(policy_fetch=fetch(cert={'names': ['mta-sts.example.com'], 'not_after': '2026-05-01T00:00:00Z', 'issuer': 'CN=x'}))
    text = _drift_report.render([expired], 'markdown', now=NOW)
    assert '| expired (mta-sts.example.com) |' in text
    assert by_domain(report([expired]))['example.com']['certificate_days_left'] == -32


def test_json_report():
    parsed = json.loads(_drift_report.render(fleet(), 'json', now=NOW))
    assert parsed['version'] == 1 and parsed['generated'] == '2026-06-01T12:00:00Z' and parsed['passed'] is False
    assert parsed['summary'] == {'domains': 4, 'passed': 1, 'failed': 3, 'in_sync': 2, 'drifted': 1, 'invalid': 2}
    assert [domain['domain'] for domain in parsed['domains']] == ['clean.example', 'drifted.example', 'expiring.example', 'nothing.example']


def test_junit_is_valid_xml_with_a_case_per_domain_and_check():
    root = ET.fromstring(_drift_report.render(fleet(), 'junit', now=NOW).encode('utf-8'))
    assert root.tag == 'testsuites' and root.get('tests') == '20' and root.get('failures') == '4'
    suites = root.findall('testsuite')
    assert [suite.get('name') for suite in suites] == ['clean.example', 'drifted.example', 'expiring.example', 'nothing.example']
    for suite in suites:
        cases = suite.findall('testcase')
        assert [case.get('name') for case in cases] == list(_drift_report.CHECKS)
        assert set(case.get('classname') for case in cases) == {suite.get('name')}
        assert suite.get('failures') == str(len(suite.findall('testcase/failure')))
    drifted = dict((case.get('name'), case) for case in suites[1].findall('testcase'))
    failure = drifted['policy'].find('failure')
    # The finding's message comes back whole: markup and newlines survive the escaping.
    assert 'refused | closed\nagain <b>&</b>' in failure.text and failure.get('type') == 'policy'
    assert drifted['in_sync'].find('failure').text.splitlines()[-1] == 'policy is null, wanted "%s"' % POLICY_ID
    assert drifted['in_sync'].find('failure').get('message') == 'mode is null, wanted "enforce"'
    assert drifted['record'].find('failure') is None
    nothing = dict((case.get('name'), case) for case in suites[3].findall('testcase'))
    assert nothing['in_sync'].find('skipped') is not None
    # A passed check with findings shows them as its output.
    clean = dict((case.get('name'), case) for case in suites[0].findall('testcase'))
    assert clean['policy'].find('failure') is None and clean['policy'].find('system-out') is None


def test_junit_survives_characters_xml_cannot_carry():
    hostile = result(sts_txt=sts('v=STSv1; id=\x00\x1b;'))
    root = ET.fromstring(_drift_report.render([hostile], 'junit', now=NOW).encode('utf-8'))
    text = root.find('testsuite/testcase/failure').text
    assert 'sts-record-invalid' in text and '\x00' not in text


def markdown_rows(text):
    return [line for line in text.splitlines() if line.startswith('| ')][2:]


def cells(row):
    """The cells of a table row, split on the pipes Markdown sees (not the escaped ones)."""
    return [cell.strip() for cell in re.split(r'(?<!\\)\|', row)[1:-1]]


def test_markdown_table_for_a_ci_job_summary():
    text = _drift_report.render(fleet(), 'markdown', now=NOW, tlsrpt={'domains': {'clean.example': {
        'reports': 4, 'successful_sessions': 990, 'failed_sessions': 10, 'failure_rate': 1.0}}})
    assert text.startswith('# MTA-STS drift\n\n**FAIL**: 1 of 4 domains pass, 3 fail')
    rows = markdown_rows(text)
    assert len(rows) == 4 and all(len(cells(row)) == 7 for row in rows)
    clean, drifted, expiring, nothing = [cells(row) for row in rows]
    assert clean == ['clean.example', 'pass', 'enforce', 'yes', 'none', '213 (a.mx.example.com)', '1.00 %']
    assert drifted[1:3] == ['**fail**', '-']
    assert drifted[3].startswith('**no**: mode is null, wanted "enforce"<br>mx is null, wanted \\[')
    # The finding's pipe, newline and markup cannot break the row or inject HTML.
    assert 'refused \\| closed again &lt;b&gt;&amp;&lt;/b&gt;' in drifted[4] and drifted[6] == 'no reports'
    assert expiring[4].startswith('**warning** mx-certificate-expiring: ') and '<br>**expiring** the certificate of' in expiring[4]
    assert expiring[5] == '5 (mx1.example.com)'
    assert nothing[3] == '-'


def test_markdown_without_tlsrpt_and_text_table():
    assert all(cells(row)[6] == '-' for row in markdown_rows(_drift_report.render(fleet(), 'markdown', now=NOW)))
    lines = _drift_report.render(fleet(), 'text', now=NOW).splitlines()
    assert lines[0].split() == ['DOMAIN', 'RESULT', 'MODE', 'IN', 'SYNC', 'ERRORS', 'WARNINGS', 'CERT', 'DAYS', 'FAILED', 'CHECKS']
    assert lines[2].split() == ['drifted.example', 'FAIL', '-', 'no', '1', '0', '213', 'policy,', 'in_sync']
    assert lines[-1] == '1 of 4 domains pass'


def test_failures_name_the_domain_and_the_check():
    sentences = _drift_report.failures(report())
    assert list(dict.fromkeys(sentence.split(':')[0] for sentence in sentences)) == [
        'drifted.example [policy]', 'drifted.example [in_sync]', 'expiring.example [certificates]', 'nothing.example [record]']
    assert 'drifted.example [in_sync]: id is "old1", wanted "%s"' % POLICY_ID in sentences
    assert _drift_report.failures(report([result('clean.example')])) == []


def test_no_secret_reaches_any_output():
    # Whatever travels with a result (a playbook merging module options into it, say) stays out.
    leaky = [dict(item, key_secret=SECRET, provider={'api_token': SECRET},
                  mx=[dict(entry, password=SECRET) for entry in item['mx']]) for item in fleet()]
    tlsrpt = {'domains': {'clean.example': {'reports': 1, 'successful_sessions': 1, 'failed_sessions': 0, 'failure_rate': 0.0,
                                            'imap_password': SECRET}}}
    outputs = [_drift_report.render(leaky, output_format, tlsrpt=tlsrpt, now=NOW) for output_format in _drift_report.FORMATS]
    outputs.append(json.dumps(_drift_report.failures(report(leaky))))
    assert all(SECRET not in output for output in outputs)


@pytest.mark.parametrize('call, message', [
    (lambda: _drift_report.render(fleet(), 'html', now=NOW), "format 'html': must be one of json, junit, markdown, text"),
    (lambda: _drift_report.render({'domain': 'x.example'}, now=NOW), 'results '),
    (lambda: _drift_report.render([{'valid': True}], now=NOW), "results[0] {'valid': True}: must be a result of the validate lookup"),
    (lambda: _drift_report.render([{'domain': 'x.example', 'findings': 'none'}], now=NOW), "results[0].findings 'none': must be a list"),
    (lambda: _drift_report.render([], tlsrpt={'x.example': {}}, now=NOW), 'tlsrpt '),
    (lambda: _drift_report.render([], now='yesterday'), "now 'yesterday': must be a datetime or an ISO 8601 date and time"),
    (lambda: _drift_report.build_report([], NOW, expiry_days=-1), 'expiry_days -1: must be a whole number of days'),
])
def test_bad_input_names_the_field(call, message):
    with pytest.raises(ValidationError) as caught:
        call()
    assert str(caught.value).startswith(message)


@pytest.fixture(scope='module')
def templar():
    return Templar(loader=DataLoader(), variables={'results': fleet(), 'clean': [result('clean.example')]})


def render(templar, expression):
    return templar.template(trust_as_template('{{ %s }}' % expression))


def test_filters_through_the_templar(templar):
    root = ET.fromstring(render(templar, "results | mailsec.mta_sts.drift_report('junit', now='2026-06-01T12:00:00Z')").encode('utf-8'))
    assert len(root.findall('testsuite/testcase')) == 20
    assert render(templar, "results | mailsec.mta_sts.drift_failures(now='2026-06-01T12:00:00Z', expiry_days=3)") == [
        sentence for sentence in _drift_report.failures(report()) if not sentence.startswith('expiring.example')]
    # Without now, the clock: the clean domain's certificate (to 2027-01-01) still has days left today.
    assert render(templar, 'clean | mailsec.mta_sts.drift_failures') == []
    with pytest.raises(AnsibleError, match="format 'xml': must be one of"):
        render(templar, "results | mailsec.mta_sts.drift_report('xml')")
