"""The policy_host role on a real nginx, through ansible-playbook: several domains on one 127.0.0.x:443,
checked by the collection's own validate lookup against the lab DNS and CA, then re-runs, changes and
failures. The tests run in file order on one lab: each starts from the state the previous one left."""

import os
import socket
import ssl
import subprocess
import threading

import pytest
from cryptography import x509

from tests.integration import policy_host_lab
from tests.integration.playbook import run_playbook
from tests.integration.policy_host_lab import (
    POLICY_PATH, WORKER_USER, PolicyHostLab, fails_and_keeps_everything, http_get, https_get, legacy_tls_client,
    module_result, task_results,
)
from tests.lab.nginx_site import NginxSite
from tests.lab.web import free_loopback_addresses

# bücher.test as the user writes it; served (and validated) as its A-label.
DOMAINS = ['alpha.test', 'beta.test', 'gamma.test', 'xn--bcher-kva.test']
GIVEN = {'xn--bcher-kva.test': 'bücher.test'}


def policy(domain, mode='enforce'):
    return {'mode': mode, 'mx': ['mx1.%s' % domain], 'max_age': 604800}


# Text as given is served byte for byte, LF line ends included.
GAMMA_TEXT = 'version: STSv1\nmode: enforce\nmx: mx1.gamma.test\nmax_age: 604800\n'


@pytest.fixture(scope='module')
def lab():
    address = free_loopback_addresses(1, 443)[0]
    lab = PolicyHostLab(DOMAINS, address)
    try:
        lab.start()
        lab.nginx = NginxSite(lab.path('nginx'), address, user='%s nogroup' % WORKER_USER).start()
        lab.own = lab.certificate('alpha', ['mta-sts.alpha.test'])
        lab.shared = lab.certificate('shared', ['mta-sts.beta.test', '*.gamma.test', 'mta-sts.xn--bcher-kva.test'])
        yield lab
    finally:
        if getattr(lab, 'nginx', None):
            lab.nginx.stop()
        lab.stop()


def domains(lab, **changes):
    items = [
        {'domain': 'alpha.test', 'policy': policy('alpha.test'), 'certificate': lab.own[0], 'private_key': lab.own[1]},
        {'domain': 'beta.test', 'policy': policy('beta.test')},
        {'domain': 'gamma.test', 'policy': GAMMA_TEXT},
        {'domain': 'bücher.test', 'policy': policy('xn--bcher-kva.test', mode='testing')},
    ]
    for item in items:
        item.update(changes.get(item['domain'], {}))
    return items


def role_vars(lab, items=None, **extra):
    values = {
        'policy_host_domains': items if items is not None else domains(lab),
        'policy_host_certificate': lab.shared[0],
        'policy_host_private_key': lab.shared[1],
        'policy_host_data_dir': lab.path('data'),
        'policy_host_config_path': lab.nginx.drop_in_path,
        'policy_host_config_test_command': lab.nginx.test_command,
        'policy_host_reload_command': [lab.nginx.reload_script],
        'policy_host_listen_addresses': [lab.address],
        'policy_host_nginx_user': WORKER_USER,
    }
    values.update(extra)
    return values


def served_files(lab):
    return policy_host_lab.served_files(lab, lab.nginx)


def fetch(lab, domain, path=POLICY_PATH):
    return https_get(lab.address, 'mta-sts.' + domain, path, context=lab.ca.client_context())


@pytest.fixture(scope='module')
def first_run(lab):
    run = lab.apply(role_vars(lab))
    assert run.returncode == 0, run
    return run


def test_first_run_serves_every_domain_and_reloads_once(lab, first_run):
    result = module_result(first_run)
    assert result['changed'] is True and result['config_changed'] is True
    assert sorted(result['changed_policies']) == sorted(DOMAINS)
    assert lab.nginx.reloads == 1, first_run.output
    fact = task_results(first_run, 'show the fact')[-1]['policy_host_policies']
    assert sorted(fact) == sorted(DOMAINS)
    for domain in DOMAINS:
        answer = fetch(lab, domain)
        assert answer.status == 200, answer
        assert answer.header('content-type') == 'text/plain; charset=utf-8'
        assert answer.header('location') is None
        assert answer.body == fact[domain]['policy'].encode('utf-8')
        assert answer.version in ('TLSv1.2', 'TLSv1.3')
        assert fact[domain]['url'] == 'https://mta-sts.%s/.well-known/mta-sts.txt' % domain
    assert fetch(lab, 'gamma.test').body == GAMMA_TEXT.encode()
    assert fetch(lab, 'alpha.test').body == b'version: STSv1\r\nmode: enforce\r\nmx: mx1.alpha.test\r\nmax_age: 604800\r\n'
    assert result['certificates']['alpha.test']['path'] == lab.own[0]
    assert result['certificates']['beta.test']['path'] == lab.shared[0]
    assert 85 <= result['certificates']['beta.test']['days_left'] <= 90


def test_validate_lookup_finds_every_domain_valid(lab, first_run):
    policy_host_lab.every_domain_valid(lab, first_run, DOMAINS)


@pytest.mark.parametrize('path', ['/', '/.well-known/', '/.well-known/mta-sts.txt.bak', '/.well-known/MTA-STS.TXT',
                                  '/index.html'])
def test_other_paths_answer_404(lab, first_run, path):
    assert fetch(lab, 'alpha.test', path).status == 404


def test_an_unknown_name_gets_no_certificate(lab, first_run):
    with pytest.raises(ssl.SSLError):
        fetch(lab, 'unknown.test')


def test_port_80_never_redirects_the_policy_path(lab, first_run):
    host = 'mta-sts.beta.test'
    assert http_get(lab.address, host, POLICY_PATH).status == 404
    assert http_get(lab.address, host, '/.well-known/acme-challenge/token').status == 404
    other = http_get(lab.address, host, '/some/page?x=1')
    assert (other.status, other.header('location')) == (301, 'https://mta-sts.beta.test/some/page?x=1')
    # Names it does not serve are not redirected anywhere.
    assert http_get(lab.address, 'mta-sts.unknown.test', '/some/page').status == 404


class _LegacyTlsServer:
    """A Python TLS server on loopback that accepts TLS 1.1: the control for the legacy client."""

    def __init__(self, lab):
        cert, key = lab.certificate('legacy', ['legacy.test'])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers('DEFAULT:@SECLEVEL=0')
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.load_cert_chain(cert, key)
        self.socket = socket.create_server(('127.0.0.1', 0))
        self.port = self.socket.getsockname()[1]
        self.context = context
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _peer = self.socket.accept()
        try:
            with self.context.wrap_socket(connection, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.socket.close()


@pytest.mark.filterwarnings('ignore:ssl.TLSVersion.TLSv1:DeprecationWarning')
def test_tls_below_1_2_is_refused(lab, first_run):
    client = legacy_tls_client()
    control = _LegacyTlsServer(lab)
    try:
        with socket.create_connection(('127.0.0.1', control.port), timeout=5) as raw:
            with client.wrap_socket(raw, server_hostname='legacy.test') as tls:
                assert tls.version() == 'TLSv1.1'
    finally:
        control.close()
    with pytest.raises(ssl.SSLError, match='PROTOCOL_VERSION|protocol version'):
        with socket.create_connection((lab.address, 443), timeout=5) as raw:
            client.wrap_socket(raw, server_hostname='mta-sts.alpha.test')


def test_second_run_changes_nothing_and_does_not_reload(lab, first_run):
    policy_host_lab.second_run_changes_nothing(lab, lab.nginx, role_vars(lab))
    assert lab.nginx.reloads == 1


def test_one_new_mode_changes_only_that_file_and_does_not_reload(lab, first_run):
    changed = domains(lab, **{'beta.test': {'policy': policy('beta.test', mode='testing')}})
    policy_host_lab.only_the_policy_file_changes(lab, lab.nginx, role_vars(lab, changed), 'beta.test')
    assert b'mode: testing' in fetch(lab, 'beta.test').body


def _fails_and_keeps_everything(lab, items, expected, **extra):
    return fails_and_keeps_everything(lab, lab.nginx, role_vars(lab, items, **extra), expected,
                                      lambda: fetch(lab, 'alpha.test'))


def test_a_malformed_certificate_fails_naming_the_domain_and_keeps_serving(lab, first_run):
    broken = lab.path('certs', 'broken.crt')
    with open(broken, 'w') as handle:
        handle.write('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n')
    _fails_and_keeps_everything(lab, domains(lab, **{'alpha.test': {'certificate': broken}}),
                                ['alpha.test', 'not a valid PEM certificate'])


def test_a_key_that_does_not_match_fails_and_keeps_serving(lab, first_run):
    other = lab.certificate('other', ['mta-sts.alpha.test'])
    _fails_and_keeps_everything(lab, domains(lab, **{'alpha.test': {'private_key': other[1]}}),
                                ['alpha.test', 'private key does not match the certificate'])


def test_a_failing_configuration_test_restores_every_file(lab, first_run):
    # A new domain changes the map files; the test command fails, so the run must leave the old ones.
    cert, key = lab.certificate('delta', ['mta-sts.delta.test'])
    items = domains(lab) + [{'domain': 'delta.test', 'policy': policy('delta.test'), 'certificate': cert,
                             'private_key': key}]
    _fails_and_keeps_everything(lab, items, ['test_command', 'failed', 'restored'],
                                policy_host_config_test_command=['/bin/sh', '-c', 'echo broken config >&2; exit 1'])
    assert not os.path.exists(os.path.join(lab.path('data'), 'policies', 'mta-sts.delta.test.txt'))


@pytest.mark.parametrize('change, expected', [
    ({'beta.test': {'domain': 'alpha.test'}}, ['domains[1]', 'alpha.test is listed twice']),
    ({'gamma.test': {'domain': 'GAMMA.test.', 'policy': GAMMA_TEXT}, 'beta.test': {'domain': 'gamma.test'}},
     ['gamma.test is listed twice']),
    ({'beta.test': {'policy': {'mode': 'strict', 'mx': ['mx1.beta.test'], 'max_age': 86400}}},
     ['beta.test', 'invalid policy', 'mode']),
    ({'gamma.test': {'policy': 'version: STSv1\nmode: enforce\nmax_age: 86400\n'}}, ['gamma.test', 'mx']),
    ({'alpha.test': {'certificate': '/nonexistent/alpha.crt'}}, ['alpha.test', '/nonexistent/alpha.crt']),
])
def test_bad_input_fails_before_anything_is_written(lab, first_run, change, expected):
    _fails_and_keeps_everything(lab, domains(lab, **change), expected)


def test_a_key_the_workers_cannot_read_is_refused(lab, first_run):
    # Computed from the mode bits and the worker's uid and groups, not tried, so it holds when run as root.
    cert, key = lab.certificate('private', ['mta-sts.alpha.test'])
    os.chmod(key, 0o600)
    _fails_and_keeps_everything(lab, domains(lab, **{'alpha.test': {'certificate': cert, 'private_key': key}}),
                                ['alpha.test', key, 'not readable by nobody'])


def test_a_domain_without_any_certificate_fails_in_the_role(lab, first_run):
    _fails_and_keeps_everything(lab, domains(lab), ['beta.test', 'gamma.test', 'no certificate'],
                                policy_host_certificate=None, policy_host_private_key=None)


def test_an_unknown_backend_fails(lab, first_run):
    _fails_and_keeps_everything(lab, domains(lab), ['policy_host_backend', 'lighttpd'], policy_host_backend='lighttpd')


def test_check_and_diff_mode_show_the_policy_file_and_write_nothing(lab, first_run):
    before = served_files(lab)
    # beta.test as the mode test left it, alpha.test changed.
    changed = domains(lab, **{'alpha.test': {'policy': policy('alpha.test', mode='testing')},
                              'beta.test': {'policy': policy('beta.test', mode='testing')}})
    run = lab.apply(role_vars(lab, changed), check=True, diff=True)
    assert run.returncode == 0, run
    result = module_result(run)
    alpha = os.path.join(lab.path('data'), 'policies', 'mta-sts.alpha.test.txt')
    assert (result['changed'], result['changed_policies'], result['config_changed']) == (True, ['alpha.test'], False)
    assert [(diff['before_header'], 'mode: enforce' in diff['before'], 'mode: testing' in diff['after'])
            for diff in result['diff']] == [(alpha, True, True)]
    assert alpha in run.output and '+mode: testing' in run.output
    assert served_files(lab) == before
    assert b'mode: enforce' in fetch(lab, 'alpha.test').body


def test_a_removed_domain_loses_its_policy_file_and_its_name(lab, first_run):
    items = [item for item in domains(lab) if item['domain'] != 'gamma.test']
    run = lab.apply(role_vars(lab, items))
    assert run.returncode == 0, run
    result = module_result(run)
    assert result['removed_policies'] == ['gamma.test'] and result['config_changed'] is True
    assert not os.path.exists(os.path.join(lab.path('data'), 'policies', 'mta-sts.gamma.test.txt'))
    assert lab.nginx.reloads == 2
    with pytest.raises(ssl.SSLError):
        fetch(lab, 'gamma.test')
    assert fetch(lab, 'beta.test').status == 200


def test_the_module_serves_challenges_on_port_80_for_a_domain_still_without_a_certificate(lab, first_run):
    challenges = lab.path('challenges')
    items = [item for item in domains(lab) if item['domain'] != 'gamma.test']
    for item in items:
        item.setdefault('certificate', lab.shared[0])
        item.setdefault('private_key', lab.shared[1])
    items.append({'domain': 'pending.test', 'policy': policy('pending.test')})

    def run_module(files):
        return run_playbook([{'name': 'site', 'mailsec.mta_sts.policy_site': {
            'backend': 'nginx', 'domains': items, 'data_dir': lab.path('data'), 'config_path': lab.nginx.drop_in_path,
            'listen': [lab.address], 'acme_challenge_dir': challenges, 'acme_challenges': files,
            'test_command': lab.nginx.test_command, 'key_reader': WORKER_USER}}])

    run = run_module({'token-1_A': 'token-1_A.thumbprint'})
    assert run.returncode == 0, run
    assert run.result['config_changed'] is True
    assert 'pending.test: no certificate yet, served on the HTTP port only' in ' '.join(run.result['warnings'])
    assert 'pending.test' not in run.result['certificates']
    subprocess.run([lab.nginx.reload_script], check=True)
    for host in ('mta-sts.pending.test', 'mta-sts.alpha.test'):
        answer = http_get(lab.address, host, '/.well-known/acme-challenge/token-1_A')
        assert (answer.status, answer.body) == (200, b'token-1_A.thumbprint')
    assert http_get(lab.address, 'mta-sts.pending.test', '/.well-known/acme-challenge/other').status == 404
    assert http_get(lab.address, 'mta-sts.unknown.test', '/.well-known/acme-challenge/token-1_A').status == 404
    with pytest.raises(ssl.SSLError):
        fetch(lab, 'pending.test')

    # Challenges done: their files go, and that is no configuration change.
    run = run_module({})
    assert run.returncode == 0, run
    assert (run.result['changed'], run.result['config_changed']) == (True, False)
    assert os.listdir(challenges) == []
    assert run_module({}).result['changed'] is False


def test_a_renewed_certificate_at_the_same_path_is_served_without_a_reload(lab, first_run):
    def served_serial():
        with socket.create_connection((lab.address, 443), timeout=5) as raw:
            with lab.ca.client_context().wrap_socket(raw, server_hostname='mta-sts.alpha.test') as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number

    items = [item for item in domains(lab) if item['domain'] != 'gamma.test']
    assert lab.apply(role_vars(lab, items)).returncode == 0  # back to the role's domains after the module test
    before = served_serial()
    reloads = lab.nginx.reloads
    renewed = lab.certificate('alpha', ['mta-sts.alpha.test'])
    assert renewed == lab.own
    run = lab.apply(role_vars(lab, items))
    assert run.returncode == 0, run
    assert module_result(run)['changed'] is False
    assert lab.nginx.reloads == reloads
    assert served_serial() != before
