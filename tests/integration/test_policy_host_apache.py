"""The policy_host role on a real Apache httpd 2.4, through ansible-playbook: several domains on one 127.0.0.x:443
(one with its own certificate, two sharing a SAN certificate), checked by the collection's own validate lookup
against the lab DNS and CA, then re-runs, a renewal, changes and failures. The tests run in file order on one
lab: each starts from the state the previous one left."""

import datetime
import os
import socket
import ssl
import subprocess
import tempfile

import pytest
from cryptography import x509

from tests.integration.playbook import run_playbook
from tests.integration import policy_host_lab
from tests.integration.policy_host_lab import (
    POLICY_PATH, PolicyHostLab, http_get, https_get, legacy_tls_client, module_result, task_results,
)
from tests.lab.apache_site import CONTROL_HOST, ApacheSite
from tests.lab.web import free_loopback_addresses

DOMAINS = ['alpha.test', 'beta.test', 'gamma.test']


def policy(domain, mode='enforce', backups=0):
    backup = ['mx%d.backup.%s' % (number, domain) for number in range(2, 2 + backups)]
    return {'mode': mode, 'mx': ['mx1.%s' % domain] + backup, 'max_age': 604800}


@pytest.fixture(scope='module')
def lab():
    address = free_loopback_addresses(1, 443)[0]
    lab = PolicyHostLab(DOMAINS, address)
    try:
        lab.start()
        lab.apache = ApacheSite(lab.path('apache'), address, ca=lab.ca).start()
        lab.own = lab.certificate('alpha', ['mta-sts.alpha.test'])
        lab.shared = lab.certificate('shared', ['mta-sts.beta.test', 'mta-sts.gamma.test'])
        yield lab
    finally:
        if getattr(lab, 'apache', None):
            lab.apache.stop()
        lab.stop()


def domains(lab, **changes):
    items = [
        {'domain': 'alpha.test', 'policy': policy('alpha.test'), 'certificate': lab.own[0], 'private_key': lab.own[1]},
        {'domain': 'beta.test', 'policy': policy('beta.test')},
        # Big enough (about 1.2 kB) for the lab's mod_deflate to compress it, if the drop-in let it.
        {'domain': 'gamma.test', 'policy': policy('gamma.test', mode='testing', backups=40)},
    ]
    for item in items:
        item.update(changes.get(item['domain'], {}))
    return items


def role_vars(lab, items=None, **extra):
    values = {
        'policy_host_backend': 'apache',
        'policy_host_domains': items if items is not None else domains(lab),
        'policy_host_certificate': lab.shared[0],
        'policy_host_private_key': lab.shared[1],
        'policy_host_data_dir': lab.path('data'),
        'policy_host_config_path': lab.apache.drop_in_path,
        'policy_host_config_test_command': lab.apache.test_command,
        'policy_host_reload_command': [lab.apache.reload_script],
        'policy_host_listen_addresses': ['0.0.0.0'],
    }
    values.update(extra)
    return values


def fetch(lab, domain, path=POLICY_PATH, headers=None):
    return https_get(lab.address, 'mta-sts.' + domain, path, context=lab.ca.client_context(), headers=headers)


def peer_certificate(lab, server_name):
    """The leaf certificate Apache presents for ``server_name`` (not verified)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((lab.address, 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def certificate_names(certificate):
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)


@pytest.fixture(scope='module')
def first_run(lab):
    run = lab.apply(role_vars(lab))
    assert run.returncode == 0, run
    return run


def test_first_run_serves_every_domain_from_one_host_per_certificate_and_reloads_once(lab, first_run):
    result = module_result(first_run)
    assert result['changed'] is True and result['config_changed'] is True
    assert sorted(result['changed_policies']) == DOMAINS
    assert lab.apache.reloads == 1
    with open(lab.apache.drop_in_path) as handle:
        drop_in = handle.read()
    assert drop_in.count('<VirtualHost *:443>') == 2 and drop_in.count('<VirtualHost *:80>') == 1
    fact = task_results(first_run, 'show the fact')[-1]['policy_host_policies']
    assert sorted(fact) == DOMAINS
    for domain in DOMAINS:
        answer = fetch(lab, domain)
        assert answer.status == 200, answer
        # The lab's server-wide AddDefaultCharset/AddCharset ISO-8859-1 must not touch it.
        assert answer.header('content-type') == 'text/plain; charset=utf-8'
        assert answer.header('location') is None
        assert answer.body == fact[domain]['policy'].encode('utf-8')
        assert answer.version in ('TLSv1.2', 'TLSv1.3')
        # Nor its server-wide mod_deflate for text/plain: the exact bytes, whatever the client accepts.
        gzip = fetch(lab, domain, headers={'Accept-Encoding': 'gzip, deflate'})
        assert (gzip.status, gzip.header('content-encoding'), gzip.body) == (200, None, answer.body)
    assert fetch(lab, 'alpha.test').body == b'version: STSv1\r\nmode: enforce\r\nmx: mx1.alpha.test\r\nmax_age: 604800\r\n'
    assert certificate_names(peer_certificate(lab, 'mta-sts.gamma.test')) == ['mta-sts.beta.test', 'mta-sts.gamma.test']
    assert certificate_names(peer_certificate(lab, 'mta-sts.alpha.test')) == ['mta-sts.alpha.test']


def test_validate_lookup_finds_every_domain_valid(lab, first_run):
    policy_host_lab.every_domain_valid(lab, first_run, DOMAINS)


@pytest.mark.parametrize('path', ['/', '/.well-known/', '/.well-known/mta-sts.txt.bak', '/.well-known/MTA-STS.TXT',
                                  '/.well-known/mta-sts.txt/', '/policies/mta-sts.alpha.test.txt', '/index.html'])
def test_other_paths_answer_404(lab, first_run, path):
    answer = fetch(lab, 'alpha.test', path)
    assert (answer.status, answer.header('location')) == (404, None)


def test_a_name_of_another_certificate_is_misdirected_and_an_unknown_name_gets_the_default_host(lab, first_run):
    # SNI picks alpha's virtual host; a Host header of beta's is refused, never answered with beta's policy.
    assert fetch(lab, 'alpha.test', headers={'Host': 'mta-sts.beta.test'}).status == 421
    # Apache has no "reject the handshake": a name without a virtual host gets the first virtual host on the
    # address, which on this server (as on a Debian host with default-ssl) is not one of the role's.
    unknown = peer_certificate(lab, 'mta-sts.unknown.test')
    assert certificate_names(unknown) == [CONTROL_HOST]
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(lab, 'unknown.test')


def test_port_80_never_redirects_the_policy_path(lab, first_run):
    host = 'mta-sts.beta.test'
    assert http_get(lab.address, host, POLICY_PATH).status == 404
    assert http_get(lab.address, host, '/.well-known/acme-challenge/token').status == 404
    other = http_get(lab.address, host, '/some/page?x=1')
    assert (other.status, other.header('location')) == (301, 'https://mta-sts.beta.test/some/page?x=1')


def test_tls_below_1_2_is_refused(lab, first_run):
    client = legacy_tls_client()
    # The control: the same Apache, address and port speak TLS 1.1 to this client for the default host.
    with socket.create_connection((lab.address, 443), timeout=5) as raw:
        with client.wrap_socket(raw, server_hostname=CONTROL_HOST) as tls:
            assert tls.version() == 'TLSv1.1'
    for domain in ('alpha.test', 'beta.test'):
        with pytest.raises(ssl.SSLError, match='PROTOCOL_VERSION|protocol version'):
            with socket.create_connection((lab.address, 443), timeout=5) as raw:
                client.wrap_socket(raw, server_hostname='mta-sts.' + domain)


def test_second_run_changes_nothing_and_does_not_reload(lab, first_run):
    policy_host_lab.second_run_changes_nothing(lab, lab.apache, role_vars(lab))
    assert lab.apache.reloads == 1


def test_one_new_mode_changes_only_that_file_and_is_served_without_a_reload(lab, first_run):
    changed = domains(lab, **{'beta.test': {'policy': policy('beta.test', mode='testing')}})
    policy_host_lab.only_the_policy_file_changes(lab, lab.apache, role_vars(lab, changed), 'beta.test')
    assert b'mode: testing' in fetch(lab, 'beta.test').body


def test_a_renewed_certificate_at_the_same_path_reloads_apache(lab, first_run):
    # Apache reads certificates only when it loads its configuration: the role must reload it.
    served = peer_certificate(lab, 'mta-sts.alpha.test')
    lab.certificate('alpha', ['mta-sts.alpha.test'], not_after=served.not_valid_after_utc + datetime.timedelta(days=1))
    run = lab.apply(role_vars(lab))
    assert run.returncode == 0, run
    result = module_result(run)
    # The previous test's beta.test change goes back too; the configuration changed only by the renewal.
    assert (result['config_changed'], result['changed_policies']) == (True, ['beta.test'])
    assert lab.apache.reloads == 2
    renewed = peer_certificate(lab, 'mta-sts.alpha.test')
    assert renewed.serial_number != served.serial_number
    assert renewed.not_valid_after_utc > served.not_valid_after_utc
    assert fetch(lab, 'alpha.test').status == 200


def _fails_and_keeps_everything(lab, items, expected, **extra):
    return policy_host_lab.fails_and_keeps_everything(lab, lab.apache, role_vars(lab, items, **extra), expected,
                                                      lambda: fetch(lab, 'alpha.test'))


def test_a_malformed_certificate_fails_naming_the_domain_and_keeps_serving(lab, first_run):
    broken = lab.path('certs', 'broken.crt')
    with open(broken, 'w') as handle:
        handle.write('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n')
    _fails_and_keeps_everything(lab, domains(lab, **{'alpha.test': {'certificate': broken}}),
                                ['alpha.test', 'not a valid PEM certificate'])


def test_a_certificate_broken_at_its_old_path_fails_before_the_reload_that_would_stop_apache(lab, first_run):
    # apache2 -t only checks that certificate files exist; a graceful restart that cannot load one ends Apache.
    with open(lab.own[0], 'rb') as handle:
        good = handle.read()
    try:
        with open(lab.own[0], 'w') as handle:
            handle.write('not a certificate\n')
        _fails_and_keeps_everything(lab, domains(lab), ['alpha.test', lab.own[0], 'holds no PEM certificate'])
        assert lab.apache.is_running()
    finally:
        with open(lab.own[0], 'wb') as handle:
            handle.write(good)


def test_apache_without_mod_rewrite_fails_the_real_config_test_and_keeps_the_old_files(lab, first_run):
    # Apache's own configuration test, on a copy of the main configuration without mod_rewrite: the drop-in
    # names the module to enable, and every file written in the run is restored.
    with open(lab.apache.conf_path) as handle:
        main = handle.read()
    assert 'LoadModule rewrite_module ' in main
    without = lab.path('apache', 'without-rewrite.conf')
    with open(without, 'w') as handle:
        handle.write(main.replace('LoadModule rewrite_module ', '# LoadModule rewrite_module '))
    delta = lab.certificate('delta', ['mta-sts.delta.test'])
    items = domains(lab) + [{'domain': 'delta.test', 'policy': policy('delta.test'), 'certificate': delta[0],
                             'private_key': delta[1]}]
    command = [lab.apache.apache2, '-t', '-f', without]
    _fails_and_keeps_everything(lab, items, ['test_command', 'mailsec-mta-sts needs mod_rewrite: a2enmod rewrite',
                                             'restored'], policy_host_config_test_command=command)
    assert not os.path.exists(os.path.join(lab.path('data'), 'policies', 'mta-sts.delta.test.txt'))


def test_a_removed_domain_loses_its_policy_file_and_its_name(lab, first_run):
    items = [item for item in domains(lab) if item['domain'] != 'gamma.test']
    reloads = lab.apache.reloads
    run = lab.apply(role_vars(lab, items))
    assert run.returncode == 0, run
    result = module_result(run)
    assert result['removed_policies'] == ['gamma.test'] and result['config_changed'] is True
    assert not os.path.exists(os.path.join(lab.path('data'), 'policies', 'mta-sts.gamma.test.txt'))
    assert lab.apache.reloads == reloads + 1
    # The SAN certificate still names it, but no virtual host does: the name gets the default host's certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(lab, 'gamma.test')
    assert fetch(lab, 'beta.test').status == 200


def test_the_module_serves_challenges_on_port_80_for_a_domain_still_without_a_certificate(lab, first_run):
    challenges = lab.path('data', 'acme-challenge')
    run = run_playbook([{'mailsec.mta_sts.policy_site': {
        'backend': 'apache',
        'domains': domains(lab, **{'beta.test': {'certificate': lab.shared[0], 'private_key': lab.shared[1]},
                                   'gamma.test': {'certificate': lab.shared[0], 'private_key': lab.shared[1]}})
        + [{'domain': 'delta.test', 'policy': policy('delta.test')}],
        'data_dir': lab.path('data'),
        'config_path': lab.apache.drop_in_path,
        'listen': ['0.0.0.0'],
        'acme_challenge_dir': challenges,
        'acme_challenges': {'token-Delta_1': 'token-Delta_1.thumbprint'},
        'test_command': lab.apache.test_command,
    }}], workdir=tempfile.mkdtemp(prefix='play-', dir=lab.base))
    assert run.returncode == 0, run
    assert run.result['config_changed'] is True
    subprocess.run([lab.apache.reload_script], check=True)
    challenge = http_get(lab.address, 'mta-sts.delta.test', '/.well-known/acme-challenge/token-Delta_1')
    assert (challenge.status, challenge.body) == (200, b'token-Delta_1.thumbprint')
    assert http_get(lab.address, 'mta-sts.delta.test', '/.well-known/acme-challenge/other').status == 404
    # No certificate yet: no redirect to an HTTPS name it does not have, and no HTTPS policy for it.
    assert http_get(lab.address, 'mta-sts.delta.test', '/some/page').status == 404
    assert http_get(lab.address, 'mta-sts.beta.test', '/some/page').status == 301
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(lab, 'delta.test')
