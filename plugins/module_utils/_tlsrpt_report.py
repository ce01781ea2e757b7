# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""TLS-RPT aggregate reports (RFC 8460 §4): bytes to one normalised report. Pure code.

Strict about what the schema requires, tolerant where real senders differ
from the text (SPEC.md §6): ``mx-host`` as a string, ``failure-error-code``
for ``failure-reason-code``, missing optional fields, unknown keys, unknown
result types. docs/tlsrpt-reports.md "What is accepted" lists every rule.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import json
import re
import zlib
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024

POLICY_TYPES = ('sts', 'tlsa', 'no-policy-found')

_GZIP_MAGIC = b'\x1f\x8b'
_UTF8_BOM = b'\xef\xbb\xbf'
# Input is fed and output taken in slices this big, so neither a long compressed
# input nor a bomb's output is ever copied or held whole beyond the cap.
_SLICE = 64 * 1024
_NOT_A_REPORT = 'must be JSON text (starting with "{"), or base64 of JSON or of gzip (what ansible.builtin.slurp returns)'
# RFC 3339 §5.6; its note allows a space for the T. Fractions of a second are read and dropped.
_DATE_TIME = re.compile(
    r'([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?'
    r'(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z')


def _label(value):
    """What an error shows instead of a whole report: its kind and size."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        kind = 'gzip data' if bytes(value[:2]) == _GZIP_MAGIC else 'bytes'
        return '<%s, %d bytes>' % (kind, len(value))
    return '<text, %d characters>' % len(value)


def _refuse_size(size, max_bytes, field, value):
    if size > max_bytes:
        raise ValidationError(field, _label(value), 'is %d bytes, more than the cap of %d bytes' % (size, max_bytes))


def _gunzip(data, max_bytes, field):
    """gzip members in turn, streamed: stops at max_bytes + 1 bytes of output, whatever the input claims."""
    parts = []
    total = 0
    view = memoryview(data)
    size = len(view)
    position = 0
    member = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = b''
    while True:
        if not pending and position < size:
            pending = view[position:position + _SLICE]
            position += len(pending)
        try:
            chunk = member.decompress(pending, min(_SLICE, max_bytes + 1 - total))
        except zlib.error as exc:
            raise ValidationError(field, _label(data), 'is not a readable gzip stream (%s)' % exc)
        pending = member.unconsumed_tail
        if chunk:
            total += len(chunk)
            if total > max_bytes:
                raise ValidationError(field, _label(data), 'decompresses to more than %d bytes, the cap; reading stopped there '
                                      '(a gzip bomb, or a report bigger than the cap allows)' % max_bytes)
            parts.append(chunk)
        if member.eof:
            # The end of one member: what is left is padding, another member, or garbage.
            position -= len(member.unused_data)
            while position < size and view[position] == 0:
                position += 1
            if position == size:
                break
            if view[position:position + 2] != _GZIP_MAGIC:
                raise ValidationError(field, _label(data), 'has data after the end of its gzip stream')
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = b''
        elif not chunk and not pending and position >= size:
            raise ValidationError(field, _label(data), 'is a truncated gzip stream (it ends before its end marker)')
    return b''.join(parts)


def report_bytes(value, max_bytes=DEFAULT_MAX_BYTES, field='report'):
    """A report as given (JSON text, bytes, gzip, or base64 of JSON or gzip) -> its JSON document as bytes.

    gzip (bytes starting 1f 8b) is inflated in slices and refused as soon as
    the output passes ``max_bytes``; concatenated members are read in turn.
    Plain bytes are refused past ``max_bytes``. A str is JSON text when its
    first non-space character is ``{``, else base64 (whitespace allowed).
    """
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if isinstance(value, bytes):
        if value[:2] == _GZIP_MAGIC:
            return _gunzip(value, max_bytes, field)
        _refuse_size(len(value), max_bytes, field, value)
        return value
    if not isinstance(value, str):
        raise ValidationError(field, type(value).__name__, 'must be a string or bytes: ' + _NOT_A_REPORT)
    if value.lstrip(' \t\r\n\ufeff')[:1] == '{':
        try:
            document = value.encode('utf-8')
        except UnicodeEncodeError as exc:
            raise ValidationError(field, _label(value), 'is not valid Unicode text (%s)' % exc.reason)
        _refuse_size(len(document), max_bytes, field, value)
        return document
    try:
        decoded = base64.b64decode(''.join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, _label(value), _NOT_A_REPORT)
    if decoded[:2] != _GZIP_MAGIC and not decoded.lstrip().startswith((b'{', _UTF8_BOM)):
        raise ValidationError(field, _label(value), 'is base64 of neither JSON nor gzip: ' + _NOT_A_REPORT)
    return report_bytes(decoded, max_bytes, field)


def _fail(path, value, rule):
    raise ValidationError(path, value, rule)


def _required(obj, key, path):
    # Absent and JSON null are the same: missing.
    value = obj.get(key)
    if value is None:
        _fail(path + key, None, 'is required (RFC 8460 §4.4)')
    return value


def _object(obj, key, path):
    value = _required(obj, key, path)
    if not isinstance(value, dict):
        _fail(path + key, value, 'must be a JSON object')
    return value


def _text(obj, key, path, required=False):
    value = _required(obj, key, path) if required else obj.get(key)
    if value is None or isinstance(value, str) and (value or not required):
        return value
    if isinstance(value, str):
        _fail(path + key, value, 'must not be empty')
    return _fail(path + key, value, 'must be a string')


def _count(obj, key, path):
    value = obj.get(key)
    # bool is an int in Python; a JSON true is not a count.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if value is None:
        _fail(path + key, None, 'is required (RFC 8460 §4.4)')
    return _fail(path + key, value, 'must be a non-negative integer')


def _strings(value, path, single_ok):
    """A list of strings; one string where senders are known to send one (``mx-host``)."""
    if value is None:
        return []
    if isinstance(value, str) and single_ok:
        return [value]
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                _fail('%s[%d]' % (path, index), item, 'must be a string')
        return value
    return _fail(path, value, 'must be a list of strings' + (' or a string' if single_ok else ''))


def _date_time(obj, key, path):
    value = _text(obj, key, path, required=True)
    moment = utc_datetime(value)
    if moment is None:
        _fail(path + key, value, 'must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z')
    return format_utc(moment)


@lru_cache(maxsize=1024)
def utc_datetime(value):
    """An RFC 3339 date-time -> an aware UTC datetime to the second, or None when it is not one.

    A leap second (:60) reads as :59: datetime has no leap seconds, and a second changes no verdict.
    Cached: a day's reports share their dates.
    """
    match = _DATE_TIME.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, utc, sign, off_hours, off_minutes = match.groups()
    try:
        offset = timedelta(0) if utc else timedelta(hours=int(off_hours), minutes=int(off_minutes))
        return datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59),
                        tzinfo=timezone(-offset if sign == '-' else offset)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def format_utc(moment):
    """RFC 3339 in UTC with 'Z', to the second: the form of every time in a normalised report and a summary."""
    return '%04d-%02d-%02dT%02d:%02d:%02dZ' % (moment.year, moment.month, moment.day,
                                               moment.hour, moment.minute, moment.second)


def _failure_detail(detail, details_path, index):
    """One failure detail. The loop over 200 of them is the parser's hot path: plain gets and type
    checks first; only a detail that fails them goes through the helpers that name what is wrong."""
    if isinstance(detail, dict):
        get = detail.get
        result_type = get('result-type')
        count = get('failed-session-count')
        reason = get('failure-reason-code')
        if reason is None:
            # RFC 8460's own example (Appendix B) and real senders use this name.
            reason = get('failure-error-code')
        additional = get('additional-information')
        if additional is None:
            additional = get('additional-info-uri')
        sending, hostname, helo, ip = (get('sending-mta-ip'), get('receiving-mx-hostname'), get('receiving-mx-helo'),
                                       get('receiving-ip'))
        # Spelled out rather than a loop or all(): this runs for every detail, and the call costs more than the checks.
        # bool is an int in Python; a JSON true is not a count.
        if (isinstance(result_type, str) and result_type and isinstance(count, int) and count is not True
                and count is not False and count >= 0 and (sending is None or isinstance(sending, str))
                and (hostname is None or isinstance(hostname, str)) and (helo is None or isinstance(helo, str))
                and (ip is None or isinstance(ip, str)) and (additional is None or isinstance(additional, str))
                and (reason is None or isinstance(reason, str))):
            return {
                'result_type': result_type,
                'failed_sessions': count,
                'sending_mta_ip': sending,
                'receiving_mx_hostname': hostname,
                'receiving_mx_helo': helo,
                'receiving_ip': ip,
                'additional_information': additional,
                'failure_reason_code': reason,
            }
    return _refuse_failure_detail(detail, '%s[%d]' % (details_path, index))


def _refuse_failure_detail(detail, path):
    """Raise the error of the first rule a failure detail breaks, in the order of the fields."""
    if not isinstance(detail, dict):
        _fail(path, detail, 'must be a JSON object')
    path += '.'
    _text(detail, 'result-type', path, required=True)
    _count(detail, 'failed-session-count', path)
    for key, alias in (('sending-mta-ip', None), ('receiving-mx-hostname', None), ('receiving-mx-helo', None),
                       ('receiving-ip', None), ('additional-information', 'additional-info-uri'),
                       ('failure-reason-code', 'failure-error-code')):
        if _text(detail, key, path) is None and alias:
            _text(detail, alias, path)
    raise AssertionError('a failure detail refused by no rule: %r' % (detail,))


def _policy(entry, path):
    if not isinstance(entry, dict):
        _fail(path, entry, 'must be a JSON object')
    path += '.'
    policy = _object(entry, 'policy', path)
    policy_path = path + 'policy.'
    policy_type = _text(policy, 'policy-type', policy_path, required=True)
    if policy_type not in POLICY_TYPES:
        _fail(policy_path + 'policy-type', policy_type, 'must be one of %s' % ', '.join(POLICY_TYPES))
    domain = _text(policy, 'policy-domain', policy_path, required=True).lower().rstrip('.')
    if not domain:
        _fail(policy_path + 'policy-domain', policy['policy-domain'], 'must be a domain name')
    mx_host = policy.get('mx-host')
    if mx_host is None:
        # The name of the value in §4.4, sent as a key by some senders.
        mx_host = policy.get('mx-host-pattern')
    summary = _object(entry, 'summary', path)
    summary_path = path + 'summary.'
    details = entry.get('failure-details')
    if details is None:
        details = []
    elif not isinstance(details, list):
        _fail(path + 'failure-details', details, 'must be a list')
    details_path = path + 'failure-details'
    return {
        'policy_type': policy_type,
        'policy_string': _strings(policy.get('policy-string'), policy_path + 'policy-string', single_ok=False),
        'policy_domain': domain,
        'mx_host': _strings(mx_host, policy_path + 'mx-host', single_ok=True),
        'successful_sessions': _count(summary, 'total-successful-session-count', summary_path),
        'failed_sessions': _count(summary, 'total-failure-session-count', summary_path),
        'failure_details': [_failure_detail(detail, details_path, index) for index, detail in enumerate(details)],
    }


def normalise_report(document, field='report'):
    """A report already loaded from JSON (RFC 8460 key names) -> the normalised report."""
    if not isinstance(document, dict):
        _fail(field, _json_type(document), 'must be a JSON object (RFC 8460 §4.4)')
    organization = _text(document, 'organization-name', '', required=True)
    date_range = _object(document, 'date-range', '')
    start = _date_time(date_range, 'start-datetime', 'date-range.')
    end = _date_time(date_range, 'end-datetime', 'date-range.')
    # The fixed-width UTC form sorts as the instants do.
    if end < start:
        _fail('date-range.end-datetime', date_range['end-datetime'], 'must not be before start-datetime %s' % start)
    contact = _text(document, 'contact-info', '')
    report_id = _text(document, 'report-id', '', required=True)
    policies = _required(document, 'policies', '')
    if not isinstance(policies, list):
        _fail('policies', _json_type(policies), 'must be a list')
    return {
        'organization_name': organization,
        'report_id': report_id,
        'contact_info': contact,
        'date_range': {'start': start, 'end': end},
        'policies': [_policy(entry, 'policies[%d]' % index) for index, entry in enumerate(policies)],
    }


def _json_type(value):
    return {dict: 'object', list: 'list', str: 'string', bool: 'boolean', int: 'number', float: 'number'}.get(
        type(value), 'null' if value is None else type(value).__name__)


def parse_report(value, max_bytes=DEFAULT_MAX_BYTES, field='report'):
    """A report (JSON text, bytes, gzip, base64 of JSON or gzip, or a loaded dict) -> the normalised report.

    Errors are ValidationError naming the JSON path inside the report
    (``policies[0].summary.total-failure-session-count``), or ``field`` for
    the report as a whole (size, gzip, UTF-8, JSON).
    """
    if isinstance(value, dict):
        return normalise_report(value, field)
    data = report_bytes(value, max_bytes, field)
    if data[:3] == _UTF8_BOM:
        data = data[3:]
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise ValidationError(field, _label(data), 'is not UTF-8 (byte 0x%02x at offset %d)' % (data[exc.start], exc.start))
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationError(field, _label(data), 'is not JSON (%s)' % exc)
    except RecursionError:
        # No report nests more than five levels; thousands of brackets are an attack on the parser.
        raise ValidationError(field, _label(data), 'is not a report: its JSON nests too deeply')
    return normalise_report(document, field)
