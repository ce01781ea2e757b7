"""The pure parts of served_policy_info (_served): its input rules and how one address and one domain are judged."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _served
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from tests.unit.plugins.module_utils.test_checks import NOW, failed_fetch, fetch

NEW = {'mode': 'enforce', 'mx': ['mx1.example.com'], 'max_age': 604800}
NEW_TEXT = render_policy(NEW)
OLD_TEXT = render_policy(dict(NEW, mode='testing'))


def expected(policy=None, addresses=None):
    [parsed] = _served.parse_domains([{'domain': 'Example.COM.', 'policy': policy or NEW, 'addresses': addresses}])
    return parsed


def test_a_dict_is_expected_as_rendered_and_text_byte_for_byte():
    assert expected().body == NEW_TEXT.encode() and expected().id == policy_id(NEW)
    lf = NEW_TEXT.replace('\r\n', '\n')
    assert expected(lf).body == lf.encode() and expected(lf).id != policy_id(NEW)
    assert (expected().domain, expected().host) == ('example.com', 'mta-sts.example.com')


def test_inventory_keys_pass_and_addresses_are_normalised():
    [parsed] = _served.parse_domains([{'domain': 'example.com', 'policy': NEW, 'rua': ['mailto:x@example.com'],
                                       'host_record': {'addresses': ['192.0.2.1']}, 'addresses': ['2001:DB8::0010', '192.0.2.1', '192.0.2.1']}])
    assert parsed.addresses == ['2001:db8::10', '192.0.2.1']
    assert expected().addresses is None


@pytest.mark.parametrize('domains, message', [
    ([], 'domains []: give at least one domain'),
    (['example.com'], "domains[0] 'example.com': must be a dict with domain and policy"),
    ([{'policy': NEW}], 'domains[0].domain None'),
    ([{'domain': 'example.com', 'policy': 'mode: enforce'}], 'domains[0].policy'),
    ([{'domain': 'example.com', 'policy': {'mode': 'enforce', 'max_age': 1}}], 'domains[0].policy'),
    ([{'domain': 'example.com', 'policy': NEW, 'addresses': '192.0.2.1'}], "domains[0].addresses '192.0.2.1': must be a non-empty list"),
    ([{'domain': 'example.com', 'policy': NEW, 'addresses': ['mta-sts.example.com']}],
     "domains[0].addresses[0] 'mta-sts.example.com': must be an IPv4 or IPv6 address"),
])
def test_bad_items_name_the_field(domains, message):
    with pytest.raises(ValidationError) as caught:
        _served.parse_domains(domains)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize('wait_timeout, interval, message', [
    (3601, 5, 'wait_timeout 3601: must be 0 (one try) to 3600 seconds'),
    (True, 5, 'wait_timeout True'),
    (10, 0, 'interval 0: must be more than 0 and at most 600 seconds'),
    (10, 601, 'interval 601'),
])
def test_wait_options(wait_timeout, interval, message):
    with pytest.raises(ValidationError) as caught:
        _served.check_wait(wait_timeout, interval)
    assert str(caught.value).startswith(message)
    _served.check_wait(0, 0.1)


def test_an_address_serving_the_expected_bytes_matches():
    entry = _served.judge_address(expected(), '192.0.2.1', fetch(body=NEW_TEXT.encode()), NOW, 14)
    assert entry == {'address': '192.0.2.1', 'status': 200, 'id': policy_id(NEW), 'matches': True, 'error': None, 'findings': []}


def test_old_bytes_differ_with_their_id_and_no_error():
    entry = _served.judge_address(expected(), '192.0.2.2', fetch(body=OLD_TEXT.encode()), NOW, 14)
    assert (entry['matches'], entry['id'], entry['error']) == (False, policy_id(OLD_TEXT), None)
    result = _served.judge_domain(expected(), [entry])
    assert result['reason'] == 'mta-sts.example.com at 192.0.2.2 serves the policy with id %s, not %s' % (
        policy_id(OLD_TEXT), policy_id(NEW))


def test_the_right_bytes_rejected_by_a_strict_sender_do_not_match():
    # A sender drops a policy that is not text/plain, whatever its bytes.
    entry = _served.judge_address(expected(), '192.0.2.1', fetch(body=NEW_TEXT.encode(), content_type='text/html'), NOW, 14)
    assert entry['matches'] is False and entry['id'] == policy_id(NEW)
    assert entry['error'].startswith('policy-content-type: Content-Type is ')


def test_failed_fetch_and_garbage_name_the_error():
    refused = _served.judge_address(expected(), '192.0.2.3', failed_fetch('connect', 'mta-sts.example.com:443: refused'), NOW, 14)
    assert (refused['status'], refused['id'], refused['matches']) == (None, None, False)
    assert refused['error'] == 'policy-fetch-failed: connect: mta-sts.example.com:443: refused'
    garbage = _served.judge_address(expected(), '192.0.2.4', fetch(body=b'<html>hello</html>'), NOW, 14)
    assert garbage['id'] is None and garbage['error'].startswith('policy-invalid: ')


def test_an_expiring_certificate_warns_but_the_policy_is_served():
    soon = {'names': ['mta-sts.example.com'], 'not_after': '2026-06-03T00:00:00Z', 'issuer': 'CN=x'}
    entry = _served.judge_address(expected(), '192.0.2.1', fetch(body=NEW_TEXT.encode(), cert=soon), NOW, 14)
    assert entry['matches'] is True and [item['code'] for item in entry['findings']] == ['policy-certificate-expiring']


def test_a_domain_is_served_only_when_every_address_matches():
    good = _served.judge_address(expected(), '192.0.2.1', fetch(body=NEW_TEXT.encode()), NOW, 14)
    old = _served.judge_address(expected(), '192.0.2.2', fetch(body=OLD_TEXT.encode()), NOW, 14)
    assert _served.judge_domain(expected(), [good, good], attempts=2) == {
        'domain': 'example.com', 'served': True, 'expected_id': policy_id(NEW), 'addresses': [good, good], 'reason': None, 'attempts': 2}
    mixed = _served.judge_domain(expected(), [good, old])
    assert mixed['served'] is False and '192.0.2.2' in mixed['reason'] and '192.0.2.1' not in mixed['reason']
    assert _served.judge_domain(expected(), [])['reason'] == 'mta-sts.example.com has no address to fetch from'
    nxdomain = _served.judge_domain(expected(), [], 'the name does not exist')
    assert nxdomain['served'] is False and nxdomain['reason'] == 'mta-sts.example.com has no address to fetch from: the name does not exist'
