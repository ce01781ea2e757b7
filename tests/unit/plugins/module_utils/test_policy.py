# -*- coding: utf-8 -*-
import base64
import hashlib
import re

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    MAX_AGE_ADVISED, MAX_AGE_ADVISED_ENFORCE, max_age_advice,
    MAX_AGE_MAX, MODES, parse_policy, parse_sts_record, policy_id, render_policy, render_sts_record, validate_id,
)


def error_of(function, *args):
    with pytest.raises(ValidationError) as err:
        function(*args)
    return str(err.value)


# ---------------------------------------------------------------- TXT record

@pytest.mark.parametrize('record, expected_id, extensions', [
    ('v=STSv1; id=20160831085700Z;', '20160831085700Z', {}),
    ('v=STSv1; id=20160831085700Z', '20160831085700Z', {}),
    ('v=STSv1;id=a', 'a', {}),
    ('v=STSv1 ;\tid=abc\t; ', 'abc', {}),
    ('v=STSv1  \t;  id=abc  ;  ext=1  ;', 'abc', {'ext': '1'}),
    ('v=STSv1; id=' + 'A1' * 16 + ';', 'A1' * 16, {}),
    ('v=STSv1; ext=x; id=abc', 'abc', {'ext': 'x'}),
    ('v=STSv1; id=abc; x=!"#$%&\'()*+,-./0123456789:<>?@[\\]^_`{|}~', 'abc',
     {'x': '!"#$%&\'()*+,-./0123456789:<>?@[\\]^_`{|}~'}),
    ('v=STSv1; id=abc; 9=1; a.b_c-d=2; ' + 'n' * 32 + '=3', 'abc', {'9': '1', 'a.b_c-d': '2', 'n' * 32: '3'}),
    ('v=STSv1; id=abc; ID=upper', 'abc', {'ID': 'upper'}),
    ('v=STSv1; id=abc; v=STSv2', 'abc', {'v': 'STSv2'}),
])
def test_parse_sts_record_valid(record, expected_id, extensions):
    assert parse_sts_record(record) == {'version': 'STSv1', 'id': expected_id, 'extensions': extensions}


@pytest.mark.parametrize('strings', [
    ['v=STSv1; id=abc', 'def;'],
    ('v=STSv1; i', 'd=abcdef;'),
    (b'v=STSv1; id=', b'abcdef', b';'),
    ['v=STSv1; ', b'id=abcdef'],
])
def test_parse_sts_record_concatenates_character_strings(strings):
    assert parse_sts_record(strings)['id'] == 'abcdef'


def test_parse_sts_record_strings_joined_without_separator():
    # Joined with nothing in between: a space would have been a field delimiter here.
    with pytest.raises(ValidationError):
        parse_sts_record(['v=STSv1; id=abc', 'def ', 'x'])


@pytest.mark.parametrize('record, message', [
    ('v=STSv1; id=test-123;', "id 'test-123': must be 1 to 32 letters or digits"),
    ('v=STSv1; id=' + 'a' * 33, 'id %r: must be 1 to 32 letters or digits' % ('a' * 33)),
    ('v=STSv1; id=;', "id '': must be 1 to 32 letters or digits"),
    ('v=STSv1; id=abc ', "id 'abc ': must be 1 to 32 letters or digits"),
    ('v=STSv1; id=ab\u00e9', "id 'ab\u00e9': must be 1 to 32 letters or digits"),
    ('v=STSv1;; id=abc', "sts record 'v=STSv1;; id=abc': fields must not be empty (\";;\")"),
    ('v=STSv1; id=abc;;', "sts record 'v=STSv1; id=abc;;': fields must not be empty (\";;\")"),
    ('v=STSv1; id=abc; ; ext=1', "sts record 'v=STSv1; id=abc; ; ext=1': fields must not be empty (\";;\")"),
    ('id=abc; v=STSv1', "sts record 'id=abc; v=STSv1': must start with the field v=STSv1"),
    ('V=STSv1; id=abc', "sts record 'V=STSv1; id=abc': must start with the field v=STSv1"),
    ('v=stsv1; id=abc', "sts record 'v=stsv1; id=abc': must start with the field v=STSv1"),
    (' v=STSv1; id=abc', "sts record ' v=STSv1; id=abc': must start with the field v=STSv1"),
    ('v=STSv2; id=abc', "sts record 'v=STSv2; id=abc': must start with the field v=STSv1"),
    ('v=STSv1 id=abc', "sts record 'v=STSv1 id=abc': must start with the field v=STSv1"),
    ('v = STSv1; id=abc', "sts record 'v = STSv1; id=abc': must start with the field v=STSv1"),
    ('', "sts record '': must start with the field v=STSv1"),
    ('v=STSv1', "sts record 'v=STSv1': must have at least one field after v=STSv1"),
    ('v=STSv1;', "sts record 'v=STSv1;': must have at least one field after v=STSv1"),
    ('v=STSv1; ext=1', "sts record 'v=STSv1; ext=1': must have an id= field"),
    ('v=STSv1; ID=abc', "sts record 'v=STSv1; ID=abc': must have an id= field"),
    ('v=STSv1; id=abc; id=abc', "sts record 'v=STSv1; id=abc; id=abc': must have exactly one id= field"),
    ('v=STSv1; id=abc; junk', "sts record 'junk': a field must be name=value"),
    ('v=STSv1; id =abc', "extension name 'id ': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ('v=STSv1; id=abc; _x=1', "extension name '_x': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ('v=STSv1; id=abc; -x=1', "extension name '-x': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ('v=STSv1; id=abc; x!=1', "extension name 'x!': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ('v=STSv1; id=abc; =1', "extension name '': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ('v=STSv1; id=abc; ' + 'n' * 33 + '=1',
     "extension name %r: must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\"" % ('n' * 33)),
    ('v=STSv1; id=abc; ext=a=b', "extension ext 'a=b': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
    ('v=STSv1; id=abc; ext=a b', "extension ext 'a b': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
    ('v=STSv1; id=abc; ext=', "extension ext '': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
    ('v=STSv1; id=abc; ext=caf\u00e9', "extension ext 'caf\u00e9': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
    ('v=STSv1; id=abc; ext=a\x7f', "extension ext 'a\\x7f': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
    ('v=STSv1; id=abc; ext=1; ext=2', "extension name 'ext': appears more than once"),
])
def test_parse_sts_record_invalid(record, message):
    assert error_of(parse_sts_record, record) == message


@pytest.mark.parametrize('value', [None, 42, {'v': 'STSv1'}, ['v=STSv1; ', 7]])
def test_parse_sts_record_wrong_type(value):
    assert 'must be a string or a list of strings' in error_of(parse_sts_record, value)


def test_parse_sts_record_bad_utf8():
    assert 'is not valid UTF-8' in error_of(parse_sts_record, [b'v=STSv1; id=abc; x=\xff'])


@pytest.mark.parametrize('value', ['a', 'abc123', 'Z' * 32, '20160831085700Z'])
def test_validate_id_valid(value):
    assert validate_id(value) == value


@pytest.mark.parametrize('value', ['', 'test-123', 'a' * 33, 'a_b', 'a b', 'a.b', None, 12])
def test_validate_id_invalid(value):
    assert error_of(validate_id, value) == 'id %r: must be 1 to 32 letters or digits' % (value,)


def test_validate_id_field_name():
    assert error_of(validate_id, 'x-1', 'sts_id').startswith("sts_id 'x-1': ")


def test_render_sts_record():
    assert render_sts_record('abc') == 'v=STSv1; id=abc;'
    assert render_sts_record('abc', {}) == 'v=STSv1; id=abc;'
    assert render_sts_record('abc', {'ext': '1'}) == 'v=STSv1; id=abc; ext=1;'
    assert render_sts_record('abc', {'zz': '1', 'a.b': 'x', 'M': '2'}) == 'v=STSv1; id=abc; M=2; a.b=x; zz=1;'


@pytest.mark.parametrize('args, message', [
    (('test-123',), "id 'test-123': must be 1 to 32 letters or digits"),
    (('abc', {'id': 'x'}), "extension name 'id': is a standard field, not an extension"),
    (('abc', {'_x': '1'}), 'extension name \'_x\': must be a letter or digit'),
    (('abc', {'x': 'a b'}), "extension x 'a b': must be one or more printable ASCII"),
    (('abc', {'x': 1}), "extension x 1: must be one or more printable ASCII"),
    (('abc', ['x=1']), "extensions ['x=1']: must be a mapping of name to value"),
])
def test_render_sts_record_invalid(args, message):
    assert error_of(render_sts_record, *args).startswith(message)


@pytest.mark.parametrize('record', [
    'v=STSv1; id=abc;',
    'v=STSv1; id=abc; a=1; b=x.y;',
])
def test_sts_record_round_trip(record):
    parsed = parse_sts_record(record)
    assert render_sts_record(parsed['id'], parsed['extensions']) == record
    assert parse_sts_record(render_sts_record(parsed['id'], parsed['extensions'])) == parsed


# ---------------------------------------------------------------- policy file

RFC_POLICY = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n'
RFC_PARSED = {
    'version': 'STSv1',
    'mode': 'enforce',
    'max_age': 604800,
    'mx': ['mail.example.com', '*.example.net', 'backupmx.example.com'],
    'extensions': {},
}


def policy(*lines, **kwargs):
    return kwargs.get('end', '\n').join(lines) + kwargs.get('end', '\n')


def test_parse_policy_lf():
    assert parse_policy(RFC_POLICY) == RFC_PARSED


def test_parse_policy_crlf():
    assert parse_policy(RFC_POLICY.replace('\n', '\r\n')) == RFC_PARSED


def test_parse_policy_without_final_terminator():
    assert parse_policy(RFC_POLICY.rstrip('\n')) == RFC_PARSED
    assert parse_policy(RFC_POLICY.replace('\n', '\r\n')[:-2]) == RFC_PARSED


def test_parse_policy_mixed_terminators():
    assert parse_policy('version: STSv1\r\nmode: enforce\nmx: mail.example.com\r\nmax_age: 604800') == dict(
        RFC_PARSED, mx=['mail.example.com'])


def test_parse_policy_bytes():
    assert parse_policy(RFC_POLICY.encode('ascii')) == RFC_PARSED


def test_parse_policy_field_order_free():
    text = policy('max_age: 604800', 'mx: mail.example.com', 'mode: enforce', 'version: STSv1')
    assert parse_policy(text) == dict(RFC_PARSED, mx=['mail.example.com'])


def test_parse_policy_whitespace():
    text = policy('version:STSv1', 'mode:\t enforce \t', 'mx:   mail.example.com  ', 'max_age:    86400\t')
    assert parse_policy(text) == dict(RFC_PARSED, mx=['mail.example.com'], max_age=86400)


@pytest.mark.parametrize('line', [' mode: enforce', '\tmode: enforce', 'mode : enforce'])
def test_parse_policy_no_space_before_colon_or_at_line_start(line):
    text = policy('version: STSv1', line, 'mx: mail.example.com', 'max_age: 86400')
    assert 'policy line 2' in error_of(parse_policy, text)


@pytest.mark.parametrize('value, expected', [
    ('0', 0),
    ('1', 1),
    ('86400', 86400),
    ('31557600', MAX_AGE_MAX),
    ('0000086400', 86400),
    ('0031557600', 31557600),
])
def test_parse_policy_max_age_valid(value, expected):
    text = policy('version: STSv1', 'mode: testing', 'mx: mail.example.com', 'max_age: ' + value)
    assert parse_policy(text)['max_age'] == expected


@pytest.mark.parametrize('value', [
    '31557601', '99999999999', '00000000001', '4294967296', '-1', '+86400', '86400s', '8 6400', '1e5', '0x10',
    '86400.0', '', '\uff18\uff16\uff14\uff10\uff10', '\u0668\u0666',
])
def test_parse_policy_max_age_invalid(value):
    text = policy('version: STSv1', 'mode: testing', 'mx: mail.example.com', 'max_age: ' + value)
    message = error_of(parse_policy, text)
    assert message == 'max_age %r: must be plain digits (at most 10), from 0 to 31557600' % value


def test_max_age_over_limit_message():
    text = policy('version: STSv1', 'mode: testing', 'mx: mail.example.com', 'max_age: 31557601')
    assert error_of(parse_policy, text) == "max_age '31557601': must be plain digits (at most 10), from 0 to 31557600"


@pytest.mark.parametrize('mode', MODES)
def test_parse_policy_modes(mode):
    text = policy('version: STSv1', 'mode: ' + mode, 'mx: mail.example.com', 'max_age: 86400')
    assert parse_policy(text)['mode'] == mode


@pytest.mark.parametrize('mode', ['Enforce', 'ENFORCE', 'strict', 'report', '', 'enforce testing'])
def test_parse_policy_bad_mode(mode):
    text = policy('version: STSv1', 'mode: ' + mode, 'mx: mail.example.com', 'max_age: 86400')
    assert error_of(parse_policy, text) == 'mode %r: must be one of enforce, testing, none' % mode


@pytest.mark.parametrize('version', ['stsv1', 'STSv2', 'STSv1 x', ''])
def test_parse_policy_bad_version(version):
    text = policy('version: ' + version, 'mode: none', 'max_age: 86400')
    assert error_of(parse_policy, text) == 'version %r: must be STSv1' % version


@pytest.mark.parametrize('missing', ['version', 'mode', 'max_age'])
def test_parse_policy_required_fields(missing):
    lines = [line for line in ('version: STSv1', 'mode: none', 'max_age: 86400') if not line.startswith(missing + ':')]
    assert error_of(parse_policy, policy(*lines)) == 'policy %r: required field is missing' % missing


def test_parse_policy_empty():
    assert error_of(parse_policy, '') == "policy 'version': required field is missing"


@pytest.mark.parametrize('line', ['version: STSv1', 'mode: none', 'max_age: 1'])
def test_parse_policy_known_field_twice(line):
    text = policy('version: STSv1', 'mode: none', 'max_age: 86400', line)
    assert error_of(parse_policy, text) == 'policy %r: field appears more than once' % line.split(':')[0]


@pytest.mark.parametrize('mode', ['enforce', 'testing'])
def test_parse_policy_mx_required(mode):
    text = policy('version: STSv1', 'mode: ' + mode, 'max_age: 86400')
    assert error_of(parse_policy, text) == 'mx []: at least one mx pattern is required unless mode is none'


def test_parse_policy_mode_none_without_mx():
    text = policy('version: STSv1', 'mode: none', 'max_age: 86400')
    assert parse_policy(text) == {'version': 'STSv1', 'mode': 'none', 'max_age': 86400, 'mx': [], 'extensions': {}}


def test_parse_policy_mode_none_with_mx():
    text = policy('version: STSv1', 'mode: none', 'mx: mail.example.com', 'max_age: 86400')
    assert parse_policy(text)['mx'] == ['mail.example.com']


def test_parse_policy_mx_order_case_duplicates():
    text = policy('version: STSv1', 'mode: enforce', 'mx: B.example.com.', 'mx: *.A.example.com', 'mx: b.example.com',
                  'max_age: 86400')
    assert parse_policy(text)['mx'] == ['b.example.com', '*.a.example.com', 'b.example.com']


def test_parse_policy_bad_mx_message():
    text = policy('version: STSv1', 'mode: enforce', 'mx: *.*.example.com', 'max_age: 86400')
    assert error_of(parse_policy, text) == "mx '*.*.example.com': a wildcard may only be the whole left-most label"


@pytest.mark.parametrize('value', ['', 'localhost', 'mx_1.example.com', 'mail.example.com mail2.example.com', '*'])
def test_parse_policy_bad_mx(value):
    text = policy('version: STSv1', 'mode: enforce', 'mx: ' + value, 'max_age: 86400')
    assert error_of(parse_policy, text).startswith('mx %r: ' % value)


@pytest.mark.parametrize('text, line', [
    ('version: STSv1\n\nmode: none\nmax_age: 1\n', 2),
    ('\nversion: STSv1\nmode: none\nmax_age: 1\n', 1),
    ('version: STSv1\nmode: none\nmax_age: 1\n\n', 4),
    ('version: STSv1\r\nmode: none\r\nmax_age: 1\r\n\r\n', 4),
    ('version: STSv1\nmode: none\nmax_age: 1\n \n', 4),
])
def test_parse_policy_blank_lines(text, line):
    message = error_of(parse_policy, text)
    assert message.startswith('policy line %d ' % line)


def test_parse_policy_blank_line_message():
    assert error_of(parse_policy, 'version: STSv1\n\nmode: none\n') == "policy line 2 '': blank lines are not allowed"


def test_parse_policy_line_without_colon():
    text = policy('version: STSv1', 'mode none', 'max_age: 1')
    assert error_of(parse_policy, text) == "policy line 2 'mode none': must be \"name: value\""


def test_parse_policy_lone_cr_is_not_a_terminator():
    assert error_of(parse_policy, 'version: STSv1\rmode: none\rmax_age: 1\r') == "policy 'mode': required field is missing"
    text = 'version: STSv1\nmode: none\rmx: a.example.com\nmax_age: 1\n'
    assert error_of(parse_policy, text) == "mode 'none\\rmx: a.example.com': must be one of enforce, testing, none"


def test_parse_policy_extensions():
    text = policy(
        'version: STSv1', 'mode: none', 'max_age: 1',
        'ext: a=b; c',
        'note:  Gr\u00fc\u00dfe aus K\u00f6ln \u2013 \u2713 \U0001F4E7  ',
        'x.y_z-9: ;;==',
        'Mode: enforce',
        'max-age: 5',
        'MX: not a pattern',
        '9: v',
    )
    assert parse_policy(text)['extensions'] == {
        'ext': 'a=b; c',
        'note': 'Gr\u00fc\u00dfe aus K\u00f6ln \u2013 \u2713 \U0001F4E7',
        'x.y_z-9': ';;==',
        'Mode': 'enforce',
        'max-age': '5',
        'MX': 'not a pattern',
        '9': 'v',
    }


def test_parse_policy_utf8_bytes():
    text = policy('version: STSv1', 'mode: none', 'max_age: 1', 'owner: J\u00fcrgen')
    assert parse_policy(text.encode('utf-8'))['extensions'] == {'owner': 'J\u00fcrgen'}


def test_parse_policy_invalid_utf8():
    assert error_of(parse_policy, b'version: STSv1\nmode: none\nmax_age: 1\nx: \xff\xfe\n') == "policy b'\\xff': is not valid UTF-8"


@pytest.mark.parametrize('value', ['', 'a\tb', 'a\x00b', 'a\x7fb', '\x0b'])
def test_parse_policy_bad_extension_value(value):
    text = policy('version: STSv1', 'mode: none', 'max_age: 1', 'ext: ' + value)
    assert error_of(parse_policy, text) == (
        'extension ext %r: must be visible characters (UTF-8 allowed) with inner spaces only, and not empty' % value.strip(' \t'))


def test_parse_policy_lone_surrogate_in_text():
    text = policy('version: STSv1', 'mode: none', 'max_age: 1', 'ext: a\udcffb')
    assert error_of(parse_policy, text).startswith('extension ext ')


@pytest.mark.parametrize('name', ['_ext', '-ext', 'ext!', 'e xt', 'n' * 33, '\u00e9t\u00e9', ''])
def test_parse_policy_bad_extension_name(name):
    text = policy('version: STSv1', 'mode: none', 'max_age: 1', name + ': value')
    assert error_of(parse_policy, text) == (
        'policy line 4 %r: field name must be a letter or digit followed by up to 31 letters, digits, "_", "-" or "."' % name)


def test_parse_policy_duplicate_extension():
    text = policy('version: STSv1', 'mode: none', 'max_age: 1', 'ext: 1', 'ext: 2')
    assert error_of(parse_policy, text) == "policy 'ext': field appears more than once"


@pytest.mark.parametrize('value', [None, 42, ['version: STSv1'], {'mode': 'none'}])
def test_parse_policy_wrong_type(value):
    assert error_of(parse_policy, value).endswith('must be a string or bytes')


# ---------------------------------------------------------------- render

CANONICAL = (
    'version: STSv1\r\n'
    'mode: enforce\r\n'
    'mx: mail.example.com\r\n'
    'mx: *.example.net\r\n'
    'mx: backupmx.example.com\r\n'
    'max_age: 604800\r\n'
)


def test_render_policy_canonical():
    assert render_policy({'mode': 'enforce', 'mx': ['mail.example.com', '*.example.net', 'backupmx.example.com'],
                          'max_age': 604800}) == CANONICAL


def test_render_policy_key_order_irrelevant():
    one = {'mode': 'testing', 'mx': ['a.example.com'], 'max_age': 86400, 'extensions': {'b': '2', 'a': '1'}}
    two = {'extensions': {'a': '1', 'b': '2'}, 'max_age': 86400, 'mx': ['a.example.com'], 'mode': 'testing'}
    assert render_policy(one) == render_policy(two)
    assert render_policy(one).endswith('max_age: 86400\r\na: 1\r\nb: 2\r\n')


def test_render_policy_normalizes_input():
    rendered = render_policy({
        'version': 'STSv1',
        'mode': 'testing',
        'mx': ['MAIL.example.com.', 'mail.example.com', '*.Example.NET', 'backup.example.com'],
        'max_age': '0000086400',
        'extensions': {'z': 'last', 'A': 'Gr\u00fc\u00dfe = ; ok'},
    })
    assert rendered == (
        'version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backup.example.com\r\n'
        'max_age: 86400\r\nA: Gr\u00fc\u00dfe = ; ok\r\nz: last\r\n'
    )


def test_render_policy_single_mx_string_and_none():
    assert render_policy({'mode': 'enforce', 'mx': 'mail.example.com', 'max_age': 1}) == (
        'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 1\r\n')
    assert render_policy({'mode': 'none', 'max_age': 1}) == 'version: STSv1\r\nmode: none\r\nmax_age: 1\r\n'
    assert render_policy({'mode': 'none', 'mx': None, 'max_age': 1}) == 'version: STSv1\r\nmode: none\r\nmax_age: 1\r\n'
    assert render_policy({'mode': 'none', 'mx': [], 'max_age': 0, 'extensions': None}) == (
        'version: STSv1\r\nmode: none\r\nmax_age: 0\r\n')


@pytest.mark.parametrize('data, message', [
    ({'mode': 'none', 'max_age': 1, 'foo': 1},
     "policy 'foo': unknown key; allowed: extensions, max_age, mode, mx, version"),
    ({'mode': 'none', 'max_age': 1, 'max-age': 1},
     "policy 'max-age': unknown key; allowed: extensions, max_age, mode, mx, version"),
    ({'max_age': 1}, "policy 'mode': required key is missing"),
    ({'mode': 'none'}, "policy 'max_age': required key is missing"),
    ({'mode': 'Enforce', 'mx': 'a.example.com', 'max_age': 1}, "mode 'Enforce': must be one of enforce, testing, none"),
    ({'mode': None, 'max_age': 1}, 'mode None: must be one of enforce, testing, none'),
    ({'mode': 'none', 'max_age': 1, 'version': 'STSv2'}, "version 'STSv2': must be STSv1"),
    ({'mode': 'none', 'max_age': True}, 'max_age True: must be plain digits (at most 10), from 0 to 31557600'),
    ({'mode': 'none', 'max_age': 1.0}, 'max_age 1.0: must be plain digits (at most 10), from 0 to 31557600'),
    ({'mode': 'none', 'max_age': -1}, 'max_age -1: must be plain digits (at most 10), from 0 to 31557600'),
    ({'mode': 'none', 'max_age': 31557601}, 'max_age 31557601: must be plain digits (at most 10), from 0 to 31557600'),
    ({'mode': 'none', 'max_age': ' 86400'}, "max_age ' 86400': must be plain digits (at most 10), from 0 to 31557600"),
    ({'mode': 'none', 'max_age': None}, 'max_age None: must be plain digits (at most 10), from 0 to 31557600'),
    ({'mode': 'enforce', 'max_age': 1}, 'mx []: at least one mx pattern is required unless mode is none'),
    ({'mode': 'testing', 'mx': [], 'max_age': 1}, 'mx []: at least one mx pattern is required unless mode is none'),
    ({'mode': 'enforce', 'mx': ['*.*.example.com'], 'max_age': 1},
     "mx '*.*.example.com': a wildcard may only be the whole left-most label"),
    ({'mode': 'enforce', 'mx': {'a.example.com': 1}, 'max_age': 1},
     "mx {'a.example.com': 1}: must be a list of patterns or one pattern"),
    ({'mode': 'enforce', 'mx': [None], 'max_age': 1}, 'mx None: must be a string'),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'mode': 'enforce'}},
     "extension name 'mode': is a standard field, not an extension"),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'mx': 'a.example.com'}},
     "extension name 'mx': is a standard field, not an extension"),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'_x': '1'}},
     "extension name '_x': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'x': ' padded'}},
     "extension x ' padded': must be visible characters (UTF-8 allowed) with inner spaces only, and not empty"),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'x': 'two\r\nlines'}},
     "extension x 'two\\r\\nlines': must be visible characters (UTF-8 allowed) with inner spaces only, and not empty"),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'x': ''}},
     "extension x '': must be visible characters (UTF-8 allowed) with inner spaces only, and not empty"),
    ({'mode': 'none', 'max_age': 1, 'extensions': {'x': 1}},
     'extension x 1: must be visible characters (UTF-8 allowed) with inner spaces only, and not empty'),
    ({'mode': 'none', 'max_age': 1, 'extensions': ['x']}, "extensions ['x']: must be a mapping of name to value"),
    ('mode: none', "policy 'mode: none': must be a mapping"),
])
def test_render_policy_invalid(data, message):
    assert error_of(render_policy, data) == message


def test_render_policy_digit_string_max_age():
    assert 'max_age: 31557600\r\n' in render_policy({'mode': 'none', 'max_age': '31557600'})
    assert error_of(render_policy, {'mode': 'none', 'max_age': '31557601'}).startswith("max_age '31557601'")


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize('data', [
    {'mode': 'enforce', 'mx': ['mail.example.com', '*.example.net'], 'max_age': 604800},
    {'mode': 'testing', 'mx': ['mx.example.org'], 'max_age': 0, 'extensions': {'note': 'x = y; z \u2713'}},
    {'mode': 'none', 'mx': [], 'max_age': MAX_AGE_MAX},
])
def test_parse_render_round_trip(data):
    parsed = parse_policy(render_policy(data))
    expected = dict({'version': 'STSv1', 'extensions': {}}, **data)
    assert parsed == expected
    assert render_policy(parsed) == render_policy(data)


@pytest.mark.parametrize('text', [
    CANONICAL,
    'version: STSv1\r\nmode: none\r\nmax_age: 0\r\n',
    'version: STSv1\r\nmode: testing\r\nmx: a.example.com\r\nmax_age: 86400\r\nA: 1\r\nb: x y\r\n',
])
def test_render_parse_round_trip(text):
    assert render_policy(parse_policy(text)) == text


def test_render_makes_non_canonical_text_canonical():
    text = 'max_age:86400\nmx: B.example.com.\nmode: enforce\nversion: STSv1\nz: 1\na: 2'
    assert render_policy(parse_policy(text)) == (
        'version: STSv1\r\nmode: enforce\r\nmx: b.example.com\r\nmax_age: 86400\r\na: 2\r\nz: 1\r\n')


# ---------------------------------------------------------------- policy id

ID_RE = re.compile(r'[a-z2-7]{32}')


def reference_id(data):
    return base64.b32encode(hashlib.sha256(data).digest()[:20]).decode('ascii').lower()


BASE = {'mode': 'enforce', 'mx': ['mail.example.com', '*.example.net', 'backupmx.example.com'], 'max_age': 604800}


def test_policy_id_shape_and_contract():
    value = policy_id(BASE)
    assert ID_RE.fullmatch(value)
    assert validate_id(value) == value
    assert value == reference_id(CANONICAL.encode('utf-8'))


def test_policy_id_pinned_values():
    # Pinned so that any change to the algorithm or to the canonical rendering is noticed:
    # ids already published in DNS would all change (see docs/policy-id.md).
    assert policy_id(BASE) == 'w7d7r3fprrrl7vwiqqjppq25az6mofjh'
    assert policy_id({'mode': 'none', 'max_age': 86400}) == 'ssav5nqud63okutirc7wn6mpoya7ahem'


def test_policy_id_documented_examples():
    # The examples in docs/policy-id.md.
    example = {'mode': 'enforce', 'mx': ['mail.example.com', '*.example.net'], 'max_age': 604800}
    text = render_policy(example)
    assert len(text.encode('utf-8')) == 89
    assert hashlib.sha256(text.encode('utf-8')).hexdigest() == 'edcb11fc0ad1171d90ed6e11df575425b4f176ea94613fbf5dea1bf2f610593c'
    assert policy_id(example) == '5xfrd7ak2elr3ehnnyi56v2uew2pc5xk'
    assert render_sts_record(policy_id(example)) == 'v=STSv1; id=5xfrd7ak2elr3ehnnyi56v2uew2pc5xk;'
    assert policy_id(text.replace('\r\n', '\n')) == 'fkeek3olaxmrzs4jbu5vcfqfgjkhpv3v'
    owner = {'mode': 'testing', 'mx': ['mail.example.com'], 'max_age': 86400, 'extensions': {'owner': 'J\u00fcrgen'}}
    assert policy_id(owner) == 'mblonwdyavqrghlvjpqx4vxiksd35rpo'


def test_policy_id_stable_for_equal_dicts():
    shuffled = {'max_age': 604800, 'mx': ['MAIL.example.com.', '*.example.net', 'backupmx.example.com'], 'mode': 'enforce'}
    assert policy_id(BASE) == policy_id(dict(BASE)) == policy_id(shuffled)
    assert policy_id(dict(BASE, max_age='604800')) == policy_id(BASE)
    assert policy_id(dict(BASE, version='STSv1', extensions={})) == policy_id(BASE)
    one = dict(BASE, extensions={'a': '1', 'b': '2'})
    two = dict(BASE, extensions={'b': '2', 'a': '1'})
    assert policy_id(one) == policy_id(two)


@pytest.mark.parametrize('change', [
    {'mode': 'testing'},
    {'max_age': 604801},
    {'mx': ['mail.example.com', '*.example.net']},
    {'mx': ['mail.example.com', '*.example.net', 'backupmx.example.com', 'new.example.com']},
    {'extensions': {'a': '1'}},
])
def test_policy_id_changes_with_policy(change):
    assert policy_id(dict(BASE, **change)) != policy_id(BASE)


def test_policy_id_of_text_is_hash_of_bytes_as_given():
    lf = CANONICAL.replace('\r\n', '\n')
    assert policy_id(CANONICAL) == policy_id(BASE)
    assert policy_id(CANONICAL.encode('ascii')) == policy_id(BASE)
    assert policy_id(lf) == reference_id(lf.encode('ascii'))
    assert policy_id(lf) != policy_id(CANONICAL)
    # Same meaning, other bytes: another id.
    assert parse_policy(lf) == parse_policy(CANONICAL)


@pytest.mark.parametrize('variant', [
    CANONICAL[:-2],
    CANONICAL + 'ext: 1\r\n',
    CANONICAL.replace('max_age: 604800', 'max_age:  604800'),
    CANONICAL.replace('max_age: 604800', 'max_age: 604800 '),
    CANONICAL.replace('max_age: 604800', 'max_age: 0604800'),
    CANONICAL.replace('mail.example.com', 'MAIL.example.com'),
    CANONICAL.replace('mode: enforce\r\nmx: mail.example.com', 'mx: mail.example.com\r\nmode: enforce'),
])
def test_policy_id_any_byte_change_gives_new_id(variant):
    assert policy_id(variant) != policy_id(CANONICAL)
    assert policy_id(variant) == reference_id(variant.encode('utf-8'))


def test_policy_id_utf8_text():
    text = 'version: STSv1\nmode: none\nmax_age: 1\nowner: J\u00fcrgen\n'
    assert policy_id(text) == reference_id(text.encode('utf-8'))
    assert policy_id(text) == policy_id(text.encode('utf-8'))


@pytest.mark.parametrize('value, message', [
    ('not a policy', "policy line 1 'not a policy': must be \"name: value\""),
    (b'version: STSv1\nmode: none\nmax_age: \xff\n', "policy b'\\xff': is not valid UTF-8"),
    ({'mode': 'enforce', 'max_age': 1}, 'mx []: at least one mx pattern is required unless mode is none'),
    (None, 'policy None: must be a mapping, a string or bytes'),
    (['version: STSv1'], "policy ['version: STSv1']: must be a mapping, a string or bytes"),
])
def test_policy_id_invalid(value, message):
    assert error_of(policy_id, value) == message


@pytest.mark.parametrize('mode, max_age, code', [
    ('enforce', 0, 'max-age-short'),
    ('testing', MAX_AGE_ADVISED - 1, 'max-age-short'),
    ('testing', MAX_AGE_ADVISED, None),
    ('enforce', MAX_AGE_ADVISED, 'max-age-short-enforce'),
    ('enforce', MAX_AGE_ADVISED_ENFORCE - 1, 'max-age-short-enforce'),
    ('enforce', MAX_AGE_ADVISED_ENFORCE, None),
    ('none', 0, None),
])
def test_max_age_advice_thresholds(mode, max_age, code):
    advice = max_age_advice(mode, max_age)
    assert (advice and advice[0]) == code
    if advice:
        assert advice[1].startswith('max_age %d is under a ' % max_age)
