# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``_mta-sts`` TXT record and the policy file (RFC 8461 §3.1, §3.2), and the policy id.

Pure code: no I/O. Parsers follow the RFC grammar strictly and either return
the whole parsed value or raise ValidationError; renderers validate with the
same rules, so render(parse(x)) and parse(render(d)) round-trip.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import re

from collections.abc import Mapping

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._mx import normalize_pattern

VERSION = 'STSv1'
MODES = ('enforce', 'testing', 'none')
MAX_AGE_MAX = 31557600
POLICY_FIELDS = ('version', 'mode', 'max_age', 'mx')

ID_RULE = 'must be 1 to 32 letters or digits'
EXT_NAME_RULE = 'must be a letter or digit followed by up to 31 letters, digits, "_", "-" or "."'
TXT_EXT_VALUE_RULE = 'must be one or more printable ASCII characters other than space, ";" and "="'
POLICY_EXT_VALUE_RULE = 'must be visible characters (UTF-8 allowed) with inner spaces only, and not empty'
MAX_AGE_RULE = 'must be plain digits (at most 10), from 0 to %d' % MAX_AGE_MAX

# max_age advice, not grammar (RFC 8461 §3.2 suggests weeks or more): a policy cached for less than
# a day protects little, and enforce deserves at least a week. One place for the record module's
# warning and the validator's max-age-short / max-age-short-enforce findings.
MAX_AGE_ADVISED = 86400
MAX_AGE_ADVISED_ENFORCE = 604800

_ID = re.compile(r'[A-Za-z0-9]{1,32}')
_EXT_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,31}')
_TXT_EXT_VALUE = re.compile(r'[\x21-\x3a\x3c\x3e-\x7e]+')
_TXT_DELIM = re.compile(r'[ \t]*;[ \t]*')
# sts-policy-vchar: VCHAR or any UTF-8 encoded non-ASCII character (surrogates cannot be encoded).
_VCHARS = r'\x21-\x7e\x80-\ud7ff\ue000-\U0010ffff'
_POLICY_EXT_VALUE = re.compile(r'[{0}](?:[ {0}]*[{0}])?'.format(_VCHARS))
_MAX_AGE = re.compile(r'[0-9]{1,10}')


# --- helpers shared with the TLS-RPT record (same field grammar) ---

def record_text(value, field):
    """A TXT record value as text: a str, or its character-strings (str or bytes) concatenated (RFC 8461 §3.1)."""
    if isinstance(value, (str, bytes)):
        parts = [value]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise ValidationError(field, value, 'must be a string or a list of strings')
    texts = []
    for part in parts:
        if isinstance(part, bytes):
            try:
                part = part.decode('utf-8')
            except UnicodeDecodeError:
                raise ValidationError(field, value, 'is not valid UTF-8')
        elif not isinstance(part, str):
            raise ValidationError(field, value, 'must be a string or a list of strings')
        texts.append(part)
    return ''.join(texts)


def record_fields(text, version, field):
    """``(name, value)`` pairs of the fields after the leading ``v=<version>``.

    Grammar: version 1*(field-delim field) [field-delim], field-delim = *WSP ";" *WSP.
    """
    parts = _TXT_DELIM.split(text)
    if parts[0] != 'v=' + version:
        raise ValidationError(field, text, 'must start with the field v=%s' % version)
    if len(parts) > 1 and parts[-1] == '':
        parts.pop()
    if len(parts) < 2:
        raise ValidationError(field, text, 'must have at least one field after v=%s' % version)
    pairs = []
    for part in parts[1:]:
        if not part:
            raise ValidationError(field, text, 'fields must not be empty (";;")')
        name, sep, value = part.partition('=')
        if not sep:
            raise ValidationError(field, part, 'a field must be name=value')
        pairs.append((name, value))
    return pairs


def has_version_tag(text, tag):
    """Whether a TXT value is a record of the kind ``tag`` names (``v=STSv1``, ``v=TLSRPTv1``).

    RFC 8461 §3.1 and RFC 8460 §3: the tag must be the first field, exactly as
    written; senders discard every other value, so this decides which values
    count (valid or not) and which are someone else's.
    """
    return re.match(r'%s[ \t]*(;|$)' % re.escape(tag), text) is not None


def check_ext_name(name, reserved=()):
    if not isinstance(name, str) or not _EXT_NAME.fullmatch(name):
        raise ValidationError('extension name', name, EXT_NAME_RULE)
    if name in reserved:
        raise ValidationError('extension name', name, 'is a standard field, not an extension')
    return name


def add_txt_extension(extensions, name, value):
    """Validate one TXT-record extension and add it to ``extensions``."""
    check_ext_name(name)
    if not isinstance(value, str) or not _TXT_EXT_VALUE.fullmatch(value):
        raise ValidationError('extension %s' % name, value, TXT_EXT_VALUE_RULE)
    if name in extensions:
        raise ValidationError('extension name', name, 'appears more than once')
    extensions[name] = value


def txt_extensions(extensions, reserved):
    """Validated TXT-record extensions to render, as sorted ``(name, value)`` pairs."""
    if extensions is None:
        return []
    if not isinstance(extensions, Mapping):
        raise ValidationError('extensions', extensions, 'must be a mapping of name to value')
    checked = {}
    for name, value in extensions.items():
        check_ext_name(name, reserved)
        add_txt_extension(checked, name, value)
    return sorted(checked.items())


# --- the _mta-sts TXT record ---

def validate_id(value, field='id'):
    """A policy id as published in the TXT record: 1 to 32 letters or digits."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(field, value, ID_RULE)
    return value


def is_sts_record(text):
    return has_version_tag(text, 'v=' + VERSION)


def parse_sts_record(value):
    """Parse a ``_mta-sts`` TXT record (a str, or its character-strings)."""
    text = record_text(value, 'sts record')
    record_id = None
    extensions = {}
    for name, field_value in record_fields(text, VERSION, 'sts record'):
        # id= is always the id field: "id=test-123" is a bad id, not an extension named id.
        if name == 'id':
            if record_id is not None:
                raise ValidationError('sts record', text, 'must have exactly one id= field')
            record_id = validate_id(field_value)
        else:
            add_txt_extension(extensions, name, field_value)
    if record_id is None:
        raise ValidationError('sts record', text, 'must have an id= field')
    return {'version': VERSION, 'id': record_id, 'extensions': extensions}


def render_sts_record(policy_id, extensions=None):
    """``v=STSv1; id=<id>;`` with extensions, sorted by name, after the id."""
    fields = ['v=' + VERSION, 'id=' + validate_id(policy_id)]
    fields.extend('%s=%s' % pair for pair in txt_extensions(extensions, ('id',)))
    return '; '.join(fields) + ';'


# --- the policy file ---

def _check_mode(value):
    if not isinstance(value, str) or value not in MODES:
        raise ValidationError('mode', value, 'must be one of %s' % ', '.join(MODES))
    return value


def _check_version(value):
    if value != VERSION:
        raise ValidationError('version', value, 'must be %s' % VERSION)
    return value


def _check_max_age(value):
    if isinstance(value, str):
        if not _MAX_AGE.fullmatch(value):
            raise ValidationError('max_age', value, MAX_AGE_RULE)
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValidationError('max_age', value, MAX_AGE_RULE)
    if not 0 <= number <= MAX_AGE_MAX:
        raise ValidationError('max_age', value, MAX_AGE_RULE)
    return number


def _check_policy_ext_value(name, value):
    if not isinstance(value, str) or not _POLICY_EXT_VALUE.fullmatch(value):
        raise ValidationError('extension %s' % name, value, POLICY_EXT_VALUE_RULE)
    return value


def _require_mx(mode, mx):
    if mode != 'none' and not mx:
        raise ValidationError('mx', mx, 'at least one mx pattern is required unless mode is none')


def _policy_lines(text):
    lines = text.split('\n')
    # One final terminator is allowed; anything after it would be a blank line.
    if lines[-1] == '':
        lines.pop()
    return [line[:-1] if line.endswith('\r') else line for line in lines]


def parse_policy(text):
    """Parse a policy file (str, or bytes as served) into a dict; see RFC 8461 §3.2."""
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise ValidationError('policy', data[int(exc.start):int(exc.end)], 'is not valid UTF-8')
    if not isinstance(text, str):
        raise ValidationError('policy', text, 'must be a string or bytes')
    seen = {}
    mx = []
    extensions = {}
    for number, line in enumerate(_policy_lines(text), 1):
        where = 'policy line %d' % number
        if not line:
            raise ValidationError(where, line, 'blank lines are not allowed')
        name, sep, value = line.partition(':')
        if not sep:
            raise ValidationError(where, line, 'must be "name: value"')
        value = value.strip(' \t')
        if name == 'mx':
            mx.append(normalize_pattern(value))
        elif name in POLICY_FIELDS:
            if name in seen:
                raise ValidationError('policy', name, 'field appears more than once')
            seen[name] = value
        elif _EXT_NAME.fullmatch(name):
            if name in extensions:
                raise ValidationError('policy', name, 'field appears more than once')
            extensions[name] = _check_policy_ext_value(name, value)
        else:
            raise ValidationError(where, name, 'field name ' + EXT_NAME_RULE)
    for name in ('version', 'mode', 'max_age'):
        if name not in seen:
            raise ValidationError('policy', name, 'required field is missing')
    _check_version(seen['version'])
    mode = _check_mode(seen['mode'])
    max_age = _check_max_age(seen['max_age'])
    _require_mx(mode, mx)
    return {'version': VERSION, 'mode': mode, 'max_age': max_age, 'mx': mx, 'extensions': extensions}


_RENDER_KEYS = ('extensions', 'max_age', 'mode', 'mx', 'version')


def render_policy(policy):
    """The canonical policy file for a dict: CRLF line ends, fixed field order, sorted extensions.

    A dict always renders to the same bytes, whatever its key order, so the id
    derived from them (policy_id) changes only when the policy does.
    """
    if not isinstance(policy, Mapping):
        raise ValidationError('policy', policy, 'must be a mapping')
    for key in policy:
        if key not in _RENDER_KEYS:
            raise ValidationError('policy', key, 'unknown key; allowed: %s' % ', '.join(_RENDER_KEYS))
    if 'version' in policy:
        _check_version(policy['version'])
    for key in ('mode', 'max_age'):
        if key not in policy:
            raise ValidationError('policy', key, 'required key is missing')
    mode = _check_mode(policy['mode'])
    max_age = _check_max_age(policy['max_age'])

    patterns = policy.get('mx')
    if patterns is None:
        patterns = []
    elif isinstance(patterns, str):
        patterns = [patterns]
    elif not isinstance(patterns, (list, tuple)):
        raise ValidationError('mx', patterns, 'must be a list of patterns or one pattern')
    mx = []
    for pattern in patterns:
        pattern = normalize_pattern(pattern)
        if pattern not in mx:
            mx.append(pattern)
    _require_mx(mode, mx)

    extensions = policy.get('extensions')
    if extensions is None:
        extensions = {}
    if not isinstance(extensions, Mapping):
        raise ValidationError('extensions', extensions, 'must be a mapping of name to value')
    for name, value in extensions.items():
        check_ext_name(name, POLICY_FIELDS)
        _check_policy_ext_value(name, value)

    lines = ['version: ' + VERSION, 'mode: ' + mode]
    lines.extend('mx: ' + pattern for pattern in mx)
    lines.append('max_age: %d' % max_age)
    lines.extend('%s: %s' % (name, extensions[name]) for name in sorted(extensions))
    return ''.join(line + '\r\n' for line in lines)


def policy_text(policy, field='policy'):
    """The policy file text for a ``policy`` option: a dict rendered by render_policy, or the text as given.

    One rule for every option that takes a policy (the record modules, the policy host), so the bytes
    served and the bytes the id is derived from are the same. Text is validated and kept byte for byte.
    """
    if isinstance(policy, Mapping):
        return render_policy(policy)
    if isinstance(policy, str):
        parse_policy(policy)
        return policy
    raise ValidationError(field, policy, 'must be a dict or the policy text')


def max_age_advice(mode, max_age):
    """``(code, message)`` when ``max_age`` is short for ``mode``, else None.

    Mode none gets no advice: retiring a policy (RFC 8461 §8.3) publishes it, often with a short max_age.
    """
    if mode == 'none':
        return None
    if max_age < MAX_AGE_ADVISED:
        return ('max-age-short', 'max_age %d is under a day (%d); the policy protects little against a downgrade '
                'between fetches' % (max_age, MAX_AGE_ADVISED))
    if mode == 'enforce' and max_age < MAX_AGE_ADVISED_ENFORCE:
        return ('max-age-short-enforce', 'max_age %d is under a week (%d) in enforce mode; weeks or more are '
                'recommended (RFC 8461 §3.2)' % (max_age, MAX_AGE_ADVISED_ENFORCE))
    return None


def policy_id(policy):
    """The id for a policy: base32 (lower case, unpadded) of the first 20 bytes of SHA-256.

    A dict is hashed as render_policy() renders it; a str (as UTF-8) or bytes
    is hashed exactly as given, since that is what the server serves. Either
    way the policy must be valid. The contract is documented in docs/policy-id.md.
    """
    if isinstance(policy, Mapping):
        data = render_policy(policy).encode('utf-8')
    elif isinstance(policy, (str, bytes)):
        parse_policy(policy)
        data = policy.encode('utf-8') if isinstance(policy, str) else policy
    else:
        raise ValidationError('policy', policy, 'must be a mapping, a string or bytes')
    return base64.b32encode(hashlib.sha256(data).digest()[:20]).decode('ascii').lower()
