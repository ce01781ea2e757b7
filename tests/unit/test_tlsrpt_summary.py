"""The TLS-RPT summary, its Markdown and the enforce gate (pure), on normalised reports.

Reports are built here as parse_report returns them; the corpus tests at the end run the
shipped reports through the parser first.
"""

import datetime
import tracemalloc

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_summary import (
    SummaryBuilder, enforce_gate, parse_since, parse_time, since_days_ago, summarize,
)

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
        report('microsoft.com', 'm1', '2026-11-21', [policy(ok=50), policy('example.net', ok=7, lines=[],
                                                                              mx_host=['*.example.net'])]),
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
    ([{'organization-name': 'raw'}], "reports[0] ['organization-name']: must be a normalised report"),
    ([dict(report(), date_range={'start': 'yesterday', 'end': '2026-11-20T00:00:00Z'})],
     "reports[0].date_range.start 'yesterday': must be a date YYYY-MM-DD or an RFC 3339 date-time"),
    ([report(policies=[{'policy_type': 'sts'}])], 'reports[0].policies[0]'),
])
def test_bad_input_is_refused_naming_the_place(reports, message):
    assert message in error_of(summarize, reports)


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
    assert parse_since('2026-11-17T10:00:00.5+01:00', NOW) == datetime.datetime(2026, 11, 17, 9, 0, 0, 500000, tzinfo=UTC)
    assert parse_since('2016-12-31T23:59:60Z', NOW) == datetime.datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert "since '2026-12-02': is in the future" in error_of(parse_since, '2026-12-02', NOW)
    for bad in ('2026-11-31', '2026-11-17T10:00:00', '2026-11-17T10:00:00+24:00', '17.11.2026', 20261117):
        assert "since %r: must be a date YYYY-MM-DD or an RFC 3339" % (bad,) in error_of(parse_since, bad, NOW)


def test_since_days_ago_starts_at_midnight_utc():
    assert since_days_ago(14, NOW) == datetime.datetime(2026, 11, 17, tzinfo=UTC)
    assert "days 0: must be a whole number of at least 1" in error_of(since_days_ago, 0, NOW)
    assert parse_time(datetime.date(2026, 1, 2), 'x') == datetime.datetime(2026, 1, 2, tzinfo=UTC)
