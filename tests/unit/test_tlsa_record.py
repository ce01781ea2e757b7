"""The TLSA record kind without any server: input checks per host, the plan at ``_<port>._tcp.<host>``, and the
pure judgement of the serving check."""

import hashlib
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import TLSA_RECORD, build_items
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRset, encode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import judge_removal
from tests.lab.pki import LabCA, self_signed


def spki_sha256(cert_pem):
    """The oracle: openssl's SPKI of the certificate, hashed."""
    pub = subprocess.run(['openssl', 'x509', '-noout', '-pubkey'], input=cert_pem, check=True, capture_output=True).stdout
    der = subprocess.run(['openssl', 'pkey', '-pubin', '-outform', 'DER'], input=pub, check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope='module')
def keys():
    return {name: self_signed(['mx1.example.com'])[0] for name in ('a', 'b', 'c')}


def params(**options):
    base = dict(host=None, hosts=None, state='present', smtp_port=25, current=None, next=None, records=None,
                usage=3, selector=1, matching_type=1)
    base.update(options)
    return base


def test_current_and_next_give_two_3_1_1_records_at_the_port_name(keys):
    items = build_items(params(hosts=['MX1.Example.com.', {'host': 'mx2.example.com', 'smtp_port': 2525}],
                               current=keys['a'], next=keys['b']), TLSA_RECORD)
    assert [item.name for item in items] == ['_25._tcp.mx1.example.com', '_2525._tcp.mx2.example.com']
    expected = [(3, 1, 1, spki_sha256(keys['a'])), (3, 1, 1, spki_sha256(keys['b']))]
    assert [item.wanted for item in items] == [expected, expected]
    assert items[0].extra == {'port': 25, 'current': encode('TLSA', expected[0]), 'next': encode('TLSA', expected[1])}
    assert items[0].warnings == []


def test_a_host_may_be_listed_again_for_another_port_only(keys):
    items = build_items(params(hosts=['mx1.example.com', {'host': 'mx1.example.com', 'smtp_port': 465}],
                               current=keys['a']), TLSA_RECORD)
    assert [item.name for item in items] == ['_25._tcp.mx1.example.com', '_465._tcp.mx1.example.com']
    with pytest.raises(ValidationError, match=r"hosts\[1\].host 'mx1.example.com': listed more than once"):
        build_items(params(hosts=['mx1.example.com', {'host': 'MX1.example.com.', 'smtp_port': 25}],
                           current=keys['a']), TLSA_RECORD)


def test_same_key_twice_and_a_ready_record_are_published_once_each(keys):
    digest = spki_sha256(keys['a'])
    items = build_items(params(host='mx1.example.com', current=keys['a'], next=keys['a'],
                               records=['3 1 1 ' + digest.upper(), '3 1 1 ' + 'ab' * 32]), TLSA_RECORD)
    assert items[0].wanted == [(3, 1, 1, digest), (3, 1, 1, 'ab' * 32)]


def test_an_item_takes_its_own_parameters_else_the_tasks_and_2_1_1_warns(keys):
    ca = LabCA()
    items = build_items(params(hosts=[{'host': 'mx1.example.com', 'usage': 2, 'current': ca.chain_pem.decode()},
                                      'mx2.example.com'], current=keys['a'], matching_type=2), TLSA_RECORD)
    assert items[0].wanted[0][:3] == (2, 1, 2) and items[1].wanted[0][:3] == (3, 1, 2)
    assert any("Let's Encrypt" in text and text.startswith('mx1.example.com: ') for text in items[0].warnings)
    assert items[1].warnings == []


@pytest.mark.parametrize('options, field, rule', [
    (dict(hosts=['mx1.example.com', {'host': 'mx2.example.com', 'next': 'garbage'}]), 'hosts[1].next', 'no PEM block'),
    (dict(hosts=['mx1.example.com', {'host': 'mx2.example.com', 'usage': 1, 'next': 'x'}]), 'hosts[1].usage',
     'unusable for SMTP'),
    (dict(host='mx1.example.com', selector=2), 'selector', 'must be one of 0 (Cert), 1 (SPKI)'),
    (dict(host='mx1.example.com', matching_type=3), 'matching_type', 'must be one of'),
    (dict(host='mx1.example.com', usage=4), 'usage', 'must be one of 2 (DANE-TA), 3 (DANE-EE)'),
    (dict(host='_25._tcp.mx1.example.com'), 'host', 'bad label'),
    (dict(host='mx1'), 'host', 'at least two labels'),
    (dict(hosts=['mx1.example.com', 'MX1.example.com']), 'hosts[1].host', 'listed more than once'),
    (dict(hosts=[{'host': 'mx1.example.com', 'smtp_port': 0}]), 'hosts[0].smtp_port', '1 to 65535'),
    (dict(hosts=[{'host': 'mx1.example.com', 'smtp_port': 'smtp'}]), 'hosts[0].smtp_port', '1 to 65535'),
    (dict(hosts=[{'host': 'mx1.example.com', 'usage': 'three'}]), 'hosts[0].usage', 'must be one of'),
    (dict(hosts=[{'domain': 'mx1.example.com'}]), 'hosts[0].domain', 'unknown key'),
    (dict(hosts=[]), 'hosts', 'give at least one host'),
    (dict(host='mx1.example.com', current=None), 'current', 'current, next or records is required'),
    (dict(host='mx1.example.com', records=['1 1 1 ' + 'ab' * 32]), 'records[0].usage', 'unusable for SMTP'),
    (dict(host='mx1.example.com', records=['3 1 1 abcd']), 'records[0]', 'matching type 1 needs 64 hex digits'),
    (dict(host='mx1.example.com', records='3 1 1 ' + 'ab' * 32), 'records', 'must be a list'),
])
def test_bad_input_is_refused_naming_the_field(keys, options, field, rule):
    options.setdefault('current', keys['a'])
    with pytest.raises(ValidationError) as error:
        build_items(params(**options), TLSA_RECORD)
    assert error.value.field == field
    assert rule in str(error.value)


def test_numbers_of_an_item_templated_to_digit_strings_are_numbers(keys):
    [item] = build_items(params(hosts=[{'host': 'mx1.example.com', 'smtp_port': '2525', 'usage': '2', 'selector': '0',
                                        'matching_type': '2'}], current=keys['a']), TLSA_RECORD)
    assert item.name == '_2525._tcp.mx1.example.com' and item.wanted[0][:3] == (2, 0, 2)


def test_selector_0_of_a_public_key_names_the_option(keys):
    public = subprocess.run(['openssl', 'x509', '-noout', '-pubkey'], input=keys['a'], check=True,
                            capture_output=True).stdout.decode()
    with pytest.raises(ValidationError) as error:
        build_items(params(hosts=[{'host': 'mx1.example.com', 'next': public, 'selector': 0}]), TLSA_RECORD)
    assert error.value.field == 'hosts[0].next' and 'selector 0 (Cert) needs a certificate' in error.value.rule


def plan(item, found):
    TLSA_RECORD.plan_item(item, found, 3600)
    return item.changes[0]


def test_plan_adds_next_keeps_current_and_leaves_other_types(keys):
    current, nxt = (3, 1, 1, spki_sha256(keys['a'])), (3, 1, 1, spki_sha256(keys['b']))
    item = build_items(params(host='mx1.example.com', current=keys['a'], next=keys['b']), TLSA_RECORD)[0]
    change = plan(item, {'TLSA': RRset(item.name, 'TLSA', 3600, [current])})
    assert (change.before, change.after, change.add, change.remove) == ([current], [current, nxt], [nxt], [])
    assert TLSA_RECORD.removal(item) == ([], [current, nxt])
    assert len(item.changes) == 1 and item.changes[0].rtype == 'TLSA'
    result = item.result()
    assert result['host'] == 'mx1.example.com' and result['after'] == [encode('TLSA', current), encode('TLSA', nxt)]

    again = build_items(params(host='mx1.example.com', current=keys['b'], next=keys['a']), TLSA_RECORD)[0]
    assert not plan(again, {'TLSA': RRset(item.name, 'TLSA', 3600, [current, nxt])}).changed


def test_plan_of_absent_removes_the_rrset_and_says_what_goes(keys):
    current = (3, 1, 1, spki_sha256(keys['a']))
    item = build_items(params(host='mx1.example.com', state='absent'), TLSA_RECORD)[0]
    change = plan(item, {'TLSA': RRset(item.name, 'TLSA', 300, [current])})
    assert change.after == [] and change.remove == [current]
    assert TLSA_RECORD.removal(item) == ([current], [])
    assert 'IN TLSA 3 1 1 ' + current[3] in item.diff()[0]['before'] and item.diff()[0]['after'] == ''


def test_a_cname_at_the_name_is_refused(keys):
    item = build_items(params(host='mx1.example.com', current=keys['a']), TLSA_RECORD)[0]
    with pytest.raises(ConflictError, match='_25._tcp.mx1.example.com is a CNAME to tlsa.hoster.example'):
        plan(item, {'TLSA': RRset(item.name, 'TLSA'), 'CNAME': RRset(item.name, 'CNAME', 300, ['tlsa.hoster.example'])})
    assert item.changes == []


def served(cert_pem):
    return {'error': None, 'starttls': True,
            'chain_der': [c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(cert_pem)]}


def test_judge_removal_refuses_dropping_the_served_key_and_allows_the_other(keys):
    a, b = (3, 1, 1, spki_sha256(keys['a'])), (3, 1, 1, spki_sha256(keys['b']))
    serving, refusal = judge_removal([a], [b], served(keys['a']))
    assert serving == {'matched': [encode('TLSA', a)], 'served_spki_sha256': a[3], 'error': None}
    assert 'which this change removes' in refusal and encode('TLSA', a) in refusal
    assert judge_removal([b], [a], served(keys['a'])) == (
        {'matched': [encode('TLSA', a)], 'served_spki_sha256': a[3], 'error': None}, None)
    # The served key is kept under another record form (3 0 1 of the same certificate): still matched.
    full = (3, 0, 1, hashlib.sha256(served(keys['a'])['chain_der'][0]).hexdigest())
    assert judge_removal([a], [full], served(keys['a']))[1] is None
    # The MX serves a third key: removing a or b drops nothing that matches.
    assert judge_removal([a], [b], served(keys['c']))[1] is None


@pytest.mark.parametrize('probe, reason', [
    ({'error': {'kind': 'connect', 'message': 'connection refused'}, 'chain_der': None}, 'connection refused'),
    ({'error': None, 'starttls': False, 'chain_der': None}, 'does not offer STARTTLS'),
    ({'error': None, 'starttls': True, 'chain_der': [b'\x01\x02']}, 'not DER X.509'),
    ({}, 'no certificate chain was captured'),
])
def test_judge_removal_refuses_when_the_mx_cannot_be_probed(keys, probe, reason):
    serving, refusal = judge_removal([(3, 1, 1, 'ab' * 32)], [], probe)
    assert reason in serving['error'] and reason in refusal and serving['matched'] == []
