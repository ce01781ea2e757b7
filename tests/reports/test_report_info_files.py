"""tlsrpt_report_info over files, mails and a maildir, through a real ansible-playbook run.

One playbook reads a directory holding the corpus in every form a mail admin ends up with (plain JSON,
.json.gz, .gz, .eml, a maildir, a duplicate delivery, a malformed report, a gzip bomb, a mail without a
report, an unrelated file), with and without the window and domain filters, judges the enforce gate on
reports dated the last few days, runs in check mode, and fails on bad options, naming the option.
Every expected number below is worked out by hand from the corpus files.
"""

import datetime
import email
import email.policy
import gzip
import json
import os
from email.message import EmailMessage

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_sources import NO_REPORT_PART
from tests.integration.playbook import run_playbook
from tests.unit.tlsrpt_corpus import BAD_DIR, gzip_bomb, gzip_bytes, mime_message, raw, report

MODULE = 'mailsec.mta_sts.tlsrpt_report_info'
TODAY = datetime.datetime.now(datetime.timezone.utc).date()
ENFORCE_EXAMPLE_COM = {'mode': 'enforce', 'mx': ['mail.example.com'], 'max_age': 604800}
# Nothing listens on the discard port: a task that got as far as connecting would fail with another message.
UNREACHABLE_IMAP = {'host': '127.0.0.1', 'port': 9, 'username': 'tlsrpt', 'password': 'never-sent-anywhere'}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(data)


def dated(name, day, **changes):
    """A corpus report moved to ``day`` (UTC), with its top level or first policy changed."""
    document = report(name)
    document['date-range'] = {'start-datetime': '%sT00:00:00Z' % day, 'end-datetime': '%sT23:59:59Z' % day}
    for key, value in changes.items():
        if key in document:
            document[key] = value
        else:
            document['policies'][0].update({key: value})
    return json.dumps(document).encode()


def forwarded_mail():
    """A report mail forwarded as an attachment, with a second report added under a generic type:
    the DANE report is part 2.1.2, the octet-stream one (picked by its name) part 2.2."""
    inner = email.message_from_bytes(mime_message([raw('tlsa-dane')]), policy=email.policy.default)
    inner.add_attachment(gzip_bytes(raw('no-policy-found')), maintype='application', subtype='octet-stream',
                         filename='small-sender.example!example.net!1793491200!1793577599.json.gz')
    outer = EmailMessage()
    outer['Subject'] = 'Fwd: Report Domain: example.net'
    outer.set_content('Forwarded by the postmaster.')
    outer.add_attachment(inner)
    return outer.as_bytes()


def build_archive(root):
    """The corpus as files, mails and a maildir. Read in this order (sorted walk):

    bad/negative-count.json  error                      maildir/cur/...  Relay Networks, example.net sts 640/0
    bomb.json.gz             error (gzip bomb)           maildir/new/...  Google again: a duplicate
    google-sts.json          Google, example.com 1180/2  maildir/tmp/...  never read
    legacy.gz                Legacy, example.com 96/4    microsoft-sts.json.gz  Microsoft, example.com 450/3
    mail.eml part 2.1.2, 2.2 DANE Sender (tlsa 310/5), Small Sender (no-policy-found 77/0), both example.net
    no-report.eml            error                      notes.txt        skipped
    loop -> .                not followed again

    Beside it, ``extra/report-20261103`` (the minimal report, a name the walk would skip) and
    ``extra/long-type.json`` (a 5000-character policy type).
    """
    archive = os.path.join(root, 'archive')
    with open(os.path.join(BAD_DIR, 'negative-count.json'), 'rb') as handle:
        write(os.path.join(archive, 'bad', 'negative-count.json'), handle.read())
    write(os.path.join(archive, 'bomb.json.gz'), gzip_bomb(64 * 1024 * 1024))
    write(os.path.join(archive, 'google-sts.json'), raw('google-sts'))
    write(os.path.join(archive, 'legacy.gz'), gzip_bytes(raw('failure-error-code')))
    write(os.path.join(archive, 'mail.eml'), forwarded_mail())
    write(os.path.join(archive, 'maildir', 'cur', '1793577600.M1P100.mx:2,S'), mime_message([raw('mx-host-string')]))
    write(os.path.join(archive, 'maildir', 'new', '1793577700.M2P100.mx'), mime_message([raw('google-sts')], gzip=False))
    write(os.path.join(archive, 'maildir', 'tmp', '1793577800.M3P100.mx'), b'Subject: half delivered\n')
    write(os.path.join(archive, 'microsoft-sts.json.gz'), gzip.compress(raw('microsoft-sts')))
    write(os.path.join(archive, 'no-report.eml'), b'From: someone@example.org\nSubject: hello\n\nNot a report.\n')
    write(os.path.join(archive, 'notes.txt'), b'reports are saved here by procmail\n')
    os.symlink(archive, os.path.join(archive, 'loop'))
    write(os.path.join(root, 'extra', 'report-20261103'), raw('minimal'))
    long_type = report('minimal')
    long_type['policies'][0]['policy']['policy-type'] = 'x' * 5000
    write(os.path.join(root, 'extra', 'long-type.json'), json.dumps(long_type).encode())

    # For the gate, whose window is the last days before today: reports of yesterday and the day before.
    recent = os.path.join(root, 'recent')
    yesterday, day_before = TODAY - datetime.timedelta(days=1), TODAY - datetime.timedelta(days=2)
    write(os.path.join(recent, 'google.json'), dated('google-sts', yesterday, **{
        'failure-details': [], 'summary': {'total-successful-session-count': 1180, 'total-failure-session-count': 0}}))
    write(os.path.join(recent, 'relay.json.gz'), gzip_bytes(dated('mx-host-string', day_before)))
    # About the policy before the current one (another MX): its certificate failures must not count.
    old_policy = dict(report('microsoft-sts')['policies'][0]['policy'], **{'mx-host': 'old-mx.example.com'})
    write(os.path.join(recent, 'old-policy.json'),
          dated('microsoft-sts', yesterday, **{'report-id': 'old-policy', 'policy': old_policy}))
    return archive, recent


def task(name, check_mode=False, ignore_errors=False, **args):
    entry = {'name': name, MODULE: args}
    if check_mode:
        entry['check_mode'] = True
    if ignore_errors:
        entry['ignore_errors'] = True
    return entry


BAD_OPTIONS = [
    ('bad since', dict(since='last tuesday', imap=UNREACHABLE_IMAP), "since 'last tuesday': must be a date"),
    ('since and days', dict(since='2026-11-01', days=3), 'parameters are mutually exclusive: since|days'),
    ('no source', dict(days=3, paths=None), 'one of the following is required: paths, imap'),
    ('days zero', dict(days=0), 'days 0: must be a whole number of at least 1'),
    ('bad domain', dict(domains=['not a domain!']), "domains[0] 'not a domain!'"),
    ('bad size', dict(max_report_size=0), 'max_report_size 0: must be a number of bytes of at least 1'),
    ('missing path', dict(paths=['/nonexistent/tlsrpt'], imap=UNREACHABLE_IMAP),
     "paths[0] '/nonexistent/tlsrpt': does not exist"),
    ('imap port', dict(imap=dict(UNREACHABLE_IMAP, port=70000)), 'imap.port 70000: must be a TCP port, 1 to 65535'),
    ('imap password', dict(imap={'host': '127.0.0.1', 'username': 'tlsrpt'}),
     'missing required arguments: password found in imap'),
    ('no gate policy', dict(enforce_gate={'policies': {}}), 'enforce_gate.policies {}: must name at least one domain'),
    ('gate policy without mx', dict(enforce_gate={'policies': {'example.com': {'mode': 'enforce', 'max_age': 604800}}},
                                    imap=UNREACHABLE_IMAP), 'enforce_gate.policies.example.com'),
    ('gate rate', dict(enforce_gate={'policies': {'example.com': ENFORCE_EXAMPLE_COM}, 'max_failure_rate': 150}),
     'enforce_gate.max_failure_rate 150.0: must be a number of percent from 0 to 100'),
    ('gate domain not read', dict(domains=['example.net'], enforce_gate={'policies': {'example.com': ENFORCE_EXAMPLE_COM}}),
     "enforce_gate.policies.example.com 'example.com': is not among domains"),
]


@pytest.fixture(scope='module')
def play(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tlsrpt-files'))
    archive, recent = build_archive(root)
    days_to_nov_2 = (TODAY - datetime.date(2026, 11, 2)).days
    tasks = [
        task('all', paths=[archive]),
        task('example.net only', paths=[archive], domains=['EXAMPLE.NET.']),
        task('since', paths=[archive], since='2026-11-02'),
        task('days', paths=[archive], days=days_to_nov_2),
        task('check mode', check_mode=True, paths=[archive]),
        task('files past the cap', max_report_size=100,
             paths=[os.path.join(archive, name) for name in ('google-sts.json', 'mail.eml', 'bomb.json.gz')]),
        task('a maildir folder and named files', paths=[os.path.join(archive, 'maildir', 'cur'),
                                                        os.path.join(root, 'extra', 'report-20261103'),
                                                        os.path.join(root, 'extra', 'long-type.json')]),
        {'name': 'sources from module_defaults', 'module_defaults': {'group/mailsec.mta_sts.tlsrpt': {'paths': [recent]}},
         MODULE: {'domains': ['example.com']}},
        task('gate: one passes, one has no report about its policy', paths=[recent], enforce_gate={'policies': {
            'example.com': ENFORCE_EXAMPLE_COM,
            'example.net': 'version: STSv1\nmode: enforce\nmx: mx1.example.net\nmax_age: 604800\n'}}),
        task('gate: passes', paths=[recent], enforce_gate={'policies': {'example.com': ENFORCE_EXAMPLE_COM}}),
        task('gate: a summary shorter than the gate warns', paths=[recent], days=1,
             enforce_gate={'policies': {'example.com': ENFORCE_EXAMPLE_COM}}),
        task('gate: too few sessions', paths=[recent], enforce_gate={
            'policies': {'example.net': {'mode': 'enforce', 'mx': ['*.example.net'], 'max_age': 604800}},
            'min_sessions': 1000}),
    ]
    for name, args, _message in BAD_OPTIONS:
        args = dict((key, value) for key, value in dict({'paths': [recent]}, **args).items() if value is not None)
        tasks.append(task(name, ignore_errors=True, **args))
    run = run_playbook(tasks, workdir=root)
    assert run.returncode == 0, run
    results = dict((result['_task'], result) for result in run.results)
    assert sorted(results) == sorted(entry['name'] for entry in tasks), run
    return archive, results


def test_every_report_of_the_archive_is_summed_up_once_and_the_bad_ones_are_listed(play):
    archive, results = play
    result = results['all']
    assert result['_status'] == 'ok' and result['changed'] is False
    summary = result['summary']
    assert summary['reports'] == 6
    assert summary['duplicates'] == 1
    assert summary['organizations'] == ['DANE Sender Mail', 'Google Inc.', 'Legacy Mail Systems',
                                        'Microsoft Corporation', 'Relay Networks', 'Small Sender Co']
    assert [error['source'] for error in summary['errors']] == [
        os.path.join(archive, 'bad', 'negative-count.json'), os.path.join(archive, 'bomb.json.gz'),
        os.path.join(archive, 'no-report.eml')]
    reasons = [error['reason'] for error in summary['errors']]
    assert reasons[0] == 'policies[0].summary.total-failure-session-count -3: must be a non-negative integer'
    assert reasons[1].startswith('decompresses to more than 10485760 bytes, the cap')
    assert reasons[2] == NO_REPORT_PART
    assert result['skipped_files'] == 1

    com, net = summary['domains']['example.com'], summary['domains']['example.net']
    assert sorted(summary['domains']) == ['example.com', 'example.net']
    assert (com['reports'], com['successful_sessions'], com['failed_sessions']) == (3, 1180 + 450 + 96, 2 + 3 + 4)
    assert com['failure_rate'] == pytest.approx(9 * 100.0 / 1735)
    assert com['organizations'] == ['Google Inc.', 'Legacy Mail Systems', 'Microsoft Corporation']
    assert com['failures_by_result_type'] == {'certificate-expired': 2, 'certificate-host-mismatch': 3,
                                              'certificate-not-trusted': 1, 'validation-failure': 3}
    assert (com['first'], com['last']) == ('2026-11-01T00:00:00Z', '2026-11-02T23:59:59Z')
    assert (net['reports'], net['successful_sessions'], net['failed_sessions']) == (3, 310 + 77 + 640, 5)
    assert net['failures_by_result_type'] == {'dnssec-invalid': 1, 'tlsa-invalid': 4}
    assert sorted(policy['policy_type'] for policy in net['policies']) == ['no-policy-found', 'sts', 'tlsa']

    markdown = result['markdown']
    assert '## example.com' in markdown and '## example.net' in markdown
    assert '| 3 | Google Inc., Legacy Mail Systems, Microsoft Corporation | 1726 | 9 | 0.52 % |' in markdown
    assert 'no-report.eml' in markdown


def test_the_domains_filter_keeps_only_their_policies(play):
    summary = play[1]['example.net only']['summary']
    assert sorted(summary['domains']) == ['example.net']
    assert summary['reports'] == 3
    assert summary['domains']['example.net']['successful_sessions'] == 1027


@pytest.mark.parametrize('name', ['since', 'days'])
def test_since_and_days_count_only_reports_reaching_into_the_window(play, name):
    summary = play[1][name]['summary']
    assert summary['window'] == {'since': '2026-11-02T00:00:00Z', 'until': None}
    # Only Legacy (example.com, 2026-11-02) and Relay Networks (example.net, 2026-11-02); the tlsa report's
    # +02:00 range ends at 2026-11-01T23:59:59Z, before the window.
    assert summary['reports'] == 2
    assert summary['organizations'] == ['Legacy Mail Systems', 'Relay Networks']
    assert summary['domains']['example.com']['successful_sessions'] == 96
    assert summary['domains']['example.net']['successful_sessions'] == 640


def test_check_mode_reads_the_same_and_changes_nothing(play):
    result = play[1]['check mode']
    assert result['_status'] == 'ok' and result['changed'] is False
    assert result['summary'] == play[1]['all']['summary']


def test_files_past_max_report_size_are_errors_not_failures(play):
    archive, results = play
    result = results['files past the cap']
    assert result['_status'] == 'ok'
    rule = 'the file has %d bytes, more than the %d this kind of file may have (max_report_size)'
    assert result['summary']['errors'] == [
        {'source': os.path.join(archive, 'google-sts.json'), 'reason': rule % (len(raw('google-sts')), 100)},
        # A mail may have four times max_report_size.
        {'source': os.path.join(archive, 'mail.eml'),
         'reason': rule % (os.path.getsize(os.path.join(archive, 'mail.eml')), 400)},
        # gzip: more than a report of 100 bytes can compress to (100 + 1 % + 1 KiB), so it is not even opened.
        {'source': os.path.join(archive, 'bomb.json.gz'),
         'reason': rule % (os.path.getsize(os.path.join(archive, 'bomb.json.gz')), 1125)}]


def test_a_maildir_folder_and_files_named_by_the_user_are_read_whatever_their_names(play):
    archive, results = play
    summary = results['a maildir folder and named files']['summary']
    assert summary['organizations'] == ['Minimal Sender', 'Relay Networks']
    # The reason is one line: the field and the rule, without the 5000 characters of the value.
    assert summary['errors'] == [{
        'source': os.path.join(os.path.dirname(archive), 'extra', 'long-type.json'),
        'reason': 'policies[0].policy.policy-type: must be one of sts, tlsa, no-policy-found'}]


def test_module_defaults_sets_the_sources_for_the_tlsrpt_group(play):
    summary = play[1]['sources from module_defaults']['summary']
    # recent/: Google's report and the old policy's, both about example.com.
    assert summary['reports'] == 2 and sorted(summary['domains']) == ['example.com']


def test_the_gate_counts_only_reports_about_the_policy_to_enforce(play):
    result = play[1]['gate: one passes, one has no report about its policy']
    assert result['gate_passed'] is False
    com, net = result['gate']['example.com'], result['gate']['example.net']
    assert com['passed'] is True and com['reasons'] == []
    assert com['evidence']['sessions'] == 1180 and com['evidence']['reports'] == 1
    # The old policy's report (another MX, certificate failures) is set aside, with the reason.
    (ignored,) = com['ignored_policies']
    assert ignored['mx_host'] == ['old-mx.example.com'] and 'differ' in ignored['reason']
    assert net['passed'] is False
    assert net['reasons'][0].startswith("no TLS-RPT report about example.net's policy (mx: mx1.example.net)")
    assert play[1]['gate: passes']['gate_passed'] is True
    assert 'warnings' not in play[1]['gate: passes']


def test_a_summary_window_shorter_than_the_gate_s_is_warned_about(play):
    result = play[1]['gate: a summary shorter than the gate warns']
    (warning,) = result['warnings']
    assert warning == ('enforce_gate.days looks back to %sT00:00:00Z, but since/days start the summary at %sT00:00:00Z: '
                       'the gate judges only the reports from then on'
                       % (TODAY - datetime.timedelta(days=14), TODAY - datetime.timedelta(days=1)))
    # The day before yesterday (the relay's example.net report) is not in the summary the gate judges.
    assert result['summary']['reports'] == 2 and sorted(result['summary']['domains']) == ['example.com']


def test_the_gate_fails_with_too_few_sessions_and_says_so(play):
    result = play[1]['gate: too few sessions']
    assert result['gate_passed'] is False
    assert result['gate']['example.net']['reasons'] == [
        'only 640 sessions reported for example.net over the last 14 days (%s to %s); at least 1000 are needed'
        % (TODAY - datetime.timedelta(days=14), TODAY - datetime.timedelta(days=1))]


@pytest.mark.parametrize('name, message', [(name, message) for name, _args, message in BAD_OPTIONS])
def test_bad_options_fail_naming_the_option(play, name, message):
    result = play[1][name]
    assert result['_status'] == 'failed'
    assert message in result['msg']
    assert 'never-sent-anywhere' not in json.dumps(result)
