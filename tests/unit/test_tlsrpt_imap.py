"""The pure parts of the IMAP report source: option checks, IMAP arguments and URLs, the state file.

The reading itself is tested against a real Dovecot in tests/reports/test_imap.py.
"""

import imaplib
import socket

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_imap import (
    MailboxReader, check_options, mailbox_argument, mailbox_url, message_url, parse_state, recorded_uids, scrub,
    state_text, uid_set)

URL = 'imap://tlsrpt@imap.example.com:993/INBOX'


def options(**changes):
    base = dict(host='imap.example.com', port=993, username='tlsrpt', password='pw', mailbox='INBOX',
                move_to=None, state_file=None, ca_file=None, validate_certs=True, timeout=30)
    base.update(changes)
    return base


@pytest.mark.parametrize('uids, expected', [
    ([], ''), ([5], '5'), ([3, 1, 2, 7], '1:3,7'), ([1, 2, 4, 5, 9], '1:2,4:5,9'),
])
def test_uid_set_joins_runs_into_ranges(uids, expected):
    assert uid_set(uids) == expected


@pytest.mark.parametrize('name, argument', [
    ('INBOX', 'INBOX'), ('Processed/TLS-RPT', 'Processed/TLS-RPT'), ('TLS reports', '"TLS reports"'),
    ('a"b', '"a\\"b"'), ('back\\slash', '"back\\\\slash"'), ('100%', '"100%"'), ('', '""'),
])
def test_mailbox_names_are_quoted_when_imap_needs_it(name, argument):
    assert mailbox_argument(name) == argument


def test_urls_follow_rfc5092_and_never_carry_the_password():
    url = mailbox_url(options(username='reports@example.com', mailbox='TLS reports/2026', password='s3cret'), 42)
    assert url == 'imap://reports%40example.com@imap.example.com:993/TLS%20reports/2026;UIDVALIDITY=42'
    assert message_url(url, 7) == url + '/;UID=7'
    assert mailbox_url(options(host='::1', port=1993)) == 'imap://tlsrpt@[::1]:1993/INBOX'


@pytest.mark.parametrize('changes, field, rule', [
    (dict(port=0), 'imap.port', 'TCP port'),
    (dict(port=65536), 'imap.port', 'TCP port'),
    (dict(timeout=0), 'imap.timeout', 'positive'),
    (dict(host=''), 'imap.host', 'must not be empty'),
    (dict(mailbox=' INBOX'), 'imap.mailbox', 'spaces'),
    (dict(move_to='Trait\u00e9s'), 'imap.move_to', 'ASCII'),
    (dict(move_to='Done', state_file='/tmp/state.json'), 'imap.state_file', 'cannot be used with imap.move_to'),
    (dict(move_to='INBOX'), 'imap.move_to', 'another mailbox'),
])
def test_bad_options_are_refused_naming_the_field(changes, field, rule):
    with pytest.raises(ValidationError) as caught:
        check_options(options(**changes))
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_good_options_pass():
    check_options(options(move_to='Processed/TLS-RPT'))
    check_options(options(state_file='/var/lib/tlsrpt/state.json'))


def test_the_state_file_round_trips_and_starts_afresh_on_another_uidvalidity_or_mailbox():
    text = state_text(URL, 7, {5, 1, 3})
    state = parse_state(text, '/s.json')
    assert state == {'mailbox': URL, 'uidvalidity': 7, 'uids': [1, 3, 5]}
    assert recorded_uids(state, URL, 7) == {1, 3, 5}
    assert recorded_uids(state, URL, 8) == set()
    assert recorded_uids(state, URL.replace('INBOX', 'Archive'), 7) == set()
    assert recorded_uids(None, URL, 7) == set()
    assert parse_state(None, '/s.json') is None


@pytest.mark.parametrize('text, rule', [
    ('not json', 'is not JSON'),
    ('[]', 'is not a state file'),
    ('{"mailbox": "imap://x", "uidvalidity": 1}', 'is not a state file'),
    ('{"mailbox": "imap://x", "uidvalidity": true, "uids": []}', 'is not a state file'),
    ('{"mailbox": "imap://x", "uidvalidity": 1, "uids": [1, "2"]}', 'is not a state file'),
    ('{"uidvalidity": 1, "uids": [1]}', 'is not a state file'),
])
def test_a_state_file_of_another_shape_is_refused(text, rule):
    with pytest.raises(ValidationError) as caught:
        parse_state(text, '/s.json')
    assert caught.value.field == 'imap.state_file'
    assert rule in caught.value.rule


def test_scrub_masks_every_occurrence():
    assert scrub('LOGIN tlsrpt hunter2: hunter2 refused', 'hunter2') == 'LOGIN tlsrpt ********: ******** refused'
    assert scrub('nothing to hide', '') == 'nothing to hide'


@pytest.mark.parametrize('data, words', [
    (ConnectionResetError(104, 'Connection reset by peer'), 'Connection reset by peer'),
    (socket.timeout('timed out'), 'timed out'),
    (imaplib.IMAP4.error(b'[AUTHENTICATIONFAILED] Failed.'), '[AUTHENTICATIONFAILED] Failed.'),
    ([b"Mailbox doesn't exist: Nope", None], "Mailbox doesn't exist: Nope"),
    ([None], '(no text)'),
])
def test_errors_quote_the_server_or_the_system_never_an_errno(data, words):
    assert MailboxReader._words(data) == words  # pylint: disable=protected-access
