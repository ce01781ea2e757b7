"""The rollout playbooks (playbooks/site.yml, drift.yml, retire.yml) through real ``ansible-playbook`` runs,
on a lab of real servers: Knot on 127.0.0.53:53 (the DNS provider, rfc2136 with TSIG, and the resolver the
checks ask), nginx configured by the ``policy_host`` role on 127.0.0.80:443 (the policy host, ``localhost``
in the inventory), a second web server on 127.0.0.81:443 that serves stale bytes for one domain, and lab MX
hosts (Postfix, tests/lab/mail.py) on 127.0.0.25-27:25, one of them with a certificate for the wrong name.

The fixed addresses and ports are only free inside ``scripts/lab-netns`` (a network namespace of its own),
where ``make test`` runs this directory beside the main suite (``scripts/run-test-suites``). By hand::

    scripts/lab-netns .venv/bin/python -m pytest tests/rollout     # make rollout-tests
"""

import copy
import grp
import json
import os
import shutil
import sys
import tempfile

import pytest
import yaml

from tests.integration.playbook import REPO, playbook_env, run_command
from tests.lab.knot import KnotLab
from tests.lab.mail import MailLab
from tests.lab.netns import require_private_namespace
from tests.lab.nginx_site import NginxSite
from tests.lab.pki import LabCA, write_pair
from tests.lab.web import PolicyWeb

PLAYBOOKS = os.path.join(REPO, 'playbooks')
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
DNS = '127.0.0.53'
POLICY_HOST = '127.0.0.80'
STALE_HOST = '127.0.0.81'
MX_GOOD, MX_BAD_CERT, MX_UNCOVERED = '127.0.0.25', '127.0.0.26', '127.0.0.27'
WORKER_USER, WORKER_GROUP = 'nobody', 'nogroup'
RUA = ['mailto:tlsrpt@alpha.test']


def policy(domain, mode='testing', max_age=86400, mx=None):
    return {'mode': mode, 'mx': mx or ['mx1.%s' % domain], 'max_age': max_age}


def base_domains():
    """The inventory's mta_sts_domains of the first rollout: one domain per behaviour under test."""
    return [
        # Testing mode, TLS-RPT, the policy host's A record published by the playbook.
        {'domain': 'alpha.test', 'policy': policy('alpha.test'), 'rua': RUA,
         'host_record': {'addresses': [POLICY_HOST]}},
        # Enforce, its only MX host good: the gate passes.
        {'domain': 'beta.test', 'policy': policy('beta.test', 'enforce', 604800),
         'host_record': {'addresses': [POLICY_HOST]}},
        # Goes live; later a second policy-host address that serves stale bytes joins it (test_site).
        {'domain': 'stale.test', 'policy': policy('stale.test'),
         'host_record': {'addresses': [POLICY_HOST]}},
        {'domain': 'cust.test', 'policy': policy('cust.test'),
         'delegation': {'sts_target': 'cust.test._mta-sts.hoster.test', 'policy_host': 'mta-sts.hoster.test'}},
    ]


# Each zone's own records: MX hosts and their addresses (the playbooks publish only the MTA-STS names).
ZONES = {
    'alpha.test': ['alpha.test. 300 IN MX 10 mx1.alpha.test.', 'mx1.alpha.test. 300 IN A %s' % MX_GOOD],
    'beta.test': ['beta.test. 300 IN MX 10 mx1.beta.test.', 'mx1.beta.test. 300 IN A %s' % MX_GOOD],
    'stale.test': ['stale.test. 300 IN MX 10 mx1.stale.test.', 'mx1.stale.test. 300 IN A %s' % MX_GOOD],
    # Its MX host presents a certificate for other names: the enforce gate must refuse.
    'gamma.test': ['gamma.test. 300 IN MX 10 mx1.gamma.test.', 'mx1.gamma.test. 300 IN A %s' % MX_BAD_CERT],
    # A second MX host its policy does not name: the enforce gate must refuse.
    'uncov.test': ['uncov.test. 300 IN MX 10 mx1.uncov.test.', 'uncov.test. 300 IN MX 20 mx2.uncov.test.',
                   'mx1.uncov.test. 300 IN A %s' % MX_UNCOVERED, 'mx2.uncov.test. 300 IN A %s' % MX_UNCOVERED],
    # A customer domain delegated to its hosting provider (RFC 8461 8.2): the TXT and the policy host are
    # hoster.test's.
    'cust.test': ['cust.test. 300 IN MX 10 mx1.cust.test.', 'mx1.cust.test. 300 IN A %s' % MX_GOOD],
    'hoster.test': ['mta-sts.hoster.test. 300 IN A %s' % POLICY_HOST],
}
STALE_POLICY = 'version: STSv1\r\nmode: testing\r\nmx: mx1.stale.test\r\nmax_age: 3600\r\n'


class RolloutLab:
    def __init__(self):
        self.base = tempfile.mkdtemp(prefix='rollout-')
        # nginx's workers (nobody) read the certificates and policy files under it.
        os.chmod(self.base, 0o755)
        self.ca = LabCA()
        self.ca_path = self.ca.write_bundle(self.path('ca.pem'))
        self.knot = KnotLab(self.path('knot'), sorted(ZONES), port=53, address=DNS)
        self.nginx = NginxSite(self.path('nginx'), POLICY_HOST, user='%s %s' % (WORKER_USER, WORKER_GROUP))
        self.stale = PolicyWeb(self.path('stale'), STALE_HOST, ca=self.ca)
        self.mail = MailLab(self.path('mail'), self.ca)
        self.certificate = None

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def start(self):
        self.knot.start()
        for zone, lines in ZONES.items():
            self.knot.add_records(zone, lines)
        self.certificate = self.policy_host_certificate('policy-host', sorted(ZONES))
        self.nginx.start()
        self.stale.serve('mta-sts.stale.test', STALE_POLICY).cert('mta-sts.stale.test')
        self.stale.apply()
        self.mail.add_mx(MX_GOOD, name='mx1.beta.test',
                         names=['mx1.alpha.test', 'mx1.beta.test', 'mx1.stale.test', 'mx1.cust.test'])
        self.mail.add_mx(MX_BAD_CERT, kind='wrong_name', name='mx1.gamma.test')
        self.mail.add_mx(MX_UNCOVERED, name='mx1.uncov.test')
        self.mail.start()
        return self

    def policy_host_certificate(self, stem, domains):
        """A certificate for every ``mta-sts.<domain>`` and its key, readable by nginx's workers: (cert, key)."""
        os.makedirs(self.path('certs'), mode=0o755, exist_ok=True)
        cert, key = write_pair(self.path('certs'), stem, self.ca.issue(['mta-sts.%s' % domain for domain in domains]))
        os.chown(key, 0, grp.getgrnam(WORKER_GROUP).gr_gid)
        os.chmod(key, 0o640)
        return cert, key

    def stop(self):
        for server in (self.mail, self.stale, self.nginx, self.knot):
            try:
                server.stop()
            except Exception:  # pylint: disable=broad-except  # the others must stop too
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def tsig_secret(self):
        return self.knot.key_secret

    def group_vars(self, inventory_dir, domains):
        return {
            'mta_sts_dns': {'provider': 'rfc2136', 'server': DNS, 'port': 53, 'key_name': self.knot.key_name,
                            'key_secret': self.knot.key_secret, 'key_algorithm': self.knot.key_algorithm},
            'mta_sts_policy_hosts': 'policy_hosts',
            'mta_sts_probe_host': 'localhost',
            'mta_sts_state_file': os.path.join(inventory_dir, 'mta-sts-state.json'),
            'mta_sts_plan_file': os.path.join(inventory_dir, 'out', 'plan', 'plan.json'),
            # Not made beforehand: drift.yml makes it, as in a fresh CI job's workspace.
            'mta_sts_report_dir': os.path.join(inventory_dir, 'out', 'drift'),
            'mta_sts_verify': {'nameservers': [DNS], 'ca_path': self.ca_path, 'timeout': 5, 'wait_timeout': 3,
                               'interval': 1},
            'mta_sts_domains': domains,
        }

    def policy_host_vars(self, nginx=None, certificate=None, data='data'):
        """The policy_host role's variables for ``nginx`` (the lab's own by default) at its address."""
        nginx = nginx or self.nginx
        certificate = certificate or self.certificate
        return {
            'policy_host_certificate': certificate[0],
            'policy_host_private_key': certificate[1],
            'policy_host_data_dir': self.path(data),
            'policy_host_config_path': nginx.drop_in_path,
            'policy_host_config_test_command': nginx.test_command,
            'policy_host_reload_command': [nginx.reload_script],
            'policy_host_listen_addresses': [nginx.address],
            'policy_host_http_port': 0,
            'policy_host_nginx_user': WORKER_USER,
        }


class Inventory:
    """An inventory directory as a user keeps it in git: hosts.yml, group_vars/all.yml, host_vars, the state."""

    def __init__(self, lab, domains=None):
        self.lab = lab
        self.dir = tempfile.mkdtemp(prefix='inventory-', dir=lab.base)
        self.domains = copy.deepcopy(domains if domains is not None else base_domains())
        self.extra = {}
        self.write()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self):
        hosts = {'all': {
            'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}},
            'children': {'policy_hosts': {'hosts': {'localhost': {}}}}}}
        group_vars = self.lab.group_vars(self.dir, self.domains)
        group_vars.update(self.extra)
        for name, data in (('hosts.yml', hosts), (os.path.join('group_vars', 'all.yml'), group_vars),
                           (os.path.join('host_vars', 'localhost.yml'), self.lab.policy_host_vars())):
            os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
            with open(self.path(name), 'w') as handle:
                yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)

    def set_domains(self, domains):
        self.domains = copy.deepcopy(domains)
        self.write()

    def domain(self, name):
        return next(item for item in self.domains if item['domain'] == name)

    def run(self, playbook, check=False, diff=False, extra_vars=None):
        workdir = tempfile.mkdtemp(prefix='run-', dir=self.lab.base)
        results_file = os.path.join(workdir, 'results.json')
        command = [ANSIBLE_PLAYBOOK, '-i', self.path('hosts.yml'), os.path.join(PLAYBOOKS, playbook)]
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        for name, value in (extra_vars or {}).items():
            command += ['-e', json.dumps({name: value})]
        return run_command(command, playbook_env(results_file), results_file)

    def state(self):
        path = self.path('mta-sts-state.json')
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return json.load(handle)

    def write_state(self, state):
        with open(self.path('mta-sts-state.json'), 'w') as handle:
            json.dump(state, handle)

    def plan(self):
        with open(self.path('out', 'plan', 'plan.json')) as handle:
            return json.load(handle)


def task_results(run, name):
    """Results of the tasks called ``name`` (role tasks carry the role's prefix)."""
    return [result for result in run.results if result['_task'].split(' : ')[-1] == name]


def changed_tasks(run):
    return [result['_task'] for result in run.results if result.get('changed')]


@pytest.fixture(scope='session')
def lab():
    require_private_namespace('the rollout lab (tests/rollout)')
    lab = RolloutLab()
    try:
        yield lab.start()
    finally:
        lab.stop()
