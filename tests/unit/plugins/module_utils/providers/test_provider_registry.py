"""The option rules every provider-backed module shares: required options, foreign options, given vs defaulted."""

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.registry import (
    PROVIDERS, given_options, option_users, provider_options, provider_rules, unused_option_warnings,
)

SPEC = dict(provider_options(), provider={'type': 'str', 'required': True, 'choices': sorted(PROVIDERS)},
            domain={'type': 'str'})


def _validate(params, environ, monkeypatch):
    for name in ('CLOUDFLARE_API_TOKEN', 'CLOUDFLARE_BASE_URL', 'MAILSEC_RFC2136_SERVER', 'MAILSEC_RFC2136_KEY_NAME',
                 'MAILSEC_RFC2136_KEY_SECRET'):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return ArgumentSpecValidator(SPEC, **provider_rules()).validate(params)


@pytest.mark.parametrize('provider, missing', [('rfc2136', 'server'), ('cloudflare', 'api_token'), ('zonefile', 'zone_file')])
def test_required_option_missing_is_a_validation_error(provider, missing, monkeypatch):
    result = _validate({'provider': provider}, {}, monkeypatch)
    assert result.error_messages == ['provider is %s but all of the following are missing: %s' % (provider, missing)]


def test_route53_needs_no_option_because_boto3_finds_credentials_itself(monkeypatch):
    assert _validate({'provider': 'route53'}, {}, monkeypatch).error_messages == []


@pytest.mark.parametrize('provider, environ', [
    ('rfc2136', {'MAILSEC_RFC2136_SERVER': '192.0.2.1'}),
    ('cloudflare', {'CLOUDFLARE_API_TOKEN': 'token'}),
])
def test_environment_fallbacks_are_applied_before_required_if(provider, environ, monkeypatch):
    # What the module relies on: ansible-core fills fallbacks first, then checks required_if.
    assert _validate({'provider': provider}, environ, monkeypatch).error_messages == []


def test_tsig_key_name_and_secret_go_together(monkeypatch):
    result = _validate({'provider': 'rfc2136', 'server': '192.0.2.1', 'key_name': 'k'}, {}, monkeypatch)
    assert result.error_messages == ['parameters are required together: key_name, key_secret']


def test_every_required_option_is_an_option_of_its_provider():
    for name, provider in PROVIDERS.items():
        assert set(provider.REQUIRED) <= set(provider.OPTIONS), name


def test_shared_options_belong_to_no_provider_and_retry_options_to_the_cloud_ones():
    users = option_users()
    assert 'timeout' not in users
    assert users['max_retries'] == ['cloudflare', 'route53']
    assert users['server'] == ['rfc2136']


def test_given_options_are_the_task_arguments_by_name_or_alias_never_defaults_or_nulls():
    raw = {'provider': 'route53', 'access_key': 'AKID', 'server': None, '_ansible_check_mode': False, 'port': 53}
    assert given_options(raw, SPEC) == {'provider', 'aws_access_key_id', 'port'}


def test_unused_option_warnings_name_the_option_and_who_uses_it():
    given = {'provider', 'domain', 'timeout', 'server', 'max_retries', 'zone_file', 'endpoint_url'}
    assert unused_option_warnings('rfc2136', given) == [
        'endpoint_url is an option of provider route53; provider rfc2136 ignores it',
        'max_retries is an option of providers cloudflare and route53; provider rfc2136 ignores it',
        'zone_file is an option of provider zonefile; provider rfc2136 ignores it',
    ]
    assert unused_option_warnings('route53', {'provider', 'timeout', 'max_retries', 'endpoint_url'}) == []


def test_settings_fill_defaults_where_a_value_is_missing():
    settings = PROVIDERS['rfc2136'].settings({'server': 'ns1', 'port': None})
    assert settings['port'] == 53 and settings['timeout'] == 10.0 and settings['server'] == 'ns1'
    assert 'api_token' not in settings


def test_a_missing_library_is_named_before_anything_is_sent(monkeypatch):
    provider = PROVIDERS['cloudflare']
    monkeypatch.setattr(provider, 'LIBRARY', ('cloudflare', ImportError("No module named 'cloudflare'")))
    with pytest.raises(Exception) as error:
        provider.from_params({'api_token': 'token'})
    assert str(error.value) == "the cloudflare provider needs the cloudflare Python library: No module named 'cloudflare'"
