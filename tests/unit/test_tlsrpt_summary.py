"""The TLS-RPT summary, its Markdown and the enforce gate (pure), on normalised reports.

Reports are built here as parse_report returns them; the corpus tests at the end run the
shipped reports through the parser first.
"""

import datetime
import tracemalloc

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_summary import (
    SummaryBuilder, enforce_gate, parse_since, parse_time, render_markdown, since_days_ago, summarize,
)
from tests.unit.plugins.filter.test_filters import render

UTC = datetime.timezone.utc
POLICY = {'mode': 'enforce', 'mx': ['mail.example.com'], 'max_age': 604800}
POLICY_LINES = ['version: STSv1', 'mode: testing', 'mx: mail.example.com', 'max_age: 86400']
OLD_POLICY_LINES = ['version: STSv1', 'mode: testing', 'mx: mx.old.example.com', 'max_age: 86400']
NOW = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def detail(result_type, failed, mx='mail.example.com', ip='192.0.2.25'):
    return {'result_type': result_type, 'failed_sessions': failed, 'sending_mta_ip': '198.51.100.7',
            'receiving_mx_hostname': mx, 'receiving_mx_helo': None, 'receiving_ip': ip,
            'additional_information': None, 'failure_reason_code': None}


def policy(domain='example.com', ok=100, failed=0, details=(), policy_type='sts', lines=None, mx_host=None):
    if lines is None:
        lines = POLICY_LINES if policy_type == 'sts' else []
    return {'policy_type': policy_type, 'policy_string': list(lines), 'policy_domain': domain,
            'mx_host': list(mx_host or []), 'successful_sessions': ok, 'failed_sessions': failed,
            'failure_details': list(details)}


def report(org='google.com', report_id='r1', day='2026-11-20', policies=None, start=None, end=None):
    return {'organization_name': org, 'report_id': report_id, 'contact_info': None,
            'date_range': {'start': start or day + 'T00:00:00Z', 'end': end or day + 'T23:59:59Z'},
            'policies': [policy()] if policies is None else policies}


def error_of(function, *args, **kwargs):
    with pytest.raises(ValidationError) as err:
        function(*args, **kwargs)
    return str(err.value)


# --- summary ---

def test_summary_shape_and_totals():
    summary = summarize([
        report('google.com', 'g1', '2026-11-20', [policy(ok=90, failed=10, details=[
            detail('certificate-expired', 6), detail('starttls-not-supported', 4, mx='MX2.example.com.', ip='192.0.2.26')])]),
        report('microsoft.com', 'm1', '2026-11-21',
               [policy(ok=50), policy('example.net', ok=7, lines=[], mx_host=['*.example.net'])]),
    ])
    assert summary['reports'] == 2
    assert summary['duplicates'] == 0
    assert summary['organizations'] == ['google.com', 'microsoft.com']
    assert summary['window'] == {'since': None, 'until': None}
    assert summary['errors'] == []
    assert list(summary['domains']) == ['example.com', 'example.net']
    com = summary['domains']['example.com']
    assert com['reports'] == 2
    assert com['organizations'] == ['google.com', 'microsoft.com']
    assert (com['first'], com['last']) == ('2026-11-20T00:00:00Z', '2026-11-21T23:59:59Z')
    assert (com['successful_sessions'], com['failed_sessions']) == (140, 10)
    assert com['failure_rate'] == pytest.approx(100 * 10 / 150.0)
    assert com['failures_by_result_type'] == {'certificate-expired': 6, 'starttls-not-supported': 4}
    assert com['failures_by_receiving_mx'] == [
        {'receiving_mx_hostname': 'mail.example.com', 'receiving_ip': '192.0.2.25', 'failed_sessions': 6,
         'failures_by_result_type': {'certificate-expired': 6}},
        {'receiving_mx_hostname': 'mx2.example.com', 'receiving_ip': '192.0.2.26', 'failed_sessions': 4,
         'failures_by_result_type': {'starttls-not-supported': 4}},
    ]
    [sts] = com['policies']
    assert sts['policy_string'] == POLICY_LINES
    assert sts['reports'] == 2
    assert [day['date'] for day in sts['daily']] == ['2026-11-20', '2026-11-21']
    assert sts['daily'][0]['failures_by_result_type'] == {'certificate-expired': 6, 'starttls-not-supported': 4}
    assert sts['daily'][1]['organizations'] == ['microsoft.com']
    net = summary['domains']['example.net']
    assert net['policies'][0]['mx_host'] == ['*.example.net']
    assert net['failure_rate'] == 0.0


def test_no_sessions_gives_no_failure_rate():
    summary = summarize([report(policies=[policy(ok=0)])])
    assert summary['domains']['example.com']['failure_rate'] is None


def test_duplicates_count_once_whoever_sends_them():
    builder = SummaryBuilder()
    assert builder.add(report('google.com', 'same'), 'a.json') == 'added'
    assert builder.add(report('google.com', 'same'), 'b.eml') == 'duplicate'
    # The same report id from another organisation is another report.
    assert builder.add(report('microsoft.com', 'same'), 'c.json') == 'added'
    summary = builder.result()
    assert (summary['reports'], summary['duplicates']) == (2, 1)
    assert summary['domains']['example.com']['successful_sessions'] == 200


@pytest.mark.parametrize('start, end, since, until, counted', [
    ('2026-11-20T00:00:00Z', '2026-11-20T23:59:59Z', '2026-11-20', '2026-11-21', True),
    ('2026-11-20T00:00:00Z', '2026-11-20T23:59:59Z', '2026-11-21', None, False),
    # The window and the report's end are half-open: a report ending at midnight is not about the next day.
    ('2026-11-20T00:00:00Z', '2026-11-21T00:00:00Z', '2026-11-21', None, False),
    ('2026-11-20T00:00:00Z', '2026-11-21T00:00:01Z', '2026-11-21', None, True),
    ('2026-11-21T00:00:00Z', '2026-11-21T23:59:59Z', None, '2026-11-21', False),
    ('2026-11-20T23:59:59Z', '2026-11-21T23:59:59Z', None, '2026-11-21', True),
    # A report of one instant counts when the instant is inside.
    ('2026-11-21T00:00:00Z', '2026-11-21T00:00:00Z', '2026-11-21', '2026-11-22', True),
    ('2026-11-22T00:00:00Z', '2026-11-22T00:00:00Z', '2026-11-21', '2026-11-22', False),
    # Offsets are compared in UTC.
    ('2026-11-20T00:00:00Z', '2026-11-20T23:59:59Z', '2026-11-21T01:00:00+02:00', None, True),
])
def test_window_edges(start, end, since, until, counted):
    builder = SummaryBuilder(since=since, until=until)
    assert builder.add(report(start=start, end=end), 'r') == ('added' if counted else 'outside-window')
    assert builder.result()['skipped']['outside_window'] == (0 if counted else 1)


def test_window_is_reported_in_utc():
    summary = summarize([], since='2026-11-01T02:00:00+02:00', until=datetime.datetime(2026, 11, 3, tzinfo=UTC))
    assert summary['window'] == {'since': '2026-11-01T00:00:00Z', 'until': '2026-11-03T00:00:00Z'}


def test_domains_filter_counts_only_the_listed_policies():
    builder = SummaryBuilder(domains=['Example.COM.'])
    both = report('google.com', 'g1', policies=[policy('example.com', ok=10), policy('example.net', ok=99)])
    assert builder.add(both, 'g1') == 'added'
    assert builder.add(report('google.com', 'g2', policies=[policy('example.net')]), 'g2') == 'no-matching-domain'
    summary = builder.result()
    assert list(summary['domains']) == ['example.com']
    assert summary['domains']['example.com']['successful_sessions'] == 10
    assert summary['skipped'] == {'outside_window': 0, 'no_matching_domain': 1}


def test_a_report_without_policies_counts_as_a_report_but_about_no_domain():
    summary = summarize([report(policies=[])])
    assert (summary['reports'], summary['domains']) == (1, {})
    assert SummaryBuilder(domains=['example.com']).add(report(policies=[]), 'r') == 'no-matching-domain'


def test_policies_seen_are_told_apart_newest_first():
    summary = summarize([
        report('google.com', 'old', '2026-11-01', [policy(lines=OLD_POLICY_LINES)]),
        report('google.com', 'new', '2026-11-20', [policy()]),
        report('google.com', 'dane', '2026-11-10', [policy(policy_type='tlsa', lines=['3 1 1 abcd'])]),
        report('google.com', 'none', '2026-11-05', [policy(policy_type='no-policy-found')]),
    ])
    policies = summary['domains']['example.com']['policies']
    assert [(entry['policy_type'], entry['last']) for entry in policies] == [
        ('sts', '2026-11-20T23:59:59Z'), ('tlsa', '2026-11-10T23:59:59Z'),
        ('no-policy-found', '2026-11-05T23:59:59Z'), ('sts', '2026-11-01T23:59:59Z')]
    assert policies[-1]['policy_string'] == OLD_POLICY_LINES


def test_daily_buckets_by_utc_start_date_and_a_report_counts_once_per_bucket():
    summary = summarize([
        report('a', '1', start='2026-11-20T23:00:00-02:00', end='2026-11-21T22:59:59-02:00',
               policies=[policy(ok=5), policy(ok=7)]),
        report('b', '2', '2026-11-21', [policy(ok=1)]),
    ])
    com = summary['domains']['example.com']
    assert com['reports'] == 2
    [sts] = com['policies']
    assert sts['reports'] == 2
    assert sts['daily'] == [{'date': '2026-11-21', 'reports': 2, 'organizations': ['a', 'b'],
                             'successful_sessions': 13, 'failed_sessions': 0, 'failure_rate': 0.0,
                             'failures_by_result_type': {}}]


def test_errors_are_listed_and_the_others_go_on():
    builder = SummaryBuilder()
    builder.add_error('bad.json', "report 'x': is not JSON")
    builder.add(report(), 'good.json')
    summary = builder.result()
    assert summary['errors'] == [{'source': 'bad.json', 'reason': "report 'x': is not JSON"}]
    assert summary['reports'] == 1


@pytest.mark.parametrize('reports, message', [
    ('nope', "reports 'nope': must be a list"),
    ([{'organization-name': 'raw'}], "reports[0] ['organization-name']: must be a normalised report (what "
                                     "parse_tlsrpt_report returns); the key organization_name is missing"),
    (['text'], "reports[0] 'text': must be a normalised report (what parse_tlsrpt_report returns); this is not a mapping"),
    ([dict(report(), report_id=7)], 'reports[0].report_id 7: must be a normalised report (what parse_tlsrpt_report '
                                    'returns); this value has the wrong type'),
    ([report(policies=[policy(ok=-1)])], 'reports[0].policies[0].successful_sessions -1'),
    ([report(policies=[dict(policy(), mx_host='mx.example.com')])], "reports[0].policies[0].mx_host 'mx.example.com'"),
    ([report(policies=[policy(failed=1, details=[{'result_type': 'x'}])])],
     'reports[0].policies[0].failure_details[0] [\'result_type\']: must be a normalised report (what parse_tlsrpt_report '
     'returns); the key failed_sessions is missing'),
    ([dict(report(), date_range={'start': 'yesterday', 'end': '2026-11-20T00:00:00Z'})],
     "reports[0].date_range.start 'yesterday': must be a date YYYY-MM-DD or an RFC 3339 date-time"),
    ([report(policies=[{'policy_type': 'sts'}])], 'reports[0].policies[0]'),
])
def test_bad_input_is_refused_naming_the_place(reports, message):
    assert message in error_of(summarize, reports)


def test_failure_details_of_other_mapping_and_int_types_are_counted_and_bools_refused():
    import collections

    class Count(int):
        pass

    ordered = collections.OrderedDict(detail('certificate-expired', 2))
    ordered['failed_sessions'] = Count(2)
    summary = summarize([report(policies=[policy(failed=3, details=[ordered, detail('certificate-expired', 1)])])])
    assert summary['domains']['example.com']['failures_by_result_type'] == {'certificate-expired': 3}
    assert 'reports[0].policies[0].failure_details[1].failed_sessions True' in error_of(
        summarize, [report(policies=[policy(failed=1, details=[detail('x', 1), detail('x', True)])])])


def test_builder_options_are_checked():
    assert "until '2026-11-01T00:00:00Z': must be later than since" in error_of(
        SummaryBuilder, since='2026-11-01', until='2026-11-01')
    assert "domains[1] 'bad_name.example'" in error_of(SummaryBuilder, domains=['example.com', 'bad_name.example'])
    assert "since 'last week'" in error_of(SummaryBuilder, since='last week')
    assert 'must carry a time zone' in error_of(SummaryBuilder, since=datetime.datetime(2026, 11, 1))


def test_builder_memory_stays_flat_as_reports_pass():
    """Aggregates only: 10x the reports over the same days and domains adds no more than the dedupe digests."""
    def peak(count):
        builder = SummaryBuilder()
        details = [detail('certificate-expired', 1, mx='mx%d.example.com' % (n % 5)) for n in range(50)]
        tracemalloc.start()
        for number in range(count):
            builder.add(report('org%d' % (number % 7), 'id-%d' % number, '2026-11-%02d' % (1 + number % 28),
                               [policy(ok=10, failed=50, details=details)]), 'r')
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return size
    small, large = peak(300), peak(3000)
    # The digests: ~2700 more set entries of 16-byte bytes, well under 400 bytes each.
    assert large - small < 2700 * 400


# --- time options ---

def test_parse_since():
    assert parse_since('2026-11-17', NOW) == datetime.datetime(2026, 11, 17, tzinfo=UTC)
    # To the second, as every time in a summary: the fraction is read and dropped.
    assert parse_since('2026-11-17T10:00:00.5+01:00', NOW) == datetime.datetime(2026, 11, 17, 9, 0, 0, tzinfo=UTC)
    assert parse_since('2016-12-31T23:59:60Z', NOW) == datetime.datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert "since '2026-12-02': is in the future" in error_of(parse_since, '2026-12-02', NOW)
    for bad in ('2026-11-31', '2026-11-17T10:00:00', '2026-11-17T10:00:00+24:00', '17.11.2026', 20261117):
        assert "since %r: must be a date YYYY-MM-DD or an RFC 3339" % (bad,) in error_of(parse_since, bad, NOW)


def test_since_days_ago_starts_at_midnight_utc():
    assert since_days_ago(14, NOW) == datetime.datetime(2026, 11, 17, tzinfo=UTC)
    assert "days 0: must be a whole number of at least 1" in error_of(since_days_ago, 0, NOW)
    assert parse_time(datetime.date(2026, 1, 2), 'x') == datetime.datetime(2026, 1, 2, tzinfo=UTC)


# --- the enforce gate ---

def clean_days(count=14, ok=10, org='google.com', lines=None, first_day=17):
    """``count`` daily reports from 2026-11-<first_day> on, each with ``ok`` successful sessions."""
    return [report(org, '%s-%d' % (org, day), '2026-11-%02d' % day, [policy(ok=ok, lines=lines)])
            for day in range(first_day, first_day + count)]


def gate(reports, policy_=None, **options):
    options.setdefault('now', NOW)
    return enforce_gate(summarize(reports), 'example.com', policy_ or POLICY, **options)


def test_gate_passes_on_enough_clean_reports_of_the_current_policy():
    result = gate(clean_days() + clean_days(org='microsoft.com'))
    assert result['passed'] is True, result
    assert result['reasons'] == []
    assert result['domain'] == 'example.com'
    assert result['message'] == ('example.com may go to enforce: 280 sessions in 28 reports from 2 organisations over '
                                 'the last 14 days (2026-11-17 to 2026-11-30), 0 % failed, no failure of a forbidden '
                                 'result type')
    evidence = result['evidence']
    assert evidence['window'] == {'first': '2026-11-17', 'last': '2026-11-30', 'days': 14}
    assert evidence['mx'] == ['mail.example.com']
    assert (evidence['reports'], evidence['sessions'], evidence['successful_sessions']) == (28, 280, 280)
    assert evidence['organizations'] == ['google.com', 'microsoft.com']
    assert evidence['failure_rate'] == 0.0
    assert result['ignored_policies'] == []


def test_gate_without_any_report_fails():
    result = gate([])
    assert result['passed'] is False
    assert result['reasons'] == ['no TLS-RPT report about example.com was read; without reports there is no evidence '
                                 'that senders can deliver under enforce']
    assert result['message'].startswith('example.com should not go to enforce yet: no TLS-RPT report')


def test_gate_counts_only_the_current_policy_and_says_what_it_ignored():
    reports = clean_days(lines=OLD_POLICY_LINES) + [
        report('google.com', 'dane', '2026-11-20', [policy(policy_type='tlsa', lines=['3 1 1 ab'], ok=500)]),
        report('google.com', 'npf', '2026-11-21', [policy(policy_type='no-policy-found', ok=500)]),
        report('google.com', 'nomx', '2026-11-22', [policy(lines=['version: STSv1', 'mode: testing'], ok=500)]),
    ]
    result = gate(reports)
    assert result['passed'] is False
    assert result['reasons'] == [
        "no TLS-RPT report about example.com's policy (mx: mail.example.com) over the last 14 days "
        "(2026-11-17 to 2026-11-30); 4 policy entries were ignored (see ignored_policies)"]
    reasons = dict((entry['policy_type'] + str(entry['reports']), entry['reason']) for entry in result['ignored_policies'])
    assert reasons['sts14'] == ('MX patterns mx.old.example.com differ from the policy\'s mail.example.com: reports '
                                'about an older or another policy')
    assert reasons['tlsa1'].startswith('a DANE (tlsa) policy')
    assert reasons['no-policy-found1'].startswith('the senders found no policy (no-policy-found)')
    assert reasons['sts1'] == 'the reports name no MX pattern (no mx-host, no mx: line in policy-string)'
    assert result['evidence']['sessions'] == 0


def test_gate_mx_patterns_compare_as_a_case_insensitive_set_from_mx_host_or_policy_string():
    two = ['version: STSv1', 'mode: testing', 'mx: MX2.example.com.', 'mx: *.Example.net', 'max_age: 86400']
    policy_text = 'version: STSv1\r\nmode: enforce\r\nmx: *.example.net\r\nmx: mx2.example.com\r\nmax_age: 604800\r\n'
    by_lines = clean_days(lines=two)
    by_mx_host = [report('m', 'm%d' % n, '2026-11-%02d' % n, [policy(ok=10, lines=[], mx_host=['*.example.NET', 'mx2.example.com'])])
                  for n in range(17, 31)]
    for reports in (by_lines, by_mx_host):
        result = gate(reports, policy_text)
        assert result['passed'] is True, result
        assert result['evidence']['mx'] == ['*.example.net', 'mx2.example.com']
    # A subset is another policy: an MX the reports never covered would be enforced untested.
    assert gate(by_lines, dict(POLICY, mx=['mx2.example.com']))['passed'] is False


def test_gate_window_is_the_full_days_before_today():
    outside = [report(day='2026-11-16', report_id='early', policies=[policy(ok=1000, failed=900,
                                                                            details=[detail('certificate-expired', 900)])]),
               report(day='2026-12-01', report_id='today', policies=[policy(ok=1000, failed=900,
                                                                            details=[detail('certificate-expired', 900)])])]
    result = gate(clean_days() + outside)
    assert result['passed'] is True, result
    assert result['evidence']['sessions'] == 140
    result = gate(clean_days(count=2, first_day=1), days=14)
    assert result['passed'] is False
    [ignored] = result['ignored_policies']
    assert ignored['reason'] == 'no report in the window: its reports cover 2026-11-01T00:00:00Z to 2026-11-02T23:59:59Z'
    assert gate(clean_days(count=2, first_day=1, ok=100), days=30)['passed'] is True


def test_gate_too_few_sessions():
    result = gate(clean_days(count=4))
    assert result['reasons'] == ['only 40 sessions reported for example.com over the last 14 days (2026-11-17 to '
                                 '2026-11-30); at least 100 are needed']
    assert gate(clean_days(count=4), min_sessions=40)['passed'] is True
    assert gate(clean_days(count=1, ok=1, first_day=30), days=1, min_sessions=1)['passed'] is True


def test_gate_failure_rate_at_the_limit_passes_above_it_fails():
    def with_failures(failed, result_type='starttls-not-supported'):
        return clean_days(count=9) + [report(day='2026-11-30', report_id='f', policies=[
            policy(ok=110 - failed, failed=failed, details=[detail(result_type, failed)])])]
    assert gate(with_failures(2))['passed'] is True        # 2 of 200 = 1 %
    result = gate(with_failures(3))
    assert result['reasons'] == ['1.5 % of the 200 sessions reported for example.com over the last 14 days '
                                 '(2026-11-17 to 2026-11-30) failed (3); at most 1 % may fail']
    assert gate(with_failures(3), max_failure_rate=1.5)['passed'] is True
    assert gate(with_failures(1), max_failure_rate=0)['passed'] is False


@pytest.mark.parametrize('result_type, forbidden, passed', [
    ('certificate-expired', None, False),
    ('certificate-host-mismatch', None, False),
    ('sts-policy-fetch-error', None, False),
    ('sts-webpki-invalid', None, False),
    ('starttls-not-supported', None, True),
    ('validation-failure', None, True),
    ('Certificate-Expired', None, True),     # result types are case-sensitive tokens
    ('starttls-not-supported', ['starttls-*'], False),
    ('certificate-expired', [], True),
    ('x-new-type', ['x-*'], False),
])
def test_gate_forbidden_result_types_are_fnmatch_patterns(result_type, forbidden, passed):
    reports = clean_days() + [report(day='2026-11-30', report_id='f', policies=[
        policy(ok=999, failed=1, details=[detail(result_type, 1)])])]
    options = {} if forbidden is None else {'forbidden_result_types': forbidden}
    result = gate(reports, max_failure_rate=5, **options)
    assert result['passed'] is passed, result
    if not passed:
        assert result['evidence']['forbidden_failures'] == {result_type: 1}
        assert result['reasons'][-1] == (
            'sessions to example.com failed with %s (1) over the last 14 days (2026-11-17 to 2026-11-30); none of %s may '
            'occur before enforce' % (result_type, ', '.join(forbidden or ['certificate-*', 'sts-*'])))


def test_gate_gives_every_reason_at_once():
    reports = [report(day='2026-11-20', policies=[policy(ok=5, failed=5, details=[detail('certificate-expired', 5)])])]
    reasons = gate(reports)['reasons']
    assert [reason.split(' ')[:2] for reason in reasons] == [['only', '10'], ['50', '%'], ['sessions', 'to']]


def test_gate_now_is_given_by_the_caller():
    reports = [report(day='2025-12-31', policies=[policy(ok=100)])]
    result = enforce_gate(summarize(reports), 'EXAMPLE.com.', POLICY, now='2026-01-01T23:59:59+01:00')
    assert result['domain'] == 'example.com'
    assert result['evidence']['window']['last'] == '2025-12-31'
    assert result['passed'] is True


@pytest.mark.parametrize('options, message', [
    ({'min_sessions': 0}, "enforce_gate.min_sessions 0: must be a whole number of at least 1"),
    ({'min_sessions': True}, "enforce_gate.min_sessions True: must be a whole number"),
    ({'days': '14'}, "enforce_gate.days '14': must be a whole number of at least 1"),
    ({'max_failure_rate': 101}, "enforce_gate.max_failure_rate 101: must be a number of percent from 0 to 100"),
    ({'max_failure_rate': -0.5}, "enforce_gate.max_failure_rate -0.5: must be a number of percent"),
    ({'forbidden_result_types': [1]}, "enforce_gate.forbidden_result_types [1]: must be a list of result types"),
    ({'now': 'noon'}, "enforce_gate.now 'noon': must be a date"),
    ({'now': None}, "enforce_gate.now None: is required"),
    ({'domain': 'not a domain'}, "enforce_gate.domain 'not a domain'"),
    ({'policy': {'mode': 'enforce', 'max_age': 604800}},
     "enforce_gate.policies.example.com.mx []: at least one mx pattern is required"),
    ({'policy': 'mode: enforce\n'}, "enforce_gate.policies.example.com.policy"),
    ({'policy': {'mode': 'none', 'max_age': 86400}},
     "enforce_gate.policies.example.com.mx []: the policy to enforce must list its mx patterns"),
    ({'policy': 42}, "enforce_gate.policies.example.com 42: must be a dict or the policy text"),
    ({'summary': [1]}, "summary [1]: must be a summary"),
])
def test_gate_options_are_checked_naming_the_option(options, message):
    arguments = {'summary': summarize([]), 'domain': 'example.com', 'policy': POLICY, 'now': NOW}
    arguments.update(options)
    assert message in error_of(enforce_gate, **arguments)


# --- Markdown ---

def test_markdown_tables_per_domain():
    summary = summarize([
        report('google.com', 'g1', '2026-11-20', [policy(ok=90, failed=10, details=[
            detail('starttls-not-supported', 4, mx='mx2.example.com', ip='192.0.2.26'), detail('certificate-expired', 6)])]),
        report('google.com', 'g1', '2026-11-20'),
        report('microsoft.com', 'm1', '2026-11-21', [policy('example.net', ok=7, lines=[], mx_host=['*.example.net'])]),
    ], since='2026-11-01')
    text = render_markdown(summary)
    assert text.startswith('# TLS-RPT summary\n\n2 reports from 2 organisations counted; skipped: 1 duplicate, '
                           '0 outside the window, 0 about other domains; 0 could not be read.\n\n'
                           'Window: from 2026-11-01T00:00:00Z.\n\n## example.com\n\n')
    assert ('| Reports | Organisations | Successful sessions | Failed sessions | Failure rate | First | Last |\n'
            '| ---: | --- | ---: | ---: | ---: | --- | --- |\n'
            '| 1 | google.com | 90 | 10 | 10.00 % | 2026-11-20T00:00:00Z | 2026-11-20T23:59:59Z |\n') in text
    # Most failures first.
    assert ('| Result type | Failed sessions |\n| --- | ---: |\n| certificate-expired | 6 |\n'
            '| starttls-not-supported | 4 |\n') in text
    assert ('| mail.example.com | 192.0.2.25 | 6 | certificate-expired (6) |\n'
            '| mx2.example.com | 192.0.2.26 | 4 | starttls-not-supported (4) |\n') in text
    assert ('| sts | version: STSv1; mode: testing; mx: mail.example.com; max\\_age: 86400 | mail.example.com | 1 | 90 | '
            '10 | 2026-11-20T00:00:00Z | 2026-11-20T23:59:59Z |\n') in text
    net = text[text.index('## example.net'):]
    assert 'No failure details reported.' in net
    assert '| sts | - | \\*.example.net | 1 | 7 | 0 |' in net
    assert '## Reports that could not be read' not in text


def test_markdown_escapes_what_senders_write():
    hostile = 'evil|org <img src=x onerror=alert(1)> *bold* [link](http://x) `code`\n| injected | row |'
    builder = SummaryBuilder()
    builder.add(report(hostile, 'h', policies=[policy(ok=1, failed=1, details=[detail('x|y', 1, mx='a|b')])]), 'r')
    builder.add_error('dir/bad|name.json', 'report: not\nJSON & <b>')
    text = render_markdown(builder.result())
    assert ('| 1 | evil\\|org &lt;img src=x onerror=alert(1)&gt; \\*bold\\* \\[link\\](http://x) \\`code\\` \\| injected '
            '\\| row \\| | 1 | 1 |') in text
    assert '| x\\|y | 1 |' in text
    assert '| a\\|b | 192.0.2.25 | 1 | x\\|y (1) |' in text
    assert text.endswith('## Reports that could not be read\n\n| Source | Reason |\n| --- | --- |\n'
                         '| dir/bad\\|name.json | report: not JSON &amp; &lt;b&gt; |\n')
    # Every table row keeps its column count: no unescaped pipe slipped in.
    for line in text.splitlines():
        if line.startswith('| 1 | evil'):
            assert len(line.replace('\\|', '').split('|')) == 9


def test_markdown_of_an_empty_summary():
    text = render_markdown(summarize([], since='2026-11-01', until='2026-11-15'))
    assert text.endswith('Window: from 2026-11-01T00:00:00Z until 2026-11-15T00:00:00Z.\n\nNo report counted.\n')
    assert 'Window: all dates.' in render_markdown(summarize([]))
    assert "summary 'x': must be a summary" in error_of(render_markdown, 'x')


# --- the filters, through a real Templar ---

@pytest.fixture(scope='module')
def templar():
    """A real Templar with reports and a policy to feed the filters."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    reports = clean_days(ok=10) + [report('google.com', 'google.com-17', '2026-11-17')]
    return Templar(loader=DataLoader(), variables={'reports': reports, 'policy': POLICY})


def test_filters_take_keyword_options(templar):
    summary = render(templar, "reports | mailsec.mta_sts.tlsrpt_summary(since='2026-11-20', domains=['example.com'])")
    # 2026-11-17 to 2026-11-19 and the duplicate of 2026-11-17 are before the window.
    assert (summary['reports'], summary['skipped']['outside_window']) == (11, 4)
    assert summary['window']['since'] == '2026-11-20T00:00:00Z'
    assert render(templar, "reports | mailsec.mta_sts.tlsrpt_summary | mailsec.mta_sts.tlsrpt_markdown").startswith(
        '# TLS-RPT summary\n\n14 reports from 1 organisation counted; skipped: 1 duplicate')
    verdict = render(templar, "reports | mailsec.mta_sts.tlsrpt_summary | mailsec.mta_sts.tlsrpt_enforce_gate("
                              "'example.com', policy, now='2026-12-01', min_sessions=140)")
    assert verdict['passed'] is True, verdict
    verdict = render(templar, "reports | mailsec.mta_sts.tlsrpt_summary | mailsec.mta_sts.tlsrpt_enforce_gate("
                              "domain='example.com', policy=policy, now='2026-12-01', min_sessions=141)")
    assert verdict['reasons'][0].startswith('only 140 sessions')


def test_every_filter_takes_keyword_options(templar):
    """The _wrap change that the TLS-RPT filters needed serves the older filters too (changelog 10-tlsrpt-summary)."""
    plan = render(templar, "['b.example', 'a.example'] | mailsec.mta_sts.acme_certificate_groups(limit=1)")
    assert plan['groups'] == {'group-0001': ['mta-sts.a.example'], 'group-0002': ['mta-sts.b.example']}
    assert render(templar, "'mx1.example.net' | mailsec.mta_sts.mx_match(patterns=['*.example.net'])") is True


def test_gate_filter_reads_the_clock_when_now_is_not_given(templar):
    verdict = render(templar, "{'domains': {}} | mailsec.mta_sts.tlsrpt_enforce_gate('example.com', policy)")
    today = datetime.datetime.now(UTC).date()
    assert verdict['evidence']['window']['last'] == (today - datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize('expression, message', [
    ("reports | mailsec.mta_sts.tlsrpt_summary(since='soon')", "since 'soon': must be a date YYYY-MM-DD"),
    ("reports | mailsec.mta_sts.tlsrpt_summary | mailsec.mta_sts.tlsrpt_enforce_gate('example.com', policy, days=0)",
     'tlsrpt_enforce_gate.days 0: must be a whole number of at least 1'),
    ("{'domains': {}} | mailsec.mta_sts.tlsrpt_enforce_gate('example.com', {'mode': 'enforce', 'max_age': 1})",
     'tlsrpt_enforce_gate.policy.mx []: at least one mx pattern is required'),
    ("[1] | mailsec.mta_sts.tlsrpt_markdown", "summary [1]: must be a summary"),
])
def test_filter_errors_name_the_option(templar, expression, message):
    from ansible.errors import AnsibleError
    with pytest.raises(AnsibleError) as err:
        render(templar, expression)
    assert message in str(err.value)


# --- the shipped corpus, through the parser ---

def corpus_summary(names, **options):
    from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import parse_report
    from tests.unit.tlsrpt_corpus import raw
    builder = SummaryBuilder(**options)
    for name in names:
        builder.add(parse_report(raw(name)), name)
    return builder.result()


def raw_totals(names, domain):
    """The sums straight from the JSON files: an oracle that shares no code with the summary."""
    from tests.unit.tlsrpt_corpus import report as raw_report
    successful = failed = 0
    by_type = {}
    for name in names:
        for entry in raw_report(name)['policies']:
            if entry['policy']['policy-domain'] == domain:
                successful += entry['summary']['total-successful-session-count']
                failed += entry['summary']['total-failure-session-count']
                for item in entry.get('failure-details', []):
                    by_type[item['result-type']] = by_type.get(item['result-type'], 0) + item['failed-session-count']
    return successful, failed, by_type


def test_corpus_summary_matches_the_json():
    from tests.unit.tlsrpt_corpus import NAMES
    summary = corpus_summary(NAMES + ('google-sts', 'microsoft-sts'))
    assert (summary['reports'], summary['duplicates']) == (len(NAMES), 2)
    for domain in ('example.com', 'example.net', 'company-y.example'):
        totals = summary['domains'][domain]
        successful, failed, by_type = raw_totals(NAMES, domain)
        assert (totals['successful_sessions'], totals['failed_sessions']) == (successful, failed)
        assert totals['failures_by_result_type'] == by_type
    net = summary['domains']['example.net']
    assert sorted(entry['policy_type'] for entry in net['policies']) == ['no-policy-found', 'sts', 'tlsa']
    # The DANE report's +02:00 start is 2026-11-01T00:00:00Z: its day is the 1st.
    [tlsa] = [entry for entry in net['policies'] if entry['policy_type'] == 'tlsa']
    assert [day['date'] for day in tlsa['daily']] == ['2026-11-01']
    assert 'Google Inc.' in summary['domains']['example.com']['organizations']


def test_corpus_gate_passes_on_the_clean_example_net_and_fails_on_example_com():
    from tests.unit.tlsrpt_corpus import NAMES
    summary = corpus_summary(NAMES)
    net = enforce_gate(summary, 'example.net', {'mode': 'enforce', 'mx': ['*.example.net'], 'max_age': 604800},
                       now='2026-11-03T08:00:00Z', days=2)
    assert net['passed'] is True, net
    assert net['evidence']['sessions'] == 640
    assert sorted(entry['policy_type'] for entry in net['ignored_policies']) == ['no-policy-found', 'tlsa']
    com = enforce_gate(summary, 'example.com', 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n',
                       now='2026-11-04', days=3)
    assert com['passed'] is False
    assert [reason.split(' ')[1] for reason in com['reasons']] == ['%', 'to']
    assert com['evidence']['forbidden_failures']['certificate-expired'] > 0
    # The minimal report names no MX pattern: it cannot be about the current policy.
    assert [entry['reports'] for entry in com['ignored_policies']] == [1]


def test_the_markdown_shown_in_the_docs_is_what_the_filter_renders():
    import os
    from tests.conftest import REPO
    with open(os.path.join(REPO, 'docs', 'tlsrpt-reports.md')) as handle:
        docs = handle.read()
    start = docs.index('```markdown\n', docs.index('## Markdown')) + len('```markdown\n')
    shown = docs[start:docs.index('```\n', start)]
    assert shown == render_markdown(corpus_summary(['google-sts', 'microsoft-sts', 'failure-error-code']))


def test_the_gate_messages_shown_in_the_docs_are_what_the_gate_says():
    import os
    from tests.conftest import REPO
    from tests.unit.tlsrpt_corpus import NAMES
    with open(os.path.join(REPO, 'docs', 'tlsrpt-reports.md')) as handle:
        docs = handle.read()
    passing = clean_days(ok=55) + clean_days(org='m', ok=55)
    passing[0]['policies'][0].update(failed_sessions=2, failure_details=[detail('starttls-not-supported', 2)])
    new_mx = dict(POLICY, mx=['mail.example.com', 'mx2.example.com'])
    messages = [
        gate(passing)['message'],
        gate([])['message'],
        gate(passing, new_mx)['message'],
        gate(clean_days(count=4))['message'],
        enforce_gate(corpus_summary(NAMES), 'example.com', POLICY, now='2026-11-04', days=3)['message'],
        gate(passing, new_mx)['ignored_policies'][0]['reason'],
    ]
    for message in messages:
        assert message in docs
