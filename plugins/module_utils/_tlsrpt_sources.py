# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where TLS-RPT reports come from: report files, mail files and maildirs (RFC 8460 §5.3).

``reports_in_message`` is pure (message bytes in, report parts out); ``iter_path`` is the file
system edge. Both yield one report at a time, so a directory of any size is read in flat memory.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import email
import email.policy
import os
import stat

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import report_bytes

REPORT_TYPES = ('application/tlsrpt+json', 'application/tlsrpt+gzip')
# Senders that label the attachment application/gzip or application/octet-stream still name it so.
REPORT_NAME_SUFFIXES = ('.json', '.json.gz', '.gz')
NO_REPORT_PART = 'no TLS-RPT report part (application/tlsrpt+json or application/tlsrpt+gzip)'

# A mail carries its reports base64-encoded (4/3 of their size) and may carry several.
MESSAGE_SIZE_FACTOR = 4
# gzip never makes data more than a little larger, so a compressed file past this would inflate past
# max_bytes anyway: refusing it unread loses no report.
GZIP_OVERHEAD = 1024


class ReportError(Exception):
    """A source that yields no report, with the reason listed in the summary's errors."""


def _has_report_name(name):
    return name.lower().endswith(REPORT_NAME_SUFFIXES)


def _sections(part, number):
    """(IMAP section number, leaf part) for every leaf, in order, as RFC 3501 numbers them
    (so an IMAP source can name a part as ``;SECTION=2``); forwarded messages are opened."""
    # Before is_multipart(), which is also true of a message/rfc822 part.
    if part.get_content_type() == 'message/rfc822' and isinstance(part.get_payload(), list):
        inner = part.get_payload()[0]
        if inner.is_multipart():
            yield from _sections(inner, number)
        else:
            yield '%s.1' % number if number else '1', inner
    elif part.is_multipart():
        for index, child in enumerate(part.iter_parts(), 1):
            yield from _sections(child, '%s.%d' % (number, index) if number else str(index))
    else:
        yield number or '1', part


def is_report_part(part):
    """An RFC 8460 report part, or an attachment whose file name says it holds one."""
    if part.get_content_type() in REPORT_TYPES:
        return True
    name = part.get_filename()
    return bool(name) and _has_report_name(name)


def reports_in_message(message_bytes, max_bytes):
    """Yield ``(part_label, report)`` for each report part of a mail message, in order.

    ``report`` is the report's JSON document as bytes (gunzipped, at most ``max_bytes``), or a
    ReportError saying why that part is not one. ``part_label`` is the part's IMAP section number
    ('2', '1.2'); a message without any report part yields ``(None, ReportError(NO_REPORT_PART))``.
    """
    try:
        message = email.message_from_bytes(message_bytes, policy=email.policy.default)
        parts = [(section, part) for section, part in _sections(message, '') if is_report_part(part)]
    # The email package's header parser raises assorted errors on malformed mail; one bad mail must
    # not stop the run.
    except Exception as exc:  # pylint: disable=broad-except
        yield None, ReportError('the message cannot be parsed: %s' % exc)
        return
    if not parts:
        yield None, ReportError(NO_REPORT_PART)
    for section, part in parts:
        yield section, _part_report(part, max_bytes)


def _part_report(part, max_bytes):
    payload = part.get_payload(decode=True)
    if not payload:
        return ReportError('the %s part is empty' % part.get_content_type())
    try:
        return report_bytes(payload, max_bytes=max_bytes)
    except ValidationError as exc:
        return ReportError(exc.rule)


def message_reports(source, message_bytes, max_bytes):
    """Yield ``(source, report)`` for each report part of the message at ``source`` (see reports_in_message)."""
    for label, report in reports_in_message(message_bytes, max_bytes):
        yield part_source(source, label), report


def part_source(source, part_label):
    """The source of one report inside a message: an IMAP URL gets RFC 5092's ``/;SECTION=``."""
    if part_label is None:
        return source
    if source.startswith('imap://'):
        return '%s/;SECTION=%s' % (source, part_label)
    return '%s part %s' % (source, part_label)


def file_kind(name, in_messages_folder=False, explicit=False):
    """'report', 'gzip' or 'message' for a file the walk reads, None for one it skips.

    ``in_messages_folder``: the file is in a maildir's ``cur/`` or ``new/``, where any name is a mail.
    A file the user named (``explicit``) is always read: 'sniff' lets its content decide."""
    name = name.lower()
    if name.endswith('.eml') or in_messages_folder:
        return 'message'
    if name.endswith('.gz'):
        return 'gzip'
    if name.endswith('.json'):
        return 'report'
    return 'sniff' if explicit else None


def is_maildir(directory):
    return os.path.isdir(os.path.join(directory, 'cur')) and os.path.isdir(os.path.join(directory, 'new'))


def file_limit(kind, max_bytes):
    """The largest file of this kind worth reading, so a huge file is refused without reading it."""
    if kind == 'report':
        return max_bytes
    if kind == 'gzip':
        return max_bytes + max_bytes // 100 + GZIP_OVERHEAD
    return MESSAGE_SIZE_FACTOR * max_bytes


def _read_capped(path, limit):
    """The file's bytes; ReportError when it cannot be read or is larger than ``limit``."""
    try:
        with open(path, 'rb') as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise ReportError('the file has %d bytes, more than the %d this kind of file may have '
                                  '(max_report_size)' % (size, limit))
            # Asking for the size read (not the cap) spares a cap-sized buffer per file; a file that grew
            # since the fstat is read on, but never past the cap.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(limit + 1 - len(data))
    except (IOError, OSError) as exc:
        raise ReportError('cannot be read: %s' % (exc.strerror or exc))
    if len(data) > limit:
        raise ReportError('the file grew past %d bytes while it was read' % limit)
    return data


def read_file(path, kind, max_bytes):
    """Yield ``(source, report bytes | ReportError)`` for the reports of one file of ``kind``."""
    limit = file_limit('message' if kind == 'sniff' else kind, max_bytes)
    try:
        data = _read_capped(path, limit)
    except ReportError as exc:
        yield path, exc
        return
    if kind == 'sniff':
        kind = 'report' if data[:2] == b'\x1f\x8b' or data.lstrip()[:1] == b'{' else 'message'
    if kind == 'message':
        yield from message_reports(path, data, max_bytes)
        return
    try:
        yield path, report_bytes(data, max_bytes=max_bytes)
    except ValidationError as exc:
        yield path, ReportError(exc.rule)


def iter_path(path, max_bytes, skipped=None):
    """Yield ``(source, report bytes | ReportError)`` for a file, or for every report under a directory.

    A directory is walked recursively in sorted order; symlinks are followed, each directory once (a
    loop ends the walk there). It reads ``*.json``, ``*.json.gz``, ``*.gz``, ``*.eml`` and every file in
    a maildir's ``cur/`` and ``new/`` (never ``tmp/``, which holds mails still being delivered); every
    other file is appended to ``skipped`` (a list) when given.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        yield path, ReportError('cannot be read: %s' % (exc.strerror or exc))
        return
    if not stat.S_ISDIR(info.st_mode):
        yield from read_file(path, file_kind(os.path.basename(path), explicit=True), max_bytes)
        return
    # A maildir's cur/ or new/ may be given on its own.
    absolute = os.path.abspath(path)
    messages_folder = os.path.basename(absolute) in ('cur', 'new') and is_maildir(os.path.dirname(absolute))
    yield from _walk(path, messages_folder, max_bytes, skipped, set())


def _walk(directory, messages_folder, max_bytes, skipped, seen):
    try:
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in seen:
            return
        seen.add((info.st_dev, info.st_ino))
        # scandir: the file type comes with the listing, so a directory of reports costs no stat per file.
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        yield directory, ReportError('cannot be read: %s' % (exc.strerror or exc))
        return
    maildir = is_maildir(directory)
    for entry in entries:
        name, path = entry.name, entry.path
        if _is_dir(entry):
            if not (maildir and name == 'tmp'):
                yield from _walk(path, maildir and name in ('cur', 'new'), max_bytes, skipped, seen)
            continue
        kind = file_kind(name, messages_folder)
        if kind is None:
            if skipped is not None:
                skipped.append(path)
            continue
        yield from read_file(path, kind, max_bytes)


def _is_dir(entry):
    """Whether a listed entry is a directory, following a symlink (as os.path.isdir does)."""
    try:
        return entry.is_dir()
    except OSError:
        return False
