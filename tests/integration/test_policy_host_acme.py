"""The policy_host role's ACME certificates, issued by a real Pebble over HTTP-01 to a real nginx (and Apache).

Pebble resolves mta-sts.<domain> through the Knot lab to the web server's address and fetches the challenge
from the port-80 host the role brings up first. Pebble demands external account binding here, so
every issuance also proves that the EAB options reach the account creation. community.crypto comes
from the `ansible` package that scripts/install-deps puts under .build/ansible-pkg.
"""

import os
import pwd
import secrets
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from tests.integration.playbook import COLLECTIONS_PATH, REPO
from tests.integration.policy_host_lab import WORKER_USER, PolicyHostLab, snapshot
from tests.lab.knot import free_port
from tests.lab.apache_site import ApacheSite
from tests.lab.nginx_site import NginxSite
from tests.lab.pebble import PebbleLab
from tests.lab.web import free_loopback_addresses

# d4.test has DNS from the start; the role gets it later, to show what adding a domain re-issues.
LAB_DOMAINS = ['d1.test', 'd2.test', 'd3.test', 'd4.test']
DOMAINS = LAB_DOMAINS[:3]
CRYPTO_PATH = os.path.join(REPO, '.build', 'ansible-pkg')
RUN_ENV = {'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_PATH + os.pathsep + CRYPTO_PATH}
EAB_KID = 'kid-mailsec'
EAB_KEY = secrets.token_urlsafe(48)
# Pebble's certificates live 40 days here: past the default renewal window of 30 days, inside one of 45.
VALIDITY_DAYS = 40


def policy(domain):
    return {'mode': 'enforce', 'mx': ['mx1.%s' % domain], 'max_age': 604800}


class AcmeLab(PolicyHostLab):
    """The policy_host lab (Knot, a base dir the workers can enter) plus a web server (``backend``) and a
    Pebble that demands external account binding and validates HTTP-01 on the server's HTTP port."""

    def __init__(self, backend='nginx'):
        address = free_loopback_addresses(1, 443)[0]
        super().__init__(LAB_DOMAINS, address)
        self.backend = backend
        self.http_port = free_port(address)
        if backend == 'nginx':
            self.server = NginxSite(self.path('nginx'), address)
        else:
            self.server = ApacheSite(self.path('apache'), address, http_port=self.http_port, ca=self.ca)
        self.pebble = None

    def start(self):
        super().start()
        for domain in LAB_DOMAINS:
            self.publish_id(domain, policy_id(render_policy(policy(domain))))
        self.pebble = PebbleLab(self.path('pebble'), self.knot.address, self.knot.port, self.http_port,
                                validity_seconds=VALIDITY_DAYS * 86400, eab_keys={EAB_KID: EAB_KEY}).start()
        # The validate lookup trusts Pebble's issuing root only.
        self.ca_path = self.pebble.root_path
        self.server.start()
        return self

    def stop(self):
        for server in (self.server, self.pebble):
            if server is not None:
                server.stop()
        super().stop()

    def role_vars(self, domains=None, **overrides):
        role_vars = {
            'policy_host_backend': self.backend,
            'policy_host_domains': [{'domain': domain, 'policy': policy(domain)} for domain in domains or DOMAINS],
            'policy_host_data_dir': self.path('data'),
            'policy_host_config_path': self.server.drop_in_path,
            'policy_host_config_test_command': self.server.test_command,
            'policy_host_reload_command': [self.server.reload_script],
            # Apache's virtual hosts take the address from its Listen lines.
            'policy_host_listen_addresses': [self.address] if self.backend == 'nginx' else ['0.0.0.0'],
            'policy_host_http_port': self.http_port,
            'policy_host_nginx_user': WORKER_USER,
            'policy_host_acme': True,
            'policy_host_acme_directory': self.pebble.directory_url,
            'policy_host_acme_ca_file': self.pebble.directory_ca_path,
            'policy_host_acme_email': 'hostmaster@d1.test',
            'policy_host_acme_terms_agreed': True,
            'policy_host_acme_eab_kid': EAB_KID,
            'policy_host_acme_eab_hmac_key': EAB_KEY,
            'policy_host_acme_names_per_certificate': 2,
        }
        role_vars.update(overrides)
        return role_vars

    def run(self, verbosity=0, check=False, **overrides):
        return self.apply(self.role_vars(**overrides), check=check, env=RUN_ENV, verbosity=verbosity)

    def state(self):
        """What Pebble issued so far, and every file of the ACME directory with its bytes and mtime."""
        return {'issued': list(self.pebble.issued()), 'files': snapshot(self.acme_dir)}

    @property
    def acme_dir(self):
        return self.path('data', 'acme')

    def issued_certificate(self, group):
        with open(os.path.join(self.acme_dir, group + '.pem'), 'rb') as handle:
            return x509.load_pem_x509_certificates(handle.read())[0]

    def served(self, domain):
        """The leaf the web server presents for mta-sts.<domain>, verified against Pebble's issuing root."""
        context = ssl.create_default_context(cafile=self.pebble.root_path)
        with socket.create_connection((self.address, 443), timeout=5) as sock:
            with context.wrap_socket(sock, server_hostname='mta-sts.' + domain) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def names(certificate):
    return sorted(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))


def public_key(certificate):
    return certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


def run_changed(lab, **overrides):
    """Run the role with ``overrides``; return the certificates and Pebble's issuance count from before."""
    before = {group: lab.issued_certificate(group) for group in ('group-0001', 'group-0002')}
    issued_before = len(lab.pebble.issued())
    run = lab.run(**overrides)
    assert run.returncode == 0, run
    return before, issued_before


def changed_tasks(run):
    return [result['_task'] for result in run.results if result.get('changed')]


def started(backend):
    if not os.path.isdir(os.path.join(CRYPTO_PATH, 'ansible_collections', 'community', 'crypto')):
        pytest.fail('community.crypto is missing from %s: run scripts/install-deps' % CRYPTO_PATH)
    lab = AcmeLab(backend)
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope='module')
def lab():
    yield from started('nginx')


@pytest.fixture(scope='module')
def apache_lab():
    yield from started('apache')


@pytest.fixture(scope='module')
def without_eab(lab):
    """The control: Pebble refuses an account without external account binding."""
    return lab.run(policy_host_acme_eab_kid=None, policy_host_acme_eab_hmac_key=None)


@pytest.fixture(scope='module')
def first(lab, without_eab):
    run = lab.run(verbosity=3)
    assert run.returncode == 0, run
    return run


@pytest.fixture(scope='module')
def issued(lab, first):
    return {group: lab.issued_certificate(group) for group in ('group-0001', 'group-0002')}


@pytest.fixture(scope='module')
def second(lab, issued):
    before = dict(lab.state(), reloads=lab.server.reloads)
    run = lab.run()
    assert run.returncode == 0, run
    return before, run


@pytest.fixture(scope='module')
def renewed(lab, second):
    # A 45-day window: each certificate now expires within it (the default 30 days kept them above).
    return run_changed(lab, policy_host_acme_renew_days=VALIDITY_DAYS + 5)


def test_bad_acme_settings_fail_before_any_change(lab):
    run = lab.run(policy_host_data_dir=lab.path('untouched'), policy_host_acme_names_per_certificate=101,
                  policy_host_acme_renew_days=0, policy_host_acme_eab_hmac_key=None, policy_host_http_port=0)
    assert run.returncode != 0
    for message in ('policy_host_acme_names_per_certificate 101: must be from 1 to 100',
                    'policy_host_acme_renew_days 0: must be at least 1',
                    'policy_host_acme_eab_kid and policy_host_acme_eab_hmac_key: give both or neither',
                    'policy_host_http_port 0: ACME HTTP-01 needs the HTTP port'):
        assert message in run.output, run
    assert not os.path.exists(lab.path('untouched'))


def test_an_account_without_external_account_binding_is_refused(without_eab, lab):
    assert without_eab.returncode != 0
    # community.crypto reads externalAccountRequired from Pebble's directory.
    assert 'an external account binding must be specified' in without_eab.output, without_eab
    assert lab.pebble.issued() == []


def test_certificates_are_issued_in_groups_of_two(issued, lab):
    assert names(issued['group-0001']) == ['mta-sts.d1.test', 'mta-sts.d2.test']
    assert names(issued['group-0002']) == ['mta-sts.d3.test']
    assert len(lab.pebble.issued()) == 2
    # The last module run of the role removed the challenge files.
    assert os.listdir(lab.path('data', 'acme-challenge')) == []


def test_each_domain_is_served_with_its_certificate_and_valid(issued, lab):
    for domain, group in (('d1.test', 'group-0001'), ('d2.test', 'group-0001'), ('d3.test', 'group-0002')):
        assert lab.served(domain).serial_number == issued[group].serial_number
    for domain, result in lab.validate(DOMAINS).items():
        assert result['valid'] is True, (domain, result['findings'])
        assert [f for f in result['findings'] if f['severity'] == 'error'] == [], domain


def test_keys_are_readable_by_the_workers_only_through_their_group(issued, lab):
    for group in issued:
        info = os.stat(os.path.join(lab.acme_dir, group + '.key'))
        assert oct(info.st_mode & 0o777) == '0o640'
        assert info.st_gid == pwd.getpwnam(WORKER_USER).pw_gid
    assert oct(os.stat(os.path.join(lab.acme_dir, 'account.key')).st_mode & 0o777) == '0o600'


def test_the_eab_hmac_key_never_appears_in_the_output(first):
    # -vvv shows each module's arguments: the kid is there, the key only masked.
    assert "'kid': '%s'" % EAB_KID in first.output or '"kid": "%s"' % EAB_KID in first.output, first
    assert EAB_KEY not in first.output


def test_a_rerun_with_valid_certificates_orders_nothing(second, lab):
    before, run = second
    assert changed_tasks(run) == []
    assert dict(lab.state(), reloads=lab.server.reloads) == before


def test_certificates_near_expiry_are_renewed_with_the_same_key_and_served(renewed, lab):
    before, issued_before = renewed
    assert len(lab.pebble.issued()) == issued_before + 2
    for group, old in before.items():
        new = lab.issued_certificate(group)
        assert new.serial_number != old.serial_number
        assert public_key(new) == public_key(old)
        assert names(new) == names(old)
    assert lab.served('d3.test').serial_number == lab.issued_certificate('group-0002').serial_number
    assert lab.served('d1.test').serial_number == lab.issued_certificate('group-0001').serial_number


@pytest.fixture(scope='module')
def checked_addition(lab, renewed):
    before = lab.state()
    run = lab.run(check=True, domains=LAB_DOMAINS)
    assert run.returncode == 0, run
    return before, run


@pytest.fixture(scope='module')
def added(lab, checked_addition):
    return run_changed(lab, domains=LAB_DOMAINS)


@pytest.fixture(scope='module')
def removed(lab, added):
    return run_changed(lab, domains=LAB_DOMAINS[1:])


def test_check_mode_shows_the_order_and_orders_nothing(checked_addition, lab):
    before, run = checked_addition
    shown = [result for result in run.results if result['_task'].endswith('Certificates to order')]
    assert shown and shown[-1]['changed'] is True
    assert shown[-1]['msg'] == [['mta-sts.d3.test', 'mta-sts.d4.test']]
    assert lab.state() == before


def test_adding_a_domain_reissues_only_the_group_it_joins(added, lab):
    before, issued_before = added
    assert len(lab.pebble.issued()) == issued_before + 1
    assert lab.issued_certificate('group-0001').serial_number == before['group-0001'].serial_number
    new = lab.issued_certificate('group-0002')
    assert names(new) == ['mta-sts.d3.test', 'mta-sts.d4.test']
    assert public_key(new) == public_key(before['group-0002'])
    assert lab.served('d4.test').serial_number == new.serial_number
    assert lab.validate(['d4.test'])['d4.test']['valid'] is True


def test_removing_a_domain_reissues_only_its_group_smaller(removed, lab):
    before, issued_before = removed
    assert len(lab.pebble.issued()) == issued_before + 1
    assert lab.issued_certificate('group-0002').serial_number == before['group-0002'].serial_number
    smaller = lab.issued_certificate('group-0001')
    assert names(smaller) == ['mta-sts.d2.test']
    assert public_key(smaller) == public_key(before['group-0001'])
    assert lab.served('d2.test').serial_number == smaller.serial_number


@pytest.fixture(scope='module')
def after_expiry(lab, removed):
    """group-0002's certificate replaced by one that expired yesterday (from the lab CA, another key)."""
    with open(os.path.join(lab.acme_dir, 'group-0002.pem'), 'wb') as handle:
        handle.write(lab.ca.issue_expired(['mta-sts.d3.test', 'mta-sts.d4.test'])[0])
    return run_changed(lab, domains=LAB_DOMAINS[1:])


def test_an_expired_certificate_is_not_served_and_is_renewed(after_expiry, lab):
    # The web server refuses an expired certificate: the run succeeds only because the role serves
    # those domains on the HTTP port alone until the renewed certificate is there.
    before, issued_before = after_expiry
    assert len(lab.pebble.issued()) == issued_before + 1
    renewed = lab.issued_certificate('group-0002')
    assert names(renewed) == ['mta-sts.d3.test', 'mta-sts.d4.test']
    assert lab.served('d4.test').serial_number == renewed.serial_number
    assert lab.issued_certificate('group-0001').serial_number == before['group-0001'].serial_number


@pytest.fixture(scope='module')
def emptied(lab, after_expiry):
    """d2.test, the last name of group-0001, goes."""
    issued_before = len(lab.pebble.issued())
    run = lab.run(domains=LAB_DOMAINS[2:])
    assert run.returncode == 0, run
    return issued_before


def test_a_group_left_empty_is_removed_and_nothing_is_ordered(emptied, lab):
    assert len(lab.pebble.issued()) == emptied
    assert sorted(name for name in os.listdir(lab.acme_dir) if name.startswith('group-')) == [
        'group-0002.key', 'group-0002.pem']
    assert lab.served('d4.test').serial_number == lab.issued_certificate('group-0002').serial_number


def test_apache_serves_the_acme_certificates_and_reloads_when_they_are_renewed(apache_lab):
    # Apache reads certificates only when it loads its configuration: a renewal at the same path must reload it.
    lab = apache_lab
    run = lab.run(domains=DOMAINS[:2])
    assert run.returncode == 0, run
    first = lab.issued_certificate('group-0001')
    assert names(first) == ['mta-sts.d1.test', 'mta-sts.d2.test']
    for domain in DOMAINS[:2]:
        assert lab.served(domain).serial_number == first.serial_number
    assert lab.validate(['d2.test'])['d2.test']['valid'] is True
    reloads = lab.server.reloads
    run = lab.run(domains=DOMAINS[:2], policy_host_acme_renew_days=VALIDITY_DAYS + 5)
    assert run.returncode == 0, run
    renewed = lab.issued_certificate('group-0001')
    assert renewed.serial_number != first.serial_number
    assert lab.server.reloads == reloads + 1
    assert lab.served('d1.test').serial_number == renewed.serial_number
