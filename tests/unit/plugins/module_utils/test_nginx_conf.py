import re

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _nginx_conf
from ansible_collections.mailsec.mta_sts.plugins.module_utils._site import Site

SETTINGS = dict(config_path='/etc/nginx/conf.d/mailsec-mta-sts.conf', data_dir='/var/lib/m', policy_dir='/var/lib/m/policies',
                listen=['0.0.0.0', '[::]'], https_port=443, http_port=80, acme_challenge_dir=None)


def site(domain, certificate=True):
    return Site(domain, 'mta-sts.' + domain, '/var/lib/m/policies/mta-sts.%s.txt' % domain,
                '/etc/ssl/%s.crt' % domain if certificate else None, '/etc/ssl/%s.key' % domain if certificate else None)


def render(sites, **settings):
    return _nginx_conf.render(sites, dict(SETTINGS, **settings))


def test_files_are_the_drop_in_and_three_maps_in_the_data_dir():
    files = render([site('a.example')])
    assert sorted(files) == ['/etc/nginx/conf.d/mailsec-mta-sts.conf', '/var/lib/m/nginx-certificates.map',
                             '/var/lib/m/nginx-policies.map', '/var/lib/m/nginx-private-keys.map']


def test_the_configuration_does_not_grow_with_the_domains():
    one = render([site('a.example')])
    many = render([site('d%d.example' % number) for number in range(1000)])
    assert one[SETTINGS['config_path']] == many[SETTINGS['config_path']]
    assert many[SETTINGS['config_path']].count('server {') == 2
    assert many['/var/lib/m/nginx-policies.map'].count('\n') == 1000


def test_maps_hold_known_names_and_known_paths_only():
    files = render([site('a.example'), site('pending.example', certificate=False)])
    assert files['/var/lib/m/nginx-certificates.map'] == '"mta-sts.a.example" "/etc/ssl/a.example.crt";\n'
    assert files['/var/lib/m/nginx-private-keys.map'] == '"mta-sts.a.example" "/etc/ssl/a.example.key";\n'
    # A pending site has a policy (for the HTTP port) but no HTTPS name.
    assert files['/var/lib/m/nginx-policies.map'] == (
        '"mta-sts.a.example" "/var/lib/m/policies/mta-sts.a.example.txt";\n'
        '"mta-sts.pending.example" "/var/lib/m/policies/mta-sts.pending.example.txt";\n')
    config = files[SETTINGS['config_path']]
    # No request name is ever part of a path: the only variables in file directives are the mapped ones.
    assert '$ssl_server_name;' not in config and 'alias $host' not in config and 'root ' not in config
    assert re.findall(r'^\s*(ssl_certificate\w*|alias) (\S+);', config, re.M) == [
        ('ssl_certificate', '$mailsec_mta_sts_certificate'), ('ssl_certificate_key', '$mailsec_mta_sts_private_key'),
        ('alias', '$mailsec_mta_sts_policy')]


def test_https_server_serves_text_plain_utf8_with_tls_12_and_13_only():
    config = render([site('a.example')])[SETTINGS['config_path']]
    https = config.split('server {')[1]
    assert 'listen 0.0.0.0:443 ssl;' in https and 'listen [::]:443 ssl;' in https
    assert 'ssl_protocols TLSv1.2 TLSv1.3;' in https
    assert 'types { }' in https and 'default_type text/plain;' in https and 'charset utf-8;' in https
    assert 'location = /.well-known/mta-sts.txt {' in https
    assert 'return 301' not in https


def test_http_server_redirects_everything_but_the_policy_and_the_challenges():
    config = render([site('a.example')], http_port=8080, https_port=8443)[SETTINGS['config_path']]
    http = config.split('server {')[2]
    assert 'listen 0.0.0.0:8080;' in http
    policy = http.split('location = /.well-known/mta-sts.txt {')[1].split('}')[0]
    assert policy.strip() == 'return 404;'
    challenge = http.split('location ^~ /.well-known/acme-challenge/ {')[1].split('\n    }')[0]
    assert 'return 301' not in challenge and 'return 404;' in challenge
    assert 'return 301 https://$host:8443$request_uri;' in http


def test_challenges_are_served_from_the_directory():
    config = render([site('a.example')], acme_challenge_dir='/var/lib/m/acme-challenge')[SETTINGS['config_path']]
    assert 'alias "/var/lib/m/acme-challenge/";' in config


def test_no_http_server_with_port_0():
    config = render([site('a.example')], http_port=0)[SETTINGS['config_path']]
    assert config.count('server {') == 1 and 'return 301' not in config


def test_output_is_deterministic():
    sites = [site('b.example'), site('a.example')]
    assert render(sites) == render(list(sites))


@pytest.mark.parametrize('names, expected', [
    ([], (None, None)),
    (['mta-sts.example.com'] * 1024, (None, None)),
    (['mta-sts.example.com'] * 1025, (None, 4096)),
    # 46 characters fit nginx's default 64-byte bucket, 47 do not (nginx -t says so on nginx 1.22).
    (['mta-sts.%s.example' % ('x' * 30)], (None, None)),
    (['mta-sts.%s.example' % ('x' * 31)], (128, None)),
    (['mta-sts.%s.example' % ('x' * 63)], (128, None)),
    (['x' * 253], (512, None)),
])
def test_hash_sizes_only_when_the_names_need_them(names, expected):
    assert _nginx_conf.hash_sizes(names) == expected


def test_hash_sizes_are_written_at_http_level_when_needed():
    config = render([site('d%d.%s.example' % (number, 'x' * 50)) for number in range(1100)])[SETTINGS['config_path']]
    assert 'map_hash_bucket_size 128;\nmap_hash_max_size 4096;\n' in config
    assert 'map_hash' not in render([site('a.example')])[SETTINGS['config_path']]
