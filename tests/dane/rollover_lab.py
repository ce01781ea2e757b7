"""The mail lab of the TLSA rollover test: a receiving Postfix MX whose inbound
certificate the ``mailsec.mta_sts.postfix`` role manages, and a sending Postfix
that enforces DANE (the same role with ``postfix_dane: true``), both inside
``scripts/lab-netns`` with the session's ``DnssecLab``.

* Mail domain ``h5.dane.example`` (zone ``dane.example.``, signed by Knot,
  validated by unbound), MX ``mx.h5.dane.example`` at 127.0.5.1.
* ``ReceivingMx`` accepts mail on 127.0.5.1:25 for any recipient and discards
  it (so "the MX got it" is its log line); its ``smtpd_tls_*`` settings are
  left to the role, as on a real MX.
* ``MailPair.send`` submits one message to the sender and waits until its log
  says sent or deferred; ``Delivery`` holds what the test asserts on: the
  status, the TLS line of the attempt (``Verified`` means a TLSA record
  matched, since DANE is the only thing that can verify here) and whether
  the MX logged the Message-ID.
"""

import dataclasses
import json
import os
import sys
import tempfile

import yaml

from tests.integration.playbook import ANSIBLE_PLAYBOOK, REPO, playbook_env, run_command, run_playbook
from tests.lab.pki import write_pair
from tests.postfix.mail_lab import SendingPostfix, received, wait_for_outcomes

ROLE = 'mailsec.mta_sts.postfix'
ZONE = 'dane.example.'
DOMAIN = 'h5.dane.example'
MX_NAME = 'mx.h5.dane.example'
MX_ADDRESS = '127.0.5.1'
DNS_TTL = 2
WHEELS = os.path.join(REPO, '.build', 'wheels', 'mta-sts-resolver')
# The DANE lookup runs as nobody with the venv's python: not one under /root (pyenv).
SYSTEM_PYTHON = '/usr/bin/python3'
DISCARD = 'discard:accepted-by-mailsec-lab'
FINAL = ('sent', 'deferred', 'bounced')
PLAYBOOK = os.path.join(REPO, 'playbooks', 'tlsa_rollover.yml')


class ReceivingMx(SendingPostfix):
    """A Postfix answering as one MX on ``address:25`` that takes mail for any
    recipient from the loopback and discards it; TLS is what the role puts in
    main.cf (nothing before: no STARTTLS)."""

    def __init__(self, workdir, address, name):
        super().__init__(workdir, listeners=((address, 25, ()),), myhostname=name)
        # MailLab's discard service; the transports are set below.
        self.accept = True

    def main_settings(self):
        settings = super().main_settings()
        settings.update({'default_transport': DISCARD, 'relay_transport': DISCARD})
        return settings


@dataclasses.dataclass
class Delivery:
    message_id: str
    statuses: list       # the status of each attempt, in order: sent, deferred, bounced
    tls: str             # the TLS line of the final attempt ('' when none)
    reason: str          # the final attempt's text after status=
    received: bool       # the MX logged the Message-ID

    @property
    def status(self):
        return self.statuses[-1] if self.statuses else None

    @property
    def verified(self):
        """Delivered at the first attempt, over TLS that DANE verified, and received."""
        return (self.statuses == ['sent'] and ' Verified TLS connection established to ' in self.tls
                and self.received)


class MailPair:
    """The sending Postfix (DANE enforced) and the receiving MX, started
    and configured by real runs of the role."""

    def __init__(self, dns, ca, workdir):
        self.dns, self.ca = dns, ca
        self.work = workdir
        # Not pytest's 0700 directories: the DANE lookup runs as nobody from the venv in here.
        os.chmod(self.work, 0o755)
        self.ca_file = ca.write_bundle(os.path.join(self.work, 'lab-ca.pem'))
        self.venv = os.path.join(self.work, 'venv')
        self.sender = SendingPostfix(os.path.join(self.work, 'sender'))
        self.mx = ReceivingMx(os.path.join(self.work, 'mx'), MX_ADDRESS, MX_NAME)
        self.keys = {}

    def certificate(self, label):
        """``(cert path, key path)`` of certificate ``label`` for the MX name, each label its own key."""
        if label not in self.keys:
            self.keys[label] = write_pair(os.path.join(self.work, 'tls'), f'mx-{label}',
                                          self.ca.issue([MX_NAME]))
        return self.keys[label]

    def sender_role_vars(self):
        return {
            'postfix_config_dir': self.sender.conf_dir,
            'postfix_check_command': self.sender.check_command,
            'postfix_reload_command': self.sender.reload_command,
            'postfix_tls_ca_file': self.ca_file,
            'postfix_mta_sts': False,
            'postfix_mta_sts_resolver_python': SYSTEM_PYTHON,
            'postfix_mta_sts_resolver_venv': self.venv,
            'postfix_mta_sts_resolver_wheels': WHEELS,
            'postfix_dane': True,
            'postfix_dane_dnssec_probe': f'ns:{ZONE}',
            'postfix_dane_bogus_name': self.dns.bogus_name,
        }

    def mx_role_vars(self, label):
        """The role's variables for the MX serving certificate ``label`` (no DANE, no MTA-STS: it only receives)."""
        crt, key = self.certificate(label)
        return {
            'postfix_config_dir': self.mx.conf_dir,
            'postfix_check_command': self.mx.check_command,
            'postfix_reload_command': self.mx.reload_command,
            'postfix_tls_ca_file': self.ca_file,
            'postfix_mta_sts': False,
            'postfix_dane': False,
            'postfix_inbound_certificates': [{'names': [MX_NAME], 'cert': crt, 'key': key}],
        }

    def run_role(self, role_vars):
        tasks = [{'name': 'postfix role', 'ansible.builtin.include_role': {'name': ROLE}, 'vars': role_vars},
                 {'name': 'reload now', 'ansible.builtin.meta': 'flush_handlers'}]
        run = run_playbook(tasks, workdir=tempfile.mkdtemp(prefix='role-', dir=self.work))
        assert run.returncode == 0, run
        return run

    def start(self, label):
        """The domain's MX and address records, both Postfix running, the MX serving certificate ``label``."""
        self.dns.add_records(ZONE, [f'{DOMAIN}. {DNS_TTL} MX 10 {MX_NAME}.',
                                    f'{MX_NAME}. {DNS_TTL} A {MX_ADDRESS}'])
        self.mx.start()
        self.sender.start()
        self.run_role(self.mx_role_vars(label))
        self.run_role(self.sender_role_vars())
        return self

    def stop(self):
        for server in (self.sender, self.mx):
            server.stop()

    def submit(self, tag):
        """Submit one message to the domain; its Message-ID."""
        return self.sender.submit(f'user@{DOMAIN}', tag)

    def deliveries(self, message_ids, timeout=60, done=lambda o: o.status in FINAL):
        """``{message_id: Delivery}`` once ``done`` holds for each (by default: the sender logged a status, sent or
        deferred at least once)."""
        found = wait_for_outcomes(self.sender, list(message_ids), done, timeout=timeout)
        deliveries = {}
        for message_id, result in found.items():
            final = result.final if result else None
            deliveries[message_id] = Delivery(
                message_id, [a.status for a in result.attempts] if result else [], final.tls if final else '',
                final.reason if final else '', bool(received(self.mx, message_id)))
        return deliveries

    def sender_retries(self, message_id, timeout=60):
        """The ``Delivery`` of a deferred message once the sender's retries got it out (or ``timeout`` passed)."""
        return self.deliveries([message_id], timeout, done=lambda o: o.status in ('sent', 'bounced'))[message_id]

    def log_tail(self):
        return self.sender.log_tail(30)


class RolloverInventory:
    """An inventory directory as a user keeps it for playbooks/tlsa_rollover.yml: the MTA host (here the
    controller itself, whose Postfix is the lab's MX) in the group ``mta`` with the postfix role's variables
    and its current and next certificates; the DNS provider (Knot by RFC 2136) and the state file for all."""

    def __init__(self, mail, workdir, current, following, **extra):
        self.mail = mail
        self.dir = tempfile.mkdtemp(prefix='inventory-', dir=workdir)
        self.state_file = os.path.join(self.dir, 'tlsa-rollover-state.yml')
        self.set(current, following, **extra)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def set(self, current, following, **extra):
        """Roll from certificate label ``current`` to ``following`` (None: no next); ``extra``: more variables."""
        knot = self.mail.dns.knot
        group_vars = {
            'tlsa_rollover_dns': {'provider': 'rfc2136', 'server': knot.address, 'port': knot.port,
                                  'key_name': knot.key_name, 'key_secret': knot.key_secret,
                                  'key_algorithm': knot.key_algorithm},
            'tlsa_rollover_info': {'nameservers': [f'{knot.address}:{knot.port}'], 'interval': 0.5, 'timeout': 5},
            'tlsa_rollover_serving_check': {'timeout': 5},
            'tlsa_rollover_ttl': DNS_TTL,
            'tlsa_rollover_wait_timeout': 30,
            'tlsa_rollover_state_file': self.state_file,
        }
        host_vars = dict(self.mail.mx_role_vars(current), tlsa_rollover_mx_hosts=[MX_NAME])
        crt, key = self.mail.certificate(current)
        host_vars['tlsa_rollover_current'] = {'cert': crt, 'key': key}
        if following:
            crt, key = self.mail.certificate(following)
            host_vars['tlsa_rollover_next'] = {'cert': crt, 'key': key}
        host_vars.update(extra)
        hosts = {'all': {'hosts': {'localhost': {'ansible_connection': 'local',
                                                 'ansible_python_interpreter': sys.executable}},
                         'children': {'mta': {'hosts': {'localhost': {}}}}}}
        for name, data in (('hosts.yml', hosts), (os.path.join('group_vars', 'all.yml'), group_vars),
                           (os.path.join('host_vars', 'localhost.yml'), host_vars)):
            os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
            with open(self.path(name), 'w', encoding='utf-8') as handle:
                yaml.safe_dump(data, handle, sort_keys=False)

    def run(self, check=False, diff=False, **extra_vars):
        workdir = tempfile.mkdtemp(prefix='run-', dir=self.dir)
        results_file = os.path.join(workdir, 'results.json')
        command = [ANSIBLE_PLAYBOOK, '-i', self.path('hosts.yml'), PLAYBOOK]
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        for name, value in extra_vars.items():
            command += ['-e', json.dumps({name: value})]
        return run_command(command, playbook_env(results_file), results_file)

    def run_tasks(self, tasks):
        """``tasks`` on localhost with the inventory's DNS provider as the dns group's module defaults."""
        with open(self.path('group_vars', 'all.yml'), encoding='utf-8') as handle:
            dns = yaml.safe_load(handle)['tlsa_rollover_dns']
        play = [{'hosts': 'localhost', 'gather_facts': False,
                 'module_defaults': {'group/mailsec.mta_sts.dns': dns}, 'tasks': tasks}]
        workdir = tempfile.mkdtemp(prefix='run-', dir=self.dir)
        playbook = os.path.join(workdir, 'play.yml')
        with open(playbook, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(play, handle, sort_keys=False)
        results_file = os.path.join(workdir, 'results.json')
        return run_command([ANSIBLE_PLAYBOOK, '-i', self.path('hosts.yml'), playbook],
                           playbook_env(results_file), results_file)

    def state(self):
        """The state file's ``tlsa_rollover_state`` (None when there is no file)."""
        if not os.path.exists(self.state_file):
            return None
        with open(self.state_file, encoding='utf-8') as handle:
            return yaml.safe_load(handle)['tlsa_rollover_state']
