import re

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _apache_conf
from ansible_collections.mailsec.mta_sts.plugins.module_utils._site import Site

DATA = '/var/lib/mailsec-mta-sts'
CONFIG = '/etc/apache2/sites-enabled/mailsec-mta-sts.conf'
MAP = DATA + '/apache-policies.map'


def site(domain, certificate=None, key=None):
    return Site(domain, 'mta-sts.' + domain, '%s/policies/mta-sts.%s.txt' % (DATA, domain), certificate, key)


SHARED = ('/etc/ssl/shared.pem', '/etc/ssl/private/shared.key')
OWN = ('/etc/ssl/own.pem', '/etc/ssl/private/own.key')
SITES = [
    site('a.example', *SHARED),
    site('b.example', *OWN),
    site('c.example', *SHARED),
    site('pending.example'),
]


def settings(**changes):
    values = dict(config_path=CONFIG, data_dir=DATA, policy_dir=DATA + '/policies', listen=['0.0.0.0', '[::]'],
                  https_port=443, http_port=80, acme_challenge_dir=None)
    values.update(changes)
    return values


def vhosts(text):
    """``[(address line, body), ...]`` of every <VirtualHost> in the drop-in."""
    return re.findall(r'^<VirtualHost ([^>]+)>\n(.*?)^</VirtualHost>\n', text, re.M | re.S)


def names(body):
    return re.findall(r'^    Server(?:Name|Alias) (\S+)$', body, re.M)


def test_one_https_virtual_host_per_certificate_and_one_http_host_for_every_name():
    files = _apache_conf.render(SITES, settings())
    assert sorted(files) == sorted([CONFIG, MAP])
    hosts = vhosts(files[CONFIG])
    assert [(address, names(body)) for address, body in hosts] == [
        ('*:443', ['mta-sts.a.example', 'mta-sts.c.example']),
        ('*:443', ['mta-sts.b.example']),
        ('*:80', ['mta-sts.a.example', 'mta-sts.b.example', 'mta-sts.c.example', 'mta-sts.pending.example']),
    ]
    assert 'SSLCertificateFile "/etc/ssl/shared.pem"\n    SSLCertificateKeyFile "/etc/ssl/private/shared.key"' in hosts[0][1]
    assert 'SSLCertificateFile "/etc/ssl/own.pem"\n    SSLCertificateKeyFile "/etc/ssl/private/own.key"' in hosts[1][1]
    assert 'SSL' not in hosts[2][1]


def test_the_map_holds_known_names_with_a_certificate_and_file_names_only():
    files = _apache_conf.render(SITES, settings())
    assert files[MAP] == ('mta-sts.a.example mta-sts.a.example.txt\n'
                          'mta-sts.b.example mta-sts.b.example.txt\n'
                          'mta-sts.c.example mta-sts.c.example.txt\n')


def test_every_https_host_serves_the_exact_type_from_the_policy_directory_only():
    text = _apache_conf.render(SITES, settings())[CONFIG]
    for _address, body in vhosts(text)[:2]:
        assert '    SSLProtocol -all +TLSv1.2 +TLSv1.3\n' in body
        assert '    UseCanonicalName Off\n' in body
        assert '    RewriteMap mailsec_mta_sts_policy "txt:%s"\n' % MAP in body
        assert ('    RewriteCond "${mailsec_mta_sts_policy:%{SERVER_NAME}|-}" "^([^/]+\\.txt)$"\n'
                '    RewriteRule "^/\\.well-known/mta-sts\\.txt$" "/var/lib/mailsec-mta-sts/policies/%1" '
                '[E=no-gzip:1,L]\n'
                '    RewriteRule "^" "-" [R=404]\n') in body
        assert '        ForceType "text/plain; charset=utf-8"\n' in body
        assert 'HTTP_HOST' not in body and 'SSL_TLS_SNI' not in body


def test_port_80_answers_404_on_the_policy_path_and_redirects_only_known_https_names():
    http = vhosts(_apache_conf.render(SITES, settings())[CONFIG])[2][1]
    rules = [line.strip() for line in http.splitlines() if line.strip().startswith('Rewrite')][2:]
    assert rules == [
        'RewriteRule "^/\\.well-known/acme-challenge/" "-" [R=404]',
        'RewriteRule "^/\\.well-known/mta-sts\\.txt$" "-" [R=404]',
        'RewriteCond "${mailsec_mta_sts_policy:%{SERVER_NAME}|-}" "^([^/]+\\.txt)$"',
        'RewriteRule "^" "https://%{SERVER_NAME}%{REQUEST_URI}" [R=301,L]',
        'RewriteRule "^" "-" [R=404]',
    ]
    assert '<Location' not in http


def test_the_challenge_directory_serves_base64url_names_only_before_the_404():
    http = vhosts(_apache_conf.render(SITES, settings(acme_challenge_dir='/srv/acme/'))[CONFIG])[2][1]
    assert ('    RewriteRule "^/\\.well-known/acme-challenge/([A-Za-z0-9_-]+)$" "/srv/acme/$1" [L]\n'
            '    RewriteRule "^/\\.well-known/acme-challenge/" "-" [R=404]\n') in http
    assert '    <Location "/.well-known/acme-challenge/">\n        Require all granted\n' in http


def test_other_ports_appear_in_the_addresses_and_the_redirect():
    text = _apache_conf.render(SITES, settings(https_port=8443, http_port=8080))[CONFIG]
    assert [address for address, _body in vhosts(text)] == ['*:8443', '*:8443', '*:8080']
    assert '"https://%{SERVER_NAME}:8443%{REQUEST_URI}" [R=301,L]' in text


def test_no_http_port_means_no_http_virtual_host():
    text = _apache_conf.render(SITES, settings(http_port=0))[CONFIG]
    assert [address for address, _body in vhosts(text)] == ['*:443', '*:443']


@pytest.mark.parametrize('listen, addresses', [
    (['0.0.0.0', '[::]'], '*:443'),
    (['[::]'], '*:443'),
    (['127.0.0.5', '[::1]', '127.0.0.5'], '127.0.0.5:443 [::1]:443'),
    (['192.0.2.1', '0.0.0.0'], '192.0.2.1:443 *:443'),
])
def test_wildcard_addresses_become_one_star(listen, addresses):
    text = _apache_conf.render(SITES[:1], settings(listen=listen, http_port=0))[CONFIG]
    assert [address for address, _body in vhosts(text)] == [addresses]


def test_a_percent_sign_in_the_data_dir_is_escaped_in_rewrite_targets_only():
    data = '/srv/100%1'
    sites = [Site('a.example', 'mta-sts.a.example', data + '/policies/mta-sts.a.example.txt', *SHARED)]
    files = _apache_conf.render(sites, settings(data_dir=data, policy_dir=data + '/policies',
                                                acme_challenge_dir=data + '/acme'))
    text = files[CONFIG]
    assert '"/srv/100\\%1/policies/%1" [E=no-gzip:1,L]' in text
    assert '"/srv/100\\%1/acme/$1" [L]' in text
    assert '"txt:/srv/100%1/apache-policies.map"' in text
    assert data + '/apache-policies.map' in files


def test_a_renewed_certificate_changes_the_configuration():
    def render(not_after):
        certificates = {'a.example': {'path': SHARED[0], 'not_after': not_after, 'days_left': 80}}
        return _apache_conf.render(SITES, settings(certificates=certificates))[CONFIG]

    old, new = render('2027-01-01T00:00:00Z'), render('2027-04-01T00:00:00Z')
    assert old != new
    assert '    # Valid until 2027-04-01T00:00:00Z' in vhosts(new)[0][1]
    assert 'Valid until' not in vhosts(new)[1][1]


def test_missing_modules_are_named_with_the_command_that_enables_them():
    text = _apache_conf.render(SITES, settings())[CONFIG]
    for module in ('ssl', 'rewrite', 'mime'):
        assert ('<IfModule !%s_module>\n    Error "mailsec-mta-sts needs mod_%s: a2enmod %s"\n</IfModule>\n'
                % (module, module, module)) in text


def test_only_pending_domains_give_no_https_host_and_an_empty_map():
    files = _apache_conf.render([site('pending.example')], settings())
    assert [address for address, _body in vhosts(files[CONFIG])] == ['*:80']
    assert files[MAP] == ''


def test_a_thousand_domains_on_ten_certificates_make_eleven_virtual_hosts_deterministically():
    sites = sorted((site('d%04d.example' % n, '/etc/ssl/san%d.pem' % (n % 10), '/etc/ssl/san%d.key' % (n % 10))
                    for n in range(1000)), key=lambda s: s.host)
    first = _apache_conf.render(sites, settings())
    assert first == _apache_conf.render(list(sites), settings())
    hosts = vhosts(first[CONFIG])
    assert len(hosts) == 11
    assert [len(names(body)) for _address, body in hosts] == [100] * 10 + [1000]
    assert len(first[MAP].splitlines()) == 1000
