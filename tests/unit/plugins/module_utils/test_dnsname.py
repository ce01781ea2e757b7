import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _dnsname
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
    # U-labels become A-labels by IDNA 2008: mapped to lower case, and ß stays ß (non-transitional).
    ('B\u00fccher.Example.', 'xn--bcher-kva.example'),
    ('mail.b\u00fccher.xn--bcher-kva.example', 'mail.xn--bcher-kva.xn--bcher-kva.example'),
    ('stra\u00dfe.de', 'xn--strae-oqa.de'),
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
    ('\u212aelvin.example', "label '\u212aelvin' maps to the ASCII label 'kelvin': write it in ASCII"),
    ('\U0001f600.example', 'is not a valid internationalised name under IDNA 2008'),
    ('b\u00fccher_.example', 'not a valid internationalised name under IDNA 2008'),
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


def test_without_the_idna_package_the_error_names_the_a_label(monkeypatch):
    monkeypatch.setattr(_dnsname, 'HAS_IDNA', False)
    with pytest.raises(ValidationError) as err:
        normalize_domain('b\u00fccher.example')
    message = str(err.value)
    assert 'Python package idna (IDNA 2008) is not installed' in message
    assert 'give the A-label instead: xn--bcher-kva.example' in message
    assert normalize_domain('xn--bcher-kva.example') == 'xn--bcher-kva.example'
