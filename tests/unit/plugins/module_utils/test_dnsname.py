import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError


@pytest.mark.parametrize('value, expected', [
    ('example.com', 'example.com'),
    ('Example.COM.', 'example.com'),
    ('mail-1.sub.example.co.uk', 'mail-1.sub.example.co.uk'),
    ('a.b', 'a.b'),
    ('xn--bcher-kva.example', 'xn--bcher-kva.example'),
    ('1.example.com', '1.example.com'),
    ('example.c0m', 'example.c0m'),
    ('a' * 63 + '.com', 'a' * 63 + '.com'),
])
def test_valid_domains(value, expected):
    assert normalize_domain(value) == expected


@pytest.mark.parametrize('value, rule', [
    ('', 'must not be empty'),
    ('.', 'must not be empty'),
    ('com', 'must have at least two labels'),
    ('localhost.', 'must have at least two labels'),
    ('a..example.com', "bad label ''"),
    ('example.com..', "bad label ''"),
    ('-mail.example.com', "bad label '-mail'"),
    ('mail-.example.com', "bad label 'mail-'"),
    ('_mta-sts.example.com', "bad label '_mta-sts'"),
    ('mail example.com', "bad label 'mail example'"),
    ('b\u00fccher.example', "bad label 'b\u00fccher'"),
    ('\u212aelvin.example', "bad label '\u212aelvin'"),
    ('*.example.com', "bad label '*'"),
    ('a' * 64 + '.com', 'bad label'),
    ('1.2.3.4', 'the last label must not be all digits'),
    ('example.123', 'the last label must not be all digits'),
])
def test_invalid_domains(value, rule):
    with pytest.raises(ValidationError) as err:
        normalize_domain(value)
    assert rule in str(err.value)
    assert str(err.value).startswith('domain %r: ' % value)


def test_total_length_limit():
    label = 'a' * 63
    name = '.'.join([label, label, label, 'a' * 61])
    assert len(name) == 253
    assert normalize_domain(name) == name
    assert normalize_domain(name + '.') == name
    with pytest.raises(ValidationError, match='at most 253 characters'):
        normalize_domain(name + 'a')


@pytest.mark.parametrize('value', [None, b'example.com', 42, ['example.com']])
def test_not_a_string(value):
    with pytest.raises(ValidationError, match='must be a string'):
        normalize_domain(value)


def test_field_name_in_message():
    with pytest.raises(ValidationError) as err:
        normalize_domain('com', field='policy_domain')
    assert str(err.value) == "policy_domain 'com': must have at least two labels"
    assert err.value.field == 'policy_domain'
    assert err.value.value == 'com'
