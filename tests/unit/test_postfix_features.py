"""Which newer Postfix features postfix_tls applies, decided from recorded `postconf -d` output.

3.7.11.txt is this machine's real output; 3.10.4, 3.10.5 and 3.11.0 are made from it plus the parameters those
releases add (each file's header says how).
"""

import os

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _postfix

DATA = os.path.join(os.path.dirname(__file__), 'data', 'postconf')
ALL = dict(tlsrpt=True, enforce_sts_mx_patterns=True, requiretls=True)


def defaults(version):
    with open(os.path.join(DATA, version + '.txt')) as handle:
        return _postfix.parse_postconf(handle.read())


def applied(plan):
    return sorted(name for name, entry in plan.items() if entry['applied'])


@pytest.mark.parametrize('version', ['3.7.11', '3.10.4', '3.10.5', '3.11.0'])
def test_the_recorded_outputs_parse_and_carry_their_version(version):
    values = defaults(version)
    assert values['mail_version'] == version
    assert _postfix.parse_version(values['mail_version']) == tuple(int(part) for part in version.split('.'))
    assert len(values) > 1000


def test_on_3_7_every_feature_is_skipped_naming_the_release_that_has_it():
    plan = _postfix.feature_plan(defaults('3.7.11'), ALL, tlsrpt_built=False)
    assert applied(plan) == []
    assert plan['tlsrpt']['reason'] == ('skipped: needs Postfix 3.10.0 or later (smtp_tlsrpt_enable); '
                                        'this is Postfix 3.7.11')
    assert 'needs Postfix 3.10.5 or later (smtp_tls_enforce_sts_mx_patterns)' in plan['enforce_sts_mx_patterns']['reason']
    assert 'needs Postfix 3.11.0 or later (requiretls_enable)' in plan['requiretls']['reason']
    assert all(entry['settings'] == {} for entry in plan.values())


def test_3_10_4_with_tlsrpt_support_gets_tlsrpt_only():
    plan = _postfix.feature_plan(defaults('3.10.4'), ALL, tlsrpt_built=True)
    assert applied(plan) == ['tlsrpt']
    assert plan['tlsrpt']['settings'] == {'smtp_tlsrpt_enable': 'yes',
                                          'smtp_tlsrpt_socket_name': 'run/tlsrpt/tlsrpt.sock'}
    assert 'needs Postfix 3.10.5' in plan['enforce_sts_mx_patterns']['reason']


def test_3_10_4_built_without_tlsrpt_skips_it_and_says_why():
    plan = _postfix.feature_plan(defaults('3.10.4'), ALL, tlsrpt_built=False)
    assert applied(plan) == []
    assert 'built without TLSRPT support' in plan['tlsrpt']['reason']


def test_when_the_build_cannot_be_told_tlsrpt_is_not_turned_on():
    plan = _postfix.feature_plan(defaults('3.10.5'), ALL, tlsrpt_built=None)
    assert applied(plan) == ['enforce_sts_mx_patterns']
    assert 'cannot tell whether' in plan['tlsrpt']['reason']


def test_3_10_5_adds_the_sts_mx_pattern_check():
    plan = _postfix.feature_plan(defaults('3.10.5'), ALL, tlsrpt_built=True)
    assert applied(plan) == ['enforce_sts_mx_patterns', 'tlsrpt']
    assert plan['enforce_sts_mx_patterns']['settings'] == {'smtp_tls_enforce_sts_mx_patterns': 'yes'}


def test_3_11_gets_all_three():
    plan = _postfix.feature_plan(defaults('3.11.0'), ALL, tlsrpt_built=True)
    assert applied(plan) == ['enforce_sts_mx_patterns', 'requiretls', 'tlsrpt']
    assert plan['requiretls']['settings'] == {'requiretls_enable': 'yes'}
    assert plan['requiretls']['reason'] == 'applied: Postfix 3.11.0 supports it'


def test_3_11_without_tlsrpt_support_gets_the_other_two():
    plan = _postfix.feature_plan(defaults('3.11.0'), ALL, tlsrpt_built=False)
    assert applied(plan) == ['enforce_sts_mx_patterns', 'requiretls']


def test_a_feature_turned_off_is_left_to_postfix():
    plan = _postfix.feature_plan(defaults('3.11.0'), dict(ALL, requiretls=False), tlsrpt_built=True)
    assert not plan['requiretls']['applied'] and plan['requiretls']['settings'] == {}
    assert plan['requiretls']['reason'].startswith('not requested (features.requiretls is false)')


def test_the_features_settings_reach_the_plan():
    params = dict(config_dir='/etc/postfix', ca_file='/ca.pem', security_level='may', mta_sts_map='',
                  features=dict(ALL, tlsrpt_socket_name='/run/tlsrpt.sock'))
    plan = _postfix.plan_tls(params, {}, defaults('3.11.0'), tlsrpt_built=True)
    assert plan.settings['smtp_tlsrpt_socket_name'] == '/run/tlsrpt.sock'
    assert plan.settings['requiretls_enable'] == plan.settings['smtp_tls_enforce_sts_mx_patterns'] == 'yes'
    assert 'requiretls_enable' not in _postfix.plan_tls(params, {}, defaults('3.7.11')).settings
