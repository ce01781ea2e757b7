import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._mx import matches, matches_any, normalize_pattern


@pytest.mark.parametrize('value, expected', [
    ('mail.example.com', 'mail.example.com'),
    ('MAIL.Example.com.', 'mail.example.com'),
    ('*.example.com', '*.example.com'),
    ('*.Example.NET.', '*.example.net'),
    ('*.mx.example.co.uk', '*.mx.example.co.uk'),
])
def test_normalize_valid(value, expected):
    assert normalize_pattern(value) == expected


@pytest.mark.parametrize('value', [
    '*.*.example.com', 'mx*.example.com', 'a.*.example.com', '*', '*.', '**.example.com',
    'example.*', '*example.com', 'mail.example.com*',
])
def test_wildcard_only_whole_leftmost_label(value):
    with pytest.raises(ValidationError) as err:
        normalize_pattern(value)
    assert str(err.value) == 'mx %r: a wildcard may only be the whole left-most label' % value


def test_exact_wildcard_message():
    with pytest.raises(ValidationError) as err:
        normalize_pattern('*.*.example.com')
    assert str(err.value) == "mx '*.*.example.com': a wildcard may only be the whole left-most label"


@pytest.mark.parametrize('value, rule', [
    ('localhost', 'must have at least two labels'),
    ('*.com', 'must have at least two labels'),
    ('', 'must not be empty'),
    ('mx_1.example.com', 'bad label'),
    ('*.-x.example.com', 'bad label'),
    ('mail.example.com:25', 'bad label'),
    ('mx.example.123', 'must not be all digits'),
])
def test_normalize_invalid(value, rule):
    with pytest.raises(ValidationError) as err:
        normalize_pattern(value)
    assert rule in str(err.value)
    assert str(err.value).startswith('mx %r: ' % value)


def test_normalize_not_a_string():
    with pytest.raises(ValidationError, match='must be a string'):
        normalize_pattern(None)


def test_normalize_field_name():
    with pytest.raises(ValidationError) as err:
        normalize_pattern('x', field='policy.mx[2]')
    assert str(err.value).startswith("policy.mx[2] 'x': ")


@pytest.mark.parametrize('pattern, host, expected', [
    ('mail.example.com', 'mail.example.com', True),
    ('mail.example.com', 'MAIL.EXAMPLE.COM', True),
    ('MAIL.example.com.', 'mail.example.com', True),
    ('mail.example.com', 'mail.example.com.', True),
    ('mail.example.com', 'mail2.example.com', False),
    ('mail.example.com', 'example.com', False),
    ('mail.example.com', 'x.mail.example.com', False),
    ('*.example.com', 'mx1.example.com', True),
    ('*.example.com', 'MX1.Example.Com.', True),
    ('*.example.com', 'example.com', False),
    ('*.example.com', 'a.b.example.com', False),
    ('*.example.com', 'mx1.example.org', False),
    ('*.example.com', 'mx1.notexample.com', False),
    ('*.example.com', 'mx1example.com', False),
    ('*.example.com', '.example.com', False),
    ('*.example.com', '.', False),
    ('*.example.com', '', False),
    ('*.example.com', '*.example.com', False),
])
def test_matches(pattern, host, expected):
    assert matches(pattern, host) is expected


def test_matches_invalid_pattern_raises():
    with pytest.raises(ValidationError, match='wildcard'):
        matches('*.*.example.com', 'a.b.example.com')


def test_matches_host_not_a_string():
    with pytest.raises(ValidationError, match="host None: must be a string"):
        matches('mail.example.com', None)


def test_matches_any():
    patterns = ['mail.example.com', '*.mx.example.net']
    assert matches_any(patterns, 'mail.example.com.') is True
    assert matches_any(patterns, 'a.mx.example.net') is True
    assert matches_any(patterns, 'mx.example.net') is False
    assert matches_any('*.example.com', 'mx1.example.com') is True
    assert matches_any([], 'mx1.example.com') is False


def test_matches_any_validates_every_pattern():
    with pytest.raises(ValidationError, match="mx 'bad\\*.example.com'"):
        matches_any(['mail.example.com', 'bad*.example.com'], 'mail.example.com')


def test_matches_any_rejects_non_list():
    with pytest.raises(ValidationError, match='must be a list of patterns'):
        matches_any({'mail.example.com': 1}, 'mail.example.com')
