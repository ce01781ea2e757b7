# -*- coding: utf-8 -*-

import pytest

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.mailsec.mta_sts.plugins.filter.mta_sts import FilterModule
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _policy

FILTERS = FilterModule().filters()

POLICY_TEXT = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n'
POLICY = {'mode': 'enforce', 'mx': ['mail.example.com', '*.example.net'], 'max_age': 604800}
VARIABLES = {
    'policy_text': POLICY_TEXT,
    'policy': POLICY,
    'sts_strings': ['v=STSv1; id=abc', '123; ext=1'],
    'tlsrpt': 'v=TLSRPTv1; rua=mailto:tlsrpt@example.com , https://r.example.com:8443/tlsrpt',
    'patterns': ['mail.example.com', '*.example.net'],
}
RENDERED = 'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n'


@pytest.fixture(scope='module')
def templar():
    """A real Templar; tests/conftest.py installed Ansible's collection finder, so it resolves our filters."""
    return Templar(loader=DataLoader(), variables=VARIABLES)


def render(templar, expression):
    return templar.template(trust_as_template('{{ %s }}' % expression))


def test_filter_names():
    assert sorted(FILTERS) == sorted(['parse_policy', 'parse_sts_record', 'parse_tlsrpt_record', 'parse_tlsrpt_report',
                                      'render_policy', 'policy_id', 'mx_match', 'acme_certificate_groups',
                                      'tlsrpt_summary', 'tlsrpt_markdown', 'tlsrpt_enforce_gate', 'drift_report', 'drift_failures',
                                      'mta_sts_state_update', 'mta_sts_live_policy', 'mta_sts_enforce_gate', 'mta_sts_mx_change',
                                      'mta_sts_retirement', 'mta_sts_plan', 'tlsa_rollover', 'tlsa_data'])


def test_templar_acme_certificate_groups(templar):
    # The previous grouping is kept: the new name sorts first but joins the group with room.
    plan = render(templar, "['a.example', 'b.example', 'c.example'] | mailsec.mta_sts.acme_certificate_groups(2, "
                           "{'group-0001': ['mta-sts.b.example', 'mta-sts.c.example']})")
    assert plan['groups'] == {'group-0001': ['mta-sts.b.example', 'mta-sts.c.example'], 'group-0002': ['mta-sts.a.example']}


def test_templar_parse_policy(templar):
    assert render(templar, 'policy_text | mailsec.mta_sts.parse_policy') == {
        'version': 'STSv1', 'mode': 'enforce', 'max_age': 604800, 'mx': ['mail.example.com', '*.example.net'], 'extensions': {},
    }


def test_templar_render_policy(templar):
    assert render(templar, 'policy | mailsec.mta_sts.render_policy') == RENDERED


def test_templar_render_parse_round_trip(templar):
    assert render(templar, 'policy_text | mailsec.mta_sts.parse_policy | mailsec.mta_sts.render_policy') == RENDERED


def test_templar_policy_id(templar):
    assert render(templar, 'policy | mailsec.mta_sts.policy_id') == _policy.policy_id(POLICY)
    assert render(templar, 'policy | mailsec.mta_sts.render_policy | mailsec.mta_sts.policy_id') == _policy.policy_id(POLICY)
    assert render(templar, 'policy_text | mailsec.mta_sts.policy_id') == _policy.policy_id(POLICY_TEXT)
    assert render(templar, 'policy_text | mailsec.mta_sts.policy_id') != _policy.policy_id(POLICY)


def test_templar_parse_sts_record(templar):
    assert render(templar, 'sts_strings | mailsec.mta_sts.parse_sts_record') == {
        'version': 'STSv1', 'id': 'abc123', 'extensions': {'ext': '1'},
    }
    assert render(templar, "'v=STSv1; id=xyz;' | mailsec.mta_sts.parse_sts_record") == {
        'version': 'STSv1', 'id': 'xyz', 'extensions': {},
    }


def test_templar_parse_tlsrpt_record(templar):
    assert render(templar, 'tlsrpt | mailsec.mta_sts.parse_tlsrpt_record') == {
        'version': 'TLSRPTv1', 'rua': ['mailto:tlsrpt@example.com', 'https://r.example.com:8443/tlsrpt'], 'extensions': {},
    }


@pytest.mark.parametrize('expression, expected', [
    ("'mail.example.com' | mailsec.mta_sts.mx_match('mail.example.com')", True),
    ("'MX1.Example.NET.' | mailsec.mta_sts.mx_match('*.example.net')", True),
    ("'a.b.example.net' | mailsec.mta_sts.mx_match('*.example.net')", False),
    ("'example.net' | mailsec.mta_sts.mx_match(patterns)", False),
    ("'mx9.example.net' | mailsec.mta_sts.mx_match(patterns)", True),
    ("'mail.example.org' | mailsec.mta_sts.mx_match(patterns)", False),
])
def test_templar_mx_match(templar, expression, expected):
    assert render(templar, expression) is expected


@pytest.mark.parametrize('expression, message', [
    ("'x.example.com' | mailsec.mta_sts.mx_match('*.*.example.com')",
     "mx '*.*.example.com': a wildcard may only be the whole left-most label"),
    ("{'mode': 'none', 'max_age': 1, 'foo': 2} | mailsec.mta_sts.render_policy",
     "policy 'foo': unknown key; allowed: extensions, max_age, mode, mx, version"),
    ("'v=STSv1; id=test-123;' | mailsec.mta_sts.parse_sts_record", "id 'test-123': must be 1 to 32 letters or digits"),
    ("'v=TLSRPTv1; rua=noscheme' | mailsec.mta_sts.parse_tlsrpt_record", "rua 'noscheme': must start with mailto: or https:"),
    ("policy_text | replace('604800', '31557601') | mailsec.mta_sts.parse_policy",
     "max_age '31557601': must be plain digits (at most 10), from 0 to 31557600"),
    ("{'mode': 'enforce', 'max_age': 1} | mailsec.mta_sts.policy_id", 'mx []: at least one mx pattern is required unless mode is none'),
])
def test_templar_errors_keep_the_message(templar, expression, message):
    with pytest.raises(AnsibleError) as err:
        render(templar, expression)
    assert message in str(err.value)


@pytest.mark.parametrize('name, args, message', [
    ('parse_policy', ('mode: none',), "policy 'version': required field is missing"),
    ('parse_sts_record', ('v=STSv1; id=' + 'a' * 33,), 'id %r: must be 1 to 32 letters or digits' % ('a' * 33)),
    ('parse_tlsrpt_record', ('v=TLSRPTv1',), "tlsrpt record 'v=TLSRPTv1': must have at least one field after v=TLSRPTv1"),
    ('render_policy', ({'mode': 'none', 'max_age': True},), 'max_age True: must be plain digits (at most 10), from 0 to 31557600'),
    ('policy_id', (42,), 'policy 42: must be a mapping, a string or bytes'),
    ('mx_match', ('mail.example.com', 'mx*.example.com'), "mx 'mx*.example.com': a wildcard may only be the whole left-most label"),
])
def test_filter_errors_are_filter_errors(name, args, message):
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS[name](*args)
    assert err.value.message == message


def test_filters_call_the_core():
    assert FILTERS['render_policy'](POLICY) == RENDERED
    assert FILTERS['policy_id'](POLICY) == _policy.policy_id(POLICY)
    assert FILTERS['parse_policy'](RENDERED.encode('ascii')) == _policy.parse_policy(POLICY_TEXT)
    assert FILTERS['mx_match']('mx1.example.net', ('*.example.net',)) is True
