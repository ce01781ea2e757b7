"""tlsrpt_report_info reading a real Dovecot mailbox over imaps, through ansible-playbook.

Report mails (RFC 8460 §5.3, built from the corpus) are delivered by IMAP
APPEND; the module moves them to a folder, or records their UIDs in a state
file, or only reads them.  What the server holds afterwards is asked of the
server itself, not of the module.  The password is given as a play variable
(never on a command line) and looked for in everything a run prints.
"""

import json
import socket

import pytest

from tests.integration.playbook import run_playbook
from tests.lab.dovecot import DovecotLab
from tests.lab.netns import require_private_namespace
from tests.unit.tlsrpt_corpus import mime_message, raw, report

MODULE = 'mailsec.mta_sts.tlsrpt_report_info'
PROCESSED = 'Processed/TLS-RPT'

GOOGLE = mime_message([report('google-sts')])                      # gzip part
MICROSOFT = mime_message([report('microsoft-sts')], gzip=False)     # JSON part
DANE = mime_message([report('tlsa-dane')])
NEGATIVE_COUNT = mime_message([raw('bad/negative-count.json')])
NOT_A_REPORT = b'From: someone@example.org\r\nTo: tlsrpt@example.com\r\nSubject: hello\r\n\r\nno report here\r\n'


def imap_options(lab, **extra):
    options = dict(host=lab.address, port=lab.port, username=lab.user, password='{{ imap_password }}',
                   ca_file=lab.ca_file)
    options.update(extra)
    return options


def task(name, lab, imap=None, **options):
    """A task of the module on ``lab`` (``check_mode``, ``diff``, ``ignore_errors`` are task keywords)."""
    keywords = dict((key, options.pop(key)) for key in ('check_mode', 'diff', 'ignore_errors') if key in options)
    return dict(name=name, **{MODULE: dict(imap=imap or imap_options(lab), **options)}, **keywords)


def play(lab, tasks, **kwargs):
    run = run_playbook(tasks, play_vars={'imap_password': lab.password}, **kwargs)
    return run, dict((result['_task'], result) for result in run.results)


def example_com(result):
    return result['summary']['domains']['example.com']


def test_move_to_moves_every_examined_message_and_a_rerun_finds_nothing(dovecot):
    for message in (GOOGLE, MICROSOFT, GOOGLE, NEGATIVE_COUNT, NOT_A_REPORT):
        dovecot.deliver(message)
    delivered = dovecot.uids('INBOX')
    imap = imap_options(dovecot, move_to=PROCESSED)
    run, results = play(dovecot, [
        task('check', dovecot, imap, check_mode=True),
        task('move', dovecot, imap, diff=True),
        task('again', dovecot, imap),
    ])
    assert run.returncode == 0, run

    check = results['check']
    assert check['changed'] is True
    assert (check['imap']['new'], check['imap']['moved'], check['imap']['created_folder']) == (5, 5, True)

    moved = results['move']
    # All five still in INBOX and the folder still missing: check mode changed nothing.
    assert moved['changed'] is True
    assert (moved['imap']['messages'], moved['imap']['new'], moved['imap']['moved']) == (5, 5, 5)
    assert moved['imap']['created_folder'] is True
    summary = moved['summary']
    assert (summary['reports'], summary['duplicates']) == (2, 1)
    assert summary['organizations'] == ['Google Inc.', 'Microsoft Corporation']
    assert (example_com(moved)['successful_sessions'], example_com(moved)['failed_sessions']) == (1180 + 450, 2 + 3)
    url = 'imap://tlsrpt@127.0.0.1:993/INBOX;UIDVALIDITY=%d' % moved['imap']['uidvalidity']
    errors = dict((error['source'], error['reason']) for error in summary['errors'])
    bad_part, no_part = '%s/;UID=%d/;SECTION=2' % (url, delivered[3]), '%s/;UID=%d' % (url, delivered[4])
    assert set(errors) == {bad_part, no_part}
    assert 'total-failure-session-count -3: must be a non-negative integer' in errors[bad_part]
    assert 'no TLS-RPT report part' in errors[no_part]
    assert all('%s/;UID=%d' % (url, uid) in moved['diff']['prepared'] for uid in delivered)

    assert dovecot.uids('INBOX') == []
    assert len(dovecot.uids(PROCESSED)) == 5
    # Fetched with BODY.PEEK[]: none was marked read on the way.
    assert dovecot.uids(PROCESSED, 'SEEN') == []

    again = results['again']
    assert again['changed'] is False
    assert (again['imap']['messages'], again['imap']['new'], again['imap']['moved']) == (0, 0, 0)
    assert again['summary']['reports'] == 0


def test_without_move_to_the_state_file_records_the_uids_and_a_rerun_reads_only_new_mail(dovecot, tmp_path):
    mailbox = 'Reports/state'
    for message in (GOOGLE, DANE):
        dovecot.deliver(message, mailbox)
    state_file = str(tmp_path / 'imap-state.json')
    recorded = imap_options(dovecot, mailbox=mailbox, state_file=state_file)
    run, results = play(dovecot, [
        task('read only', dovecot, imap_options(dovecot, mailbox=mailbox)),
        task('check', dovecot, recorded, check_mode=True, diff=True),
        {'name': 'state after check', 'ansible.builtin.stat': {'path': state_file}},
        task('record', dovecot, recorded, diff=True),
        task('again', dovecot, recorded),
    ])
    assert run.returncode == 0, run

    read_only = results['read only']
    assert read_only['changed'] is False
    assert (read_only['imap']['new'], read_only['imap']['moved'], read_only['imap']['recorded']) == (2, 0, 0)
    assert read_only['summary']['reports'] == 2

    assert results['check']['changed'] is True
    assert results['check']['imap']['recorded'] == 2
    assert json.loads(results['check']['diff']['after'])['uids'] == dovecot.uids(mailbox)
    assert results['state after check']['stat']['exists'] is False

    record = results['record']
    assert record['changed'] is True
    assert (record['imap']['new'], record['imap']['recorded'], record['imap']['moved']) == (2, 2, 0)
    assert record['summary']['reports'] == 2
    assert record['diff']['before'] == ''
    with open(state_file) as handle:
        state = json.load(handle)
    uids = dovecot.uids(mailbox)
    assert state == {'mailbox': 'imap://tlsrpt@127.0.0.1:993/Reports/state',
                     'uidvalidity': record['imap']['uidvalidity'], 'uids': uids}
    assert record['diff']['after'] == open(state_file).read()
    assert dovecot.uids(mailbox, 'SEEN') == []

    again = results['again']
    assert again['changed'] is False
    assert (again['imap']['new'], again['imap']['skipped'], again['summary']['reports']) == (0, 2, 0)

    # One new mail; then a renumbered mailbox (another UIDVALIDITY) makes every message new again.
    dovecot.deliver(MICROSOFT, mailbox)
    renumbered = dict(state, uidvalidity=state['uidvalidity'] + 1)
    run, results = play(dovecot, [
        task('new mail', dovecot, recorded),
        {'name': 'renumber', 'ansible.builtin.copy': {'dest': state_file, 'content': json.dumps(renumbered)}},
        task('after renumbering', dovecot, recorded),
    ])
    assert run.returncode == 0, run
    new_mail = results['new mail']
    assert new_mail['changed'] is True
    assert (new_mail['imap']['new'], new_mail['imap']['recorded'], new_mail['imap']['skipped']) == (1, 1, 2)
    assert new_mail['summary']['organizations'] == ['Microsoft Corporation']
    after = results['after renumbering']
    assert after['imap']['state_reset'] is True
    assert (after['imap']['new'], after['summary']['reports']) == (3, 3)
    with open(state_file) as handle:
        assert json.load(handle)['uidvalidity'] == state['uidvalidity']


@pytest.fixture(scope='module')
def failures(dovecot, reports_ca, tmp_path_factory):
    """One -vvv playbook of everything that must fail (ignore_errors), and two reads that must not."""
    work = tmp_path_factory.mktemp('imap-failures')
    other_ca = reports_ca.untrusted.write_bundle(str(work / 'other-ca.pem'))
    bad_state = work / 'bad-state.json'
    bad_state.write_text('not json')
    wrong_password = 'Wrong-' + dovecot.password[::-1]
    dovecot.deliver(GOOGLE, 'Reports/big')
    dovecot.deliver(NOT_A_REPORT.replace(b'no report here', b'x' * 20000), 'Reports/big')
    big = imap_options(dovecot, mailbox='Reports/big')
    # Takes the connection (the kernel completes it) and never says a word.
    silent = socket.create_server(('127.0.0.1', 0))
    tasks = [
        task('wrong password', dovecot, imap_options(dovecot, password='{{ wrong_password }}'), ignore_errors=True),
        task('other CA', dovecot, imap_options(dovecot, ca_file=other_ca), ignore_errors=True),
        task('other name', dovecot, imap_options(dovecot, host='localhost'), ignore_errors=True),
        task('silent server', dovecot, imap_options(dovecot, port=silent.getsockname()[1], timeout=2),
             ignore_errors=True),
        task('no such mailbox', dovecot, imap_options(dovecot, mailbox='No such'), ignore_errors=True),
        task('bad state file', dovecot, imap_options(dovecot, state_file=str(bad_state)), ignore_errors=True),
        task('state file nowhere', dovecot, imap_options(dovecot, state_file=str(work / 'none' / 'state.json')),
             ignore_errors=True),
        task('state file and move_to', dovecot,
             imap_options(dovecot, state_file=str(bad_state), move_to='Elsewhere'), ignore_errors=True),
        task('unvalidated', dovecot, dict(big, ca_file=other_ca, validate_certs=False)),
        task('oversized', dovecot, big, max_report_size=2000),
    ]
    with silent:
        run = run_playbook(tasks, play_vars={'imap_password': dovecot.password, 'wrong_password': wrong_password},
                           verbosity=3)
    results = dict((result['_task'], result) for result in run.results)
    return run, results, wrong_password


def test_a_wrong_password_fails_clearly_and_no_password_shows_even_with_vvv(dovecot, failures):
    run, results, wrong_password = failures
    assert run.returncode == 0, run     # every failure here is ignored; each is looked at below
    failed = results['wrong password']
    assert failed['_status'] == 'failed'
    assert failed['msg'].startswith('IMAP 127.0.0.1:993 login: as tlsrpt refused')
    assert 'AUTHENTICATIONFAILED' in failed['msg']
    # -vvv shows the module arguments: the password only masked.
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in run.output
    everything = run.output + json.dumps(run.results)
    assert wrong_password not in everything
    assert dovecot.password not in everything


def test_a_certificate_the_ca_file_does_not_vouch_for_fails_validation(failures):
    _run, results, _password = failures
    for name, reason in (('other CA', 'unable to get local issuer certificate'),
                         ('other name', "Hostname mismatch, certificate is not valid for 'localhost'")):
        assert results[name]['_status'] == 'failed'
        assert 'the server certificate is not valid: ' + reason in results[name]['msg']
        assert 'imap.ca_file' in results[name]['msg']


def test_a_missing_mailbox_a_silent_server_and_a_bad_state_file_fail_naming_the_option(failures):
    _run, results, _password = failures
    assert results['silent server']['_status'] == 'failed'
    assert 'no answer within 2 seconds (imap.timeout)' in results['silent server']['msg']
    assert results['no such mailbox']['_status'] == 'failed'
    assert 'No such cannot be opened (imap.mailbox)' in results['no such mailbox']['msg']
    assert results['bad state file']['msg'].startswith('imap.state_file ')
    assert 'is not JSON' in results['bad state file']['msg']
    assert results['state file nowhere']['msg'].endswith("state.json': its directory does not exist")
    assert 'cannot be used with imap.move_to' in results['state file and move_to']['msg']


def test_validate_certs_false_reads_anyway_and_an_oversized_mail_is_an_error_not_a_download(failures):
    _run, results, _password = failures
    unvalidated = results['unvalidated']
    assert unvalidated['_status'] == 'ok'
    assert (unvalidated['imap']['new'], unvalidated['summary']['reports']) == (2, 1)
    oversized = results['oversized']
    # max_report_size 2000: a mail may have 4 times that; the 20 kB one is refused, the report mail read.
    assert oversized['summary']['reports'] == 1
    (error,) = oversized['summary']['errors']
    assert error['source'].endswith('/;UID=2')
    assert 'more than 8000 bytes' in error['reason']


WITHOUT_MOVE = {
    'uidplus': ['IMAP4rev1', 'LITERAL+', 'UIDPLUS'],
    'plain': ['IMAP4rev1', 'LITERAL+'],
}


@pytest.fixture(scope='module', params=sorted(WITHOUT_MOVE))
def dovecot_without_move(request, reports_ca, tmp_path_factory):
    """A second Dovecot, on port 1993, that announces no MOVE (and, for 'plain', no UIDPLUS)."""
    require_private_namespace('the Dovecot lab (tests/reports)')
    with DovecotLab(str(tmp_path_factory.mktemp('dovecot-without-move')), reports_ca, port=1993,
                    capabilities=WITHOUT_MOVE[request.param]) as lab:
        yield lab


def test_without_move_the_messages_are_copied_flagged_and_expunged(dovecot_without_move):
    lab = dovecot_without_move
    for message in (GOOGLE, MICROSOFT):
        lab.deliver(message)
    run, results = play(lab, [task('move', lab, imap_options(lab, move_to=PROCESSED))])
    assert run.returncode == 0, run
    assert results['move']['imap']['moved'] == 2
    assert results['move']['summary']['reports'] == 2
    assert lab.uids('INBOX') == []
    assert len(lab.uids(PROCESSED)) == 2
    # The copies were made before the originals were flagged: they are neither deleted nor read.
    assert lab.uids(PROCESSED, 'DELETED') == []
    assert lab.uids(PROCESSED, 'SEEN') == []
