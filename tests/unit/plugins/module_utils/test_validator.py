"""The validator's input: terms, record-module items, host lists and options, refused before any lookup."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import check_options, parse_hosts, parse_terms, probe_hosts

POLICY = {'mode': 'enforce', 'mx': ['mx1.example.com'], 'max_age': 1209600}
OPTIONS = {'nameservers': None, 'timeout': 10.0, 'concurrency': 16, 'expiry_warning_days': 14}


def test_plain_terms_share_the_default_expect():
    assert parse_terms(['Example.COM.', 'b.example'], {'mode': 'enforce'}) == [
        ('example.com', {'mode': 'enforce'}), ('b.example', {'mode': 'enforce'})]
    assert parse_terms(['example.com']) == [('example.com', None)]


def test_record_module_items_are_their_own_expect():
    [(domain, expect)] = parse_terms([{'domain': 'example.com', 'policy': POLICY, 'rua': 'mailto:t@example.com', 'state': 'present'}])
    assert domain == 'example.com'
    assert expect['id'] == policy_id(POLICY) and expect['rua'] == ['mailto:t@example.com'] and expect['mode'] == 'enforce'
    assert parse_terms([{'domain': 'example.com', 'state': 'absent', 'policy': POLICY}]) == [('example.com', {'state': 'absent'})]
    # state: present alone expects nothing of its own: the default applies.
    assert parse_terms([{'domain': 'example.com', 'state': 'present'}], {'mode': 'testing'}) == [('example.com', {'mode': 'testing'})]
    assert parse_terms([{'domain': 'example.com', 'expect': {'id': 'abc'}}]) == [('example.com', {'id': 'abc'})]


@pytest.mark.parametrize('terms, text', [
    (['example.com', 'EXAMPLE.COM.'], "terms[1] 'EXAMPLE.COM.': is example.com again, already listed as terms[0]"),
    ([{'domain': 'a.example'}, {'domain': 'A.example'}], "terms[1] {'domain': 'A.example'}: is a.example again, already listed as terms[0]"),
    ([{'domain': 'example.com', 'zone': 'example.com'}], "terms[0].zone 'example.com': unknown key; allowed: domain, expect, policy"),
    ([{'domain': 'example.com', 'mode': 'always'}], "terms[0].mode 'always': must be one of enforce, testing, none"),
    ([{'domain': 'example.com', 'policy': {'mode': 'enforce', 'max_age': 1}}], 'terms[0].policy.mx []: at least one mx pattern'),
    ([{'domain': 'example.com', 'expect': {'mode': 'x'}}], "terms[0].expect.mode 'x': must be one of"),
    ([{'domain': 'example.com', 'expect': {'mode': 'none'}, 'id': 'abc'}], "terms[0].expect {'mode': 'none'}: give expect or the keys id, not both"),
    ([{'domain': 'example.com', 'state': 'gone'}], "terms[0].state 'gone': must be present or absent"),
    (['bad domain'], "terms[0] 'bad domain'"),
])
def test_bad_terms_name_the_term(terms, text):
    with pytest.raises(ValidationError) as err:
        parse_terms(terms)
    assert str(err.value).startswith(text)


def test_the_module_names_its_domains_option():
    with pytest.raises(ValidationError, match=r"^domains\[1\] 'example.com': is example.com again, already listed as domains\[0\]"):
        parse_terms(['example.com', 'example.com'], name='domains')


def test_hosts():
    assert parse_hosts(['MX1.example.com.', 'mx2.example.com']) == ['mx1.example.com', 'mx2.example.com']
    with pytest.raises(ValidationError, match=r"^hosts\[1\] 'Mx1.Example.com': is mx1.example.com again, already listed as hosts\[0\]"):
        parse_hosts(['mx1.example.com', 'Mx1.Example.com'])
    with pytest.raises(ValidationError, match='^hosts'):
        parse_hosts([])


@pytest.mark.parametrize('days', [-1, 366, True, None, 1.5])
def test_expiry_warning_days_is_checked(days):
    with pytest.raises(ValidationError, match='^expiry_warning_days .*: must be a whole number of days from 0 to 365'):
        check_options(dict(OPTIONS, expiry_warning_days=days))


@pytest.mark.parametrize('days', [0, 14, 365])
def test_expiry_warning_days_accepted(days):
    check_options(dict(OPTIONS, expiry_warning_days=days))


def test_expect_text_policy_in_an_item():
    text = render_policy(POLICY)
    [(_domain, expect)] = parse_terms([{'domain': 'example.com', 'policy': text}])
    assert expect['policy'] == policy_id(text)


def test_probe_address_must_be_an_ip_address():
    with pytest.raises(ValidationError) as caught:
        probe_hosts(['mx1.example.com'], address='mx.example.com')
    assert str(caught.value) == "address 'mx.example.com': must be an IPv4 or IPv6 address"


def test_probe_address_is_connected_to_instead_of_resolving(monkeypatch):
    class NoResolver:
        def addresses(self, host, deadline):
            raise AssertionError('resolved %s although an address was given' % host)

    connected = []

    def refuse(addresses, port, deadline):
        connected.append((list(addresses), port))
        raise ConnectionRefusedError('refused')

    monkeypatch.setattr(_live, '_connect', refuse)
    facts = _live.probe_mx(NoResolver(), 'mx1.example.com', timeout=1, addresses=['::1'])
    assert connected == [(['::1'], 25)]
    assert facts['addresses'] == ['::1'] and facts['error']['kind'] == 'connect'
