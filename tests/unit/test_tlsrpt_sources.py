"""Report sources: picking the report parts of a mail (pure), and walking files, mails and maildirs."""

import base64
import gzip
import json
import os
from email.message import EmailMessage

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_sources import (
    NO_REPORT_PART, ReportError, iter_path, part_source, reports_in_message,
)
from tests.unit.tlsrpt_corpus import gzip_bomb, gzip_bytes, mime_message, raw

MAX = 64 * 1024


def report_json(report_id, org='Example Sender'):
    return json.dumps({
        'organization-name': org, 'report-id': report_id, 'contact-info': 'tlsrpt@sender.example',
        'date-range': {'start-datetime': '2026-11-01T00:00:00Z', 'end-datetime': '2026-11-01T23:59:59Z'},
        'policies': [{'policy': {'policy-type': 'sts', 'policy-domain': 'example.com',
                                 'policy-string': ['version: STSv1', 'mode: testing', 'mx: mail.example.com',
                                                   'max_age: 86400'], 'mx-host': ['mail.example.com']},
                      'summary': {'total-successful-session-count': 10, 'total-failure-session-count': 0}}],
    }).encode()


def report_mail(*attachments, **headers):
    """A report mail as RFC 8460 §5.3 has it: a text part, then one attachment per (bytes, type, name)."""
    message = EmailMessage()
    message['From'] = 'noreply-smtp-tls-reporting@sender.example'
    message['To'] = 'tlsrpt@example.com'
    message['Subject'] = headers.get('subject', 'Report Domain: example.com Submitter: sender.example')
    message['TLS-Report-Domain'] = 'example.com'
    message['TLS-Report-Submitter'] = 'sender.example'
    message.set_content('This is an aggregate TLS report from sender.example')
    for data, content_type, name in attachments:
        maintype, subtype = content_type.split('/')
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if attachments:
        message.set_type('multipart/report')
        message.set_param('report-type', 'tlsrpt')
    return message


def reports_of(message, max_bytes=MAX):
    data = message if isinstance(message, bytes) else message.as_bytes()
    return [(label, str(report) if isinstance(report, ReportError) else report)
            for label, report in reports_in_message(data, max_bytes)]


def test_a_gzip_part_and_a_json_part_give_two_reports_in_order():
    mail = report_mail((gzip.compress(report_json('r1')), 'application/tlsrpt+gzip', 'r1.json.gz'),
                       (report_json('r2'), 'application/tlsrpt+json', 'r2.json'))
    assert reports_of(mail) == [('2', report_json('r1')), ('3', report_json('r2'))]


def test_a_part_is_picked_by_its_type_even_without_a_file_name():
    mail = report_mail((gzip.compress(report_json('r1')), 'application/tlsrpt+gzip', None))
    assert reports_of(mail) == [('2', report_json('r1'))]


@pytest.mark.parametrize('content_type, name', [
    ('application/octet-stream', 'sender.example!example.com!1793491200!1793577599.json.gz'),
    ('application/gzip', 'report.GZ'),
    ('application/octet-stream', 'report.json'),
])
def test_an_attachment_with_another_type_is_picked_by_its_name(content_type, name):
    data = report_json('r1') if name.endswith('.json') else gzip.compress(report_json('r1'))
    assert reports_of(report_mail((data, content_type, name))) == [('2', report_json('r1'))]


def test_other_attachments_and_the_text_part_are_not_reports():
    mail = report_mail((b'%PDF-1.4', 'application/pdf', 'invoice.pdf'),
                       (report_json('r1'), 'application/tlsrpt+json', 'r1.json'))
    assert reports_of(mail) == [('3', report_json('r1'))]


def test_a_mail_without_a_report_part_is_one_error():
    mail = report_mail((b'%PDF-1.4', 'application/pdf', 'invoice.pdf'))
    assert reports_of(mail) == [(None, NO_REPORT_PART)]
    assert reports_of(b'not a mail at all') == [(None, NO_REPORT_PART)]


def test_nested_multiparts_and_a_forwarded_report_mail_are_opened_with_imap_section_numbers():
    inner = report_mail((gzip.compress(report_json('r1')), 'application/tlsrpt+gzip', 'r1.json.gz'))
    outer = EmailMessage()
    outer['Subject'] = 'Fwd: a report'
    outer.set_content('see the two reports below')
    outer.make_mixed()
    outer.attach(inner)  # multipart/report inside multipart/mixed: parts 2.1, 2.2
    forwarded = report_mail((report_json('r2'), 'application/tlsrpt+json', 'r2.json'))
    outer.attach(_rfc822(forwarded))  # message/rfc822 of a multipart: parts 3.1, 3.2
    assert reports_of(outer) == [('2.2', report_json('r1')), ('3.2', report_json('r2'))]


def _rfc822(message):
    wrapper = EmailMessage()
    wrapper.set_content(message)
    return wrapper


def test_a_report_that_is_a_whole_single_part_mail_is_section_1():
    message = EmailMessage()
    message['Subject'] = 'Report'
    message.set_content(report_json('r1'), maintype='application', subtype='tlsrpt+json')
    assert reports_of(message) == [('1', report_json('r1'))]


def test_each_part_is_capped_and_an_empty_part_is_an_error_while_the_others_are_read():
    mail = report_mail((gzip.compress(b' ' * (MAX + 1)), 'application/tlsrpt+gzip', 'bomb.json.gz'),
                       (b'', 'application/tlsrpt+json', 'empty.json'),
                       (report_json('r1'), 'application/tlsrpt+json', 'r1.json'))
    found = reports_of(mail)
    assert [label for label, _report in found] == ['2', '3', '4']
    assert str(MAX) in found[0][1] and 'decompress' in found[0][1]
    assert found[1][1] == 'the application/tlsrpt+json part is empty'
    assert found[2][1] == report_json('r1')


@pytest.mark.parametrize('source, label, expected', [
    ('/srv/tlsrpt/a.eml', '2', '/srv/tlsrpt/a.eml part 2'),
    ('/srv/tlsrpt/a.eml', None, '/srv/tlsrpt/a.eml'),
    ('imap://tlsrpt@mail.example.com:993/INBOX;UID=7', '1.2', 'imap://tlsrpt@mail.example.com:993/INBOX;UID=7/;SECTION=1.2'),
])
def test_part_source_names_the_part(source, label, expected):
    assert part_source(source, label) == expected


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(data)
    return path


def walk(path, max_bytes=MAX):
    skipped = []
    found = [(os.path.relpath(source, str(path)) if source != str(path) else '.',
              str(report) if isinstance(report, ReportError) else json.loads(report)['report-id'])
             for source, report in iter_path(str(path), max_bytes, skipped)]
    return found, sorted(os.path.relpath(name, str(path)) for name in skipped)


def test_a_directory_is_walked_recursively_in_sorted_order_reading_every_kind(tmp_path):
    write(tmp_path / 'b' / 'plain.json', report_json('plain'))
    write(tmp_path / 'b' / 'both.json.gz', gzip.compress(report_json('json.gz')))
    write(tmp_path / 'a.gz', gzip.compress(report_json('gz')))
    write(tmp_path / 'c' / 'mail.eml', report_mail((report_json('eml'), 'application/tlsrpt+json', 'x.json')).as_bytes())
    write(tmp_path / 'c' / 'README.txt', b'not a report')
    write(tmp_path / 'c' / 'dovecot-uidlist', b'3 V1 N2')
    assert walk(tmp_path) == ([('a.gz', 'gz'), ('b/both.json.gz', 'json.gz'), ('b/plain.json', 'plain'),
                               ('c/mail.eml part 2', 'eml')],
                              ['c/README.txt', 'c/dovecot-uidlist'])


def test_a_maildir_is_read_from_cur_and_new_but_never_tmp(tmp_path):
    maildir = tmp_path / 'Maildir'
    mail = report_mail((gzip.compress(report_json('cur')), 'application/tlsrpt+gzip', 'r.json.gz')).as_bytes()
    write(maildir / 'cur' / '1793491200.M1P2.mx:2,S', mail)
    write(maildir / 'new' / '1793491300.M2P2.mx', mail.replace(b'Subject:', b'X-New: 1\nSubject:'))
    write(maildir / 'tmp' / '1793491400.M3P2.mx', b'half delivered')
    write(maildir / '.Archive' / 'cur' / '1793400000.M9P2.mx:2,S', b'Subject: no report\n\nhello\n')
    write(maildir / '.Archive' / 'new' / '.keep', b'')
    write(maildir / 'dovecot.index.log', b'\x00\x01')
    found, skipped = walk(maildir)
    assert found == [('.Archive/cur/1793400000.M9P2.mx:2,S', NO_REPORT_PART),
                     ('.Archive/new/.keep', NO_REPORT_PART),
                     ('cur/1793491200.M1P2.mx:2,S part 2', 'cur'), ('new/1793491300.M2P2.mx part 2', 'cur')]
    assert skipped == ['dovecot.index.log']
    # A maildir's cur/ given on its own is a folder of mails too.
    assert walk(maildir / 'cur')[0] == [('1793491200.M1P2.mx:2,S part 2', 'cur')]


def test_a_file_named_by_the_user_is_read_whatever_its_name(tmp_path):
    for name, data, expected in [('report', report_json('sniffed json'), 'sniffed json'),
                                 ('report.bin', gzip.compress(report_json('sniffed gzip')), 'sniffed gzip')]:
        assert walk(write(tmp_path / name, data)) == ([('.', expected)], [])
    mail = report_mail((report_json('sniffed mail'), 'application/tlsrpt+json', 'r.json')).as_bytes()
    path = write(tmp_path / 'message', mail)
    assert list(iter_path(str(path), MAX)) == [(str(path) + ' part 2', report_json('sniffed mail'))]


def test_a_file_past_its_cap_is_refused_without_being_read(tmp_path, monkeypatch):
    big = write(tmp_path / 'big.json', b' ' * (MAX + 1))
    write(tmp_path / 'small.json', report_json('small'))
    reads = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        real_read = handle.read
        reads.append(path)
        handle.read = lambda *a: reads.append(('read', path)) or real_read(*a)
        return handle

    monkeypatch.setattr('builtins.open', counting_open)
    found, _skipped = walk(tmp_path)
    assert found[0] == ('big.json', 'the file has %d bytes, more than the %d this kind of file may have '
                                    '(max_report_size)' % (MAX + 1, MAX))
    assert found[1] == ('small.json', 'small')
    assert ('read', str(big)) not in reads


def test_a_gzip_file_larger_than_any_report_under_the_cap_could_compress_to_is_not_read(tmp_path):
    # Incompressible data: gzip makes it a little larger, never smaller.
    write(tmp_path / 'huge.json.gz', gzip.compress(os.urandom(MAX + MAX // 50 + 2048)))
    size = os.path.getsize(str(tmp_path / 'huge.json.gz'))
    assert size > MAX + MAX // 100 + 1024
    assert walk(tmp_path)[0] == [('huge.json.gz', 'the file has %d bytes, more than the %d this kind of file may '
                                                  'have (max_report_size)' % (size, MAX + MAX // 100 + 1024))]


def test_a_gzip_file_is_capped_when_inflated(tmp_path):
    write(tmp_path / 'bomb.json.gz', gzip.compress(b' ' * (MAX * 50)))
    (source, reason), = walk(tmp_path)[0]
    assert source == 'bomb.json.gz' and str(MAX) in reason and 'decompress' in reason


def test_symlink_loops_end_and_a_linked_directory_is_read_once(tmp_path):
    write(tmp_path / 'reports' / 'r.json', report_json('once'))
    os.symlink(str(tmp_path), str(tmp_path / 'reports' / 'loop'))
    os.symlink(str(tmp_path / 'reports'), str(tmp_path / 'again'))
    os.symlink(str(tmp_path / 'missing.json'), str(tmp_path / 'dangling.json'))
    found, _skipped = walk(tmp_path)
    # 'again' sorts first, so the report is read through it; 'reports' and 'again/loop' are then seen already.
    assert found == [('again/r.json', 'once'), ('dangling.json', 'cannot be read: No such file or directory')]


def test_a_missing_path_is_one_error(tmp_path):
    assert walk(tmp_path / 'nowhere') == ([('.', 'cannot be read: No such file or directory')], [])


def test_a_sender_style_report_mail_of_the_corpus_gives_its_reports_as_sent():
    documents = [raw('google-sts'), raw('microsoft-sts')]
    for gzip_parts in (True, False):
        mail = mime_message(documents, gzip=gzip_parts)
        assert reports_of(mail) == [('2', documents[0]), ('3', documents[1])]


def test_a_gzip_bomb_in_a_mail_stops_at_the_cap():
    mail = mime_message([raw('minimal')])
    bomb = mail.replace(base64.encodebytes(gzip_bytes(raw('minimal'))).rstrip(b'\n'),
                        base64.encodebytes(gzip_bomb(50 * MAX)).rstrip(b'\n'))
    assert bomb != mail
    (label, reason), = reports_of(bomb)
    assert label == '2' and reason.startswith('decompresses to more than %d bytes, the cap' % MAX)


def test_a_file_that_grows_after_its_size_was_taken_is_read_whole_up_to_the_cap(tmp_path, monkeypatch):
    from ansible_collections.mailsec.mta_sts.plugins.module_utils import _tlsrpt_sources

    class Shrunk(object):
        st_size = 10  # what fstat saw before the writer finished

    monkeypatch.setattr(_tlsrpt_sources.os, 'fstat', lambda _fd: Shrunk())
    write(tmp_path / 'growing.json', report_json('grown'))
    assert walk(tmp_path)[0] == [('growing.json', 'grown')]
    write(tmp_path / 'growing.json', report_json('grown') + b' ' * MAX)
    assert walk(tmp_path)[0] == [('growing.json', 'the file grew past %d bytes while it was read' % MAX)]
