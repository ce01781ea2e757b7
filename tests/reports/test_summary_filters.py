"""tlsrpt_summary, tlsrpt_markdown and tlsrpt_enforce_gate through one real ansible-playbook run, used as documented.

The play finds the corpus reports in a directory (some gzipped, one delivered twice, one from 2016),
slurps and parses them (parse_tlsrpt_report), sums them up, writes the Markdown to a file, and judges
the gate for a domain with clean reports (passes), for one whose reports show failures (fails, and
the documented assert stops the play with the gate's message), for a new MX set no report is about
yet (fails: no evidence), and with a bad option (the task fails naming the option).
"""

import gzip
import os

import pytest

from tests.integration.playbook import run_playbook
from tests.unit.test_tlsrpt_summary import raw_totals
from tests.unit.tlsrpt_corpus import NAMES, raw

POLICY_COM = {'mode': 'enforce', 'mx': ['mail.example.com'], 'max_age': 604800}
POLICY_NET = 'version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 604800\n'
GZIPPED = ('google-sts', 'many-failures', 'mx-host-string')


def fact(name, expression, ignore_errors=False):
    task = {'name': name, 'ansible.builtin.set_fact': {name: '{{ %s }}' % expression}}
    if ignore_errors:
        task['ignore_errors'] = True
    return task


def assert_passed(name, verdict):
    """The documented way to stop a rollout: assert on passed, with the verdict's message."""
    return {'name': name, 'ansible.builtin.assert': {'that': verdict + '.passed', 'fail_msg': '{{ %s.message }}' % verdict}}


@pytest.fixture(scope='module')
def played(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('summary-filters'))
    reports = os.path.join(root, 'reports')
    os.makedirs(os.path.join(reports, 'resent'))
    for name in NAMES:
        data = raw(name)
        path = os.path.join(reports, name + '.json')
        if name in GZIPPED:
            data, path = gzip.compress(data), path + '.gz'
        with open(path, 'wb') as handle:
            handle.write(data)
    # The same report delivered a second time, plain this time.
    with open(os.path.join(reports, 'resent', 'google.json'), 'wb') as handle:
        handle.write(raw('google-sts'))
    markdown = os.path.join(root, 'summary.md')
    gate = 'summary | mailsec.mta_sts.tlsrpt_enforce_gate'
    tasks = [
        {'name': 'find', 'ansible.builtin.find': {'paths': reports, 'patterns': ['*.json', '*.json.gz'], 'recurse': True},
         'register': 'found'},
        {'name': 'slurp', 'ansible.builtin.slurp': {'src': '{{ item.path }}'},
         'loop': "{{ found.files | sort(attribute='path') }}", 'register': 'slurped'},
        fact('parsed', "slurped.results | map(attribute='content') | map('mailsec.mta_sts.parse_tlsrpt_report') | list"),
        fact('summary', "parsed | mailsec.mta_sts.tlsrpt_summary(since='2026-11-01')"),
        fact('summary_com', "parsed | mailsec.mta_sts.tlsrpt_summary(since='2026-11-01', until='2026-11-03', "
                            "domains=['Example.COM.'])"),
        {'name': 'markdown', 'ansible.builtin.copy': {'content': '{{ summary | mailsec.mta_sts.tlsrpt_markdown }}',
                                                      'dest': markdown}},
        fact('gate_net', "%s('example.net', policy_net, now='2026-11-03T08:00:00Z', days=2)" % gate),
        fact('gate_com', "%s('example.com', policy_com, now='2026-11-04', days=3)" % gate),
        fact('gate_new_mx', "%s('example.com', policy_com | combine({'mx': ['mx.new.example.com']}), now='2026-11-04', "
                            "days=3)" % gate),
        assert_passed('net may go to enforce', 'gate_net'),
        dict(assert_passed('com may go to enforce', 'gate_com'), ignore_errors=True),
        fact('bad_option', "%s('example.com', policy_com, max_failure_rate=150)" % gate, ignore_errors=True),
    ]
    run = run_playbook(tasks, workdir=root, play_vars={'policy_com': POLICY_COM, 'policy_net': POLICY_NET})
    with open(markdown) as handle:
        text = handle.read()
    results = dict((result['_task'], result) for result in run.results)
    return run, results, text


def facts(played, name):
    return played[1][name]['ansible_facts'][name]


def test_the_play_ran_every_task(played):
    run, results, _text = played
    assert run.returncode == 0, run
    assert ' failed=0 ' in run.output and ' ignored=2' in run.output    # the failing assert and the bad option
    assert len(results['slurp']['results']) == len(NAMES) + 1


def test_summary_through_the_playbook(played):
    summary = facts(played, 'summary')
    assert (summary['reports'], summary['duplicates']) == (len(NAMES) - 1, 1)
    assert summary['skipped'] == {'outside_window': 1, 'no_matching_domain': 0}   # the RFC's 2016 example
    assert summary['window'] == {'since': '2026-11-01T00:00:00Z', 'until': None}
    assert list(summary['domains']) == ['example.com', 'example.net']
    names = [name for name in NAMES if name != 'rfc8460-example']
    for domain, totals in summary['domains'].items():
        successful, failed, by_type = raw_totals(names, domain)
        assert (totals['successful_sessions'], totals['failed_sessions']) == (successful, failed)
        assert totals['failures_by_result_type'] == by_type
    com = summary['domains']['example.com']
    assert com['organizations'] == ['Busy Sender Inc.', 'Google Inc.', 'Legacy Mail Systems', 'Microsoft Corporation',
                                    'Minimal Sender']
    assert (com['first'], com['last']) == ('2026-11-01T00:00:00Z', '2026-11-03T23:59:59Z')
    assert com['failure_rate'] == pytest.approx(100.0 * com['failed_sessions']
                                                / (com['failed_sessions'] + com['successful_sessions']))


def test_summary_window_and_domains_through_the_playbook(played):
    summary = facts(played, 'summary_com')
    # 2026-11-01 and 02 only; the example.net reports of those days are about another domain.
    assert summary['skipped'] == {'outside_window': 3, 'no_matching_domain': 3}
    assert list(summary['domains']) == ['example.com']
    assert summary['domains']['example.com']['organizations'] == ['Google Inc.', 'Legacy Mail Systems',
                                                                  'Microsoft Corporation']


def test_markdown_file_written_by_the_playbook(played):
    text = played[2]
    # One organisation per report in the corpus.
    assert text.startswith('# TLS-RPT summary\n\n%d reports from %d organisations counted; skipped: 1 duplicate, '
                           '1 outside the window, 0 about other domains; 0 could not be read.\n\n'
                           'Window: from 2026-11-01T00:00:00Z.\n\n## example.com\n' % (len(NAMES) - 1, len(NAMES) - 1))
    assert text.count('\n## ') == 2
    assert '| certificate-expired |' in text
    assert '| tlsa | 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6 | mx1.example.net | 1 |' in text


def test_gate_passes_on_clean_reports_of_the_current_policy(played):
    verdict = facts(played, 'gate_net')
    assert verdict['passed'] is True, verdict
    assert verdict['message'] == ('example.net may go to enforce: 640 sessions in 1 report from 1 organisation over the '
                                  'last 2 days (2026-11-01 to 2026-11-02), 0 % failed, no failure of a forbidden '
                                  'result type')
    assert sorted(item['policy_type'] for item in verdict['ignored_policies']) == ['no-policy-found', 'tlsa']
    assert played[1]['net may go to enforce']['_status'] == 'ok'


def test_gate_fails_with_its_reasons_and_the_assert_stops_on_them(played):
    verdict = facts(played, 'gate_com')
    assert verdict['passed'] is False
    rate = verdict['evidence']['failure_rate']
    assert verdict['reasons'][0] == (
        '%.2f %% of the %d sessions reported for example.com over the last 3 days (2026-11-01 to 2026-11-03) failed '
        '(%d); at most 1 %% may fail' % (rate, verdict['evidence']['sessions'], verdict['evidence']['failed_sessions']))
    assert verdict['reasons'][1].startswith('sessions to example.com failed with certificate-expired (')
    assertion = played[1]['com may go to enforce']
    assert assertion['_status'] == 'failed'
    assert assertion['msg'] == verdict['message']
    assert assertion['msg'].startswith('example.com should not go to enforce yet: %s' % verdict['reasons'][0])


def test_gate_without_reports_about_the_new_mx_set_fails(played):
    verdict = facts(played, 'gate_new_mx')
    assert verdict['passed'] is False
    assert verdict['reasons'] == [
        "no TLS-RPT report about example.com's policy (mx: mx.new.example.com) over the last 3 days (2026-11-01 to "
        "2026-11-03); 2 policy entries were ignored (see ignored_policies)"]


def test_gate_bad_option_fails_the_task_naming_it(played):
    result = played[1]['bad_option']
    assert result['_status'] == 'failed'
    assert 'tlsrpt_enforce_gate.max_failure_rate 150: must be a number of percent from 0 to 100' in result['msg']
