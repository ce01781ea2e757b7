"""Real deliveries from a Postfix configured by the role ``mailsec.mta_sts.postfix``.

One lab for the whole file (inside ``scripts/lab-netns``): Knot signs
``sts.example.`` and unbound validates it (``dnssec_lab``), nginx serves the
policies on 127.0.0.1:443, one ``MailLab(accept=True)`` answers as every MX
(each on its own 127.0.0.x:25, discarding what it accepts), and a real
sending Postfix is configured by real ``ansible-playbook`` runs of the role
(partners, DANE, MTA-STS through the resolver the role installed from local
wheels): first refused (DANE against a resolver that does not validate),
then for real.  Every case is one domain and one message, all sent at once.

What a case asserts, from the sender's log and queue and the receiver's log:

* delivered: ``status=sent`` to the domain's MX, the TLS line the same
  ``smtp`` process logged for that relay (``Verified`` / ``Trusted`` /
  ``Untrusted TLS connection established to <mx>``), the receiver logged
  the Message-ID under the queue id the sender was given, and the session
  that carried it had STARTTLS;
* deferred: every attempt ``status=deferred (Server certificate not
  verified)``, the message still in the queue (``postqueue -j``), the
  receiver never saw its Message-ID, and each of its sessions with the
  sender reached STARTTLS and ended before MAIL FROM: neither sent over the
  refused TLS session nor in clear.
"""

import collections
import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from cryptography import x509

from tests.integration.playbook import REPO, run_playbook
from tests.lab.dnsproxy import CountingDnsProxy
from tests.lab.mail import MailLab
from tests.lab.netns import bind_mount
from tests.lab.web import PolicyWeb, free_loopback_addresses
from tests.postfix.mail_lab import (Destinations, SendingPostfix, StsResolver, outcome, received,
                                    sessions, wait_for_outcomes)

ROLE = 'mailsec.mta_sts.postfix'
WHEELS = os.path.join(REPO, '.build', 'wheels', 'mta-sts-resolver')
CACHE_GRACE = 2
SYSTEM_PYTHON = '/usr/bin/python3'
DANE_MAP = 'socketmap:inet:127.0.0.1:8462:dane'
# A resolver that answers but does not validate: Knot itself, behind a
# plain forwarder on port 53 (resolv.conf takes no port).
NON_VALIDATING = '127.0.0.2'
# Postfix 3.10.5 checks the MX host name against the policy's patterns
# (smtp_tls_enforce_sts_mx_patterns, which the role turns on there).
MX_PATTERNS_ENFORCED = (3, 10, 5)

# One domain and one message each.  status None: decided by the Postfix version (test_gap_...).
Case = collections.namedtuple('Case', 'zone options status tls')
CASES = {
    'enforce-good': Case('sts.example', {'policy': ('enforce', ['*.enforce-good.sts.example'])},
                         'sent', 'Verified'),
    # A certificate for a host no pattern covers.  (One for another host the pattern covers is
    # the gap below.)
    'enforce-wrong-name': Case('sts.example', {'cert_names': ['mail.elsewhere.plain.example'],
                                               'policy': ('enforce', ['*.enforce-wrong-name.sts.example'])},
                               'deferred', None),
    'enforce-untrusted': Case('sts.example', {'mx_kind': 'untrusted',
                                              'policy': ('enforce', ['*.enforce-untrusted.sts.example'])},
                              'deferred', None),
    # The MX is outside the patterns and its certificate names only itself.
    'enforce-uncovered': Case('sts.example', {'mx_label': 'other',
                                              'policy': ('enforce', ['mx1.enforce-uncovered.sts.example'])},
                              'deferred', None),
    # The MX is outside the patterns, but its certificate names a host the patterns cover.
    'gap': Case('sts.example', {'mx_label': 'other', 'cert_names': ['mx1.gap.sts.example'],
                                'policy': ('enforce', ['mx1.gap.sts.example'])},
                None, 'Verified'),
    # The same gap with a wildcard pattern: the MX is covered, its certificate names another
    # covered host (MailLab's wrong_name: the domain and its www), not the MX.
    'gap-wildcard': Case('sts.example', {'mx_kind': 'wrong_name',
                                         'policy': ('enforce', ['*.gap-wildcard.sts.example'])},
                         None, 'Verified'),
    'testing-bad': Case('sts.example', {'mx_kind': 'wrong_name',
                                        'policy': ('testing', ['*.testing-bad.sts.example'])},
                        'sent', 'Trusted'),
    'no-sts': Case('plain.example', {'mx_kind': 'untrusted'}, 'sent', 'Untrusted'),
    'partner-bad': Case('plain.example', {'mx_kind': 'untrusted'}, 'deferred', None),
    'partner-good': Case('plain.example', {}, 'sent', 'Verified'),
    # Untrusted CA: only DANE (3 1 1 ignores the CA) can verify it; its MTA-STS policy would refuse it.
    'dane-good': Case('sts.example', {'mx_kind': 'untrusted', 'tlsa': 'match',
                                      'policy': ('enforce', ['*.dane-good.sts.example'])},
                      'sent', 'Verified'),
    # A certificate MTA-STS accepts, but a TLSA record it does not match.
    'dane-mismatch': Case('sts.example', {'tlsa': 'mismatch',
                                          'policy': ('enforce', ['*.dane-mismatch.sts.example'])},
                          'deferred', None),
    # Deferred under its first policy (MX outside the pattern); the resolver tests change the policy.
    'rollover': Case('sts.example', {'mx_label': 'other', 'policy': ('enforce', ['mx1.rollover.sts.example'])},
                     'deferred', None),
}
PARTNERS = [{'domain': 'partner-bad.plain.example', 'level': 'secure'},
            {'domain': 'partner-good.plain.example', 'level': 'secure'}]


def postfix_version(sender):
    return tuple(int(p) for p in sender.postconf('-h', 'mail_version').strip().split('.')[:3])


class Lab:
    """Everything the tests share: built once, stopped at the end."""

    def __init__(self, dnssec_lab, ca):
        self.dns = dnssec_lab
        # Not pytest's 0700 directories: the DANE lookup runs as nobody from the venv in here.
        self.work = tempfile.mkdtemp(prefix='mailsec-deliveries-')
        os.chmod(self.work, 0o755)
        self.ca_file = ca.write_bundle(os.path.join(self.work, 'lab-ca.pem'))
        self.venv = os.path.join(self.work, 'venv')
        self.resolver_config = os.path.join(self.work, 'mta-sts-daemon.yml')
        self.web = PolicyWeb(os.path.join(self.work, 'web'), ca=ca)
        self.receivers = MailLab(os.path.join(self.work, 'receivers'), ca, accept=True)
        self.dests = Destinations(dnssec_lab, self.web, self.receivers,
                                  free_loopback_addresses(len(CASES), port=25))
        self.sender = SendingPostfix(os.path.join(self.work, 'sender'))
        self.resolver = StsResolver(self.venv, self.resolver_config, self.ca_file,
                                    os.path.join(self.work, 'resolver.log'))
        self.refused = self.refused_queries = self.config_unchanged = self.configured = None

    @property
    def dnssec_probe(self):
        # With the final dot, as users write it: main.cf must get it without ('ns:sts.example.' made
        # Postfix 3.7's own probe warn "DNSSEC validation may be unavailable"; test_postfix_found_dnssec_validation).
        return f'ns:{self.dns.signed_probe}'

    def build(self):
        """Destinations live, the sender running, the role refused once (DANE against a
        resolver that does not validate), then run for real; the resolver started."""
        for label, case in CASES.items():
            self.dests.add(label, case.zone, **case.options)
        self.dests.start()
        self.sender.start()
        before = self.sender.config_files()
        with non_validating_resolver(self.dns, self.work) as proxy:
            self.refused = self.run_role()
            self.refused_queries = proxy.counts()['QUERY']
        self.config_unchanged = self.sender.config_files() == before
        self.configured = self.run_role()
        assert self.configured.returncode == 0, self.configured
        self.resolver.start()

    def role_vars(self, **overrides):
        values = {
            'postfix_config_dir': self.sender.conf_dir,
            'postfix_check_command': self.sender.check_command,
            'postfix_reload_command': self.sender.reload_command,
            'postfix_tls_ca_file': self.ca_file,
            'postfix_tls_partners': PARTNERS,
            # The DANE lookup runs as nobody with the venv's python: not one under /root (pyenv).
            'postfix_mta_sts_resolver_python': SYSTEM_PYTHON,
            'postfix_mta_sts_resolver_venv': self.venv,
            'postfix_mta_sts_resolver_wheels': WHEELS,
            'postfix_mta_sts_resolver_config': self.resolver_config,
            'postfix_mta_sts_resolver_service': 'none',
            'postfix_mta_sts_resolver_cache_grace': CACHE_GRACE,
            'postfix_mta_sts_resolver_strict_testing': False,
            'postfix_dane': True,
            'postfix_dane_dnssec_probe': self.dnssec_probe,
            'postfix_dane_bogus_name': self.dns.bogus_name,
        }
        values.update(overrides)
        return values

    def run_role(self, **overrides):
        tasks = [
            {'name': 'postfix role', 'ansible.builtin.include_role': {'name': ROLE},
             'vars': self.role_vars(**overrides)},
            {'name': 'reload now', 'ansible.builtin.meta': 'flush_handlers'},
        ]
        return run_playbook(tasks, workdir=tempfile.mkdtemp(prefix='play-', dir=self.work))

    def stop(self):
        for server in (self.resolver, self.sender, self.receivers, self.web):
            server.stop()
        shutil.rmtree(self.work, ignore_errors=True)


@contextlib.contextmanager
def non_validating_resolver(dns, workdir):
    """/etc/resolv.conf names a server that answers from Knot without
    validating (no AD bit, no SERVFAIL for a broken signature) until the
    block ends; the DnssecLab's resolv.conf is back afterwards."""
    proxy = CountingDnsProxy(dns.knot.address, dns.knot.port, listen_address=NON_VALIDATING, listen_port=53)
    path = os.path.join(workdir, 'resolv.conf.non-validating')
    with open(path, 'w', encoding='ascii') as f:
        f.write(f'nameserver {NON_VALIDATING}\noptions edns0 trust-ad\n')
    proxy.start()
    try:
        with bind_mount(path, '/etc/resolv.conf', 'non_validating_resolver'):
            yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope='module')
def lab(dnssec_lab, lab_ca):
    if not os.path.isdir(WHEELS):
        pytest.fail(f'{WHEELS} is missing: scripts/install-deps downloads the resolver wheels there')
    lab = Lab(dnssec_lab, lab_ca)
    try:
        lab.build()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope='module')
def outcomes(lab):
    """Send one message per case; wait until each was delivered or deferred once."""
    ids = {label: lab.sender.submit(dest.recipient, label) for label, dest in lab.dests.domains.items()}
    found = wait_for_outcomes(lab.sender, list(ids.values()),
                              lambda o: o.status in ('sent', 'deferred', 'bounced'), timeout=60)
    return {label: (ids[label], found[ids[label]]) for label in ids}


def expected_status(lab, label):
    if CASES[label].status is None:
        # Postfix 3.7 checks the certificate against the policy's match= names only.
        return 'deferred' if postfix_version(lab.sender) >= MX_PATTERNS_ENFORCED else 'sent'
    return CASES[label].status


def assert_delivered(lab, label, message_id, result, tls_word):
    dest = lab.dests.domains[label]
    assert result is not None and result.status == 'sent', (label, result, lab.sender.log_tail(40))
    assert result.final.relay == f'{dest.mx_name}[{dest.address}]:25'
    if tls_word:
        assert f']: {tls_word} TLS connection established to {result.final.relay}:' in result.final.tls, result.final
    got = received(lab.receivers, message_id)
    receiver_queue_id = result.final.reason.rsplit(' ', 1)[-1]
    assert len(got) == 1 and f': {receiver_queue_id}: message-id=' in got[0], (got, result.final)
    # The receiver's side: the session that carried it had STARTTLS first.
    carried = [s for s in sessions(lab.receivers, dest.address) if ' data=1' in s]
    assert carried and all('starttls=1' in s for s in carried), carried


def assert_deferred(lab, label, message_id, result):
    assert result is not None and result.status == 'deferred', (label, result, lab.sender.log_tail(40))
    assert all(a.status == 'deferred' for a in result.attempts), result
    # The TLS policy's doing, not a network fault.
    assert result.final.reason == 'Server certificate not verified', result.final
    assert result.queue_id in lab.sender.queued_ids()
    # Neither over the refused session nor in clear: the receiver never had it. The sender did
    # reach it, started TLS, and left before MAIL FROM.
    assert received(lab.receivers, message_id) == []
    seen = [s for s in sessions(lab.receivers, lab.dests.domains[label].address) if 'ehlo=' in s]
    assert seen and all('starttls=1' in s and 'mail=' not in s for s in seen), seen


@pytest.mark.parametrize('label', [label for label in CASES if label != 'rollover'])
def test_delivery(lab, outcomes, label):
    message_id, result = outcomes[label]
    if expected_status(lab, label) == 'sent':
        assert_delivered(lab, label, message_id, result, CASES[label].tls)
    else:
        assert_deferred(lab, label, message_id, result)


@pytest.mark.parametrize('label', ['gap', 'gap-wildcard'])
def test_gap_is_the_version_s_behaviour(lab, outcomes, label):
    """Postfix < 3.10.5 checks the certificate against the policy's match= names, not the MX
    host name: an MX whose certificate names some other covered host gets the mail.  The role
    skipped smtp_tls_enforce_sts_mx_patterns there, saying why."""
    result = outcomes[label][1]
    dest = lab.dests.domains[label]
    features = next(r['features'] for r in lab.configured.results if 'features' in r)
    enforced = postfix_version(lab.sender) >= MX_PATTERNS_ENFORCED
    assert features['enforce_sts_mx_patterns']['applied'] is enforced, features
    if enforced:
        assert result.status == 'deferred'
    else:
        assert features['enforce_sts_mx_patterns']['reason'], features
        assert 'smtp_tls_enforce_sts_mx_patterns' not in lab.sender.postconf('-n')
        assert result.status == 'sent' and result.final.relay.startswith(f'{dest.mx_name}[')
        served = x509.load_pem_x509_certificates(lab.receivers.certificate(dest.address))[0]
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert dest.mx_name not in names.get_values_for_type(x509.DNSName)


def test_dane_won_over_mta_sts(lab, outcomes):
    """Both domains have a valid enforce policy (the resolver answers secure), and the DANE
    lookup ahead of it answers dane-only: the untrusted certificate was accepted through its
    TLSA record, the CA-trusted one refused for not matching its TLSA record."""
    for label in ('dane-good', 'dane-mismatch'):
        domain = lab.dests.domains[label].domain
        assert lab.resolver.query(domain).startswith('secure match='), label
        answer = subprocess.run(['postmap', '-q', domain, DANE_MAP], capture_output=True, text=True,
                                timeout=30, check=False)
        assert answer.stdout.strip() == 'dane-only', (label, answer)
    maps = lab.sender.postconf('-h', 'smtp_tls_policy_maps').replace(',', ' ').split()
    assert maps.index(DANE_MAP) < maps.index(lab.resolver.map_name)
    assert outcomes['dane-good'][1].status == 'sent' and outcomes['dane-mismatch'][1].status == 'deferred'


def test_dane_refused_against_a_non_validating_resolver(lab):
    assert lab.refused.returncode != 0
    failed = [r for r in lab.refused.results if r.get('_status') == 'failed']
    assert failed, lab.refused
    message = str(failed[-1].get('msg', ''))
    assert lab.dns.signed_probe.rstrip('.') in message or 'validat' in message.lower(), message
    assert lab.refused_queries > 0          # the check really asked that resolver
    assert lab.config_unchanged           # main.cf, master.cf, no partner table written


def test_role_settings(lab):
    settings = lab.sender.postconf('-n')
    assert f'smtp_tls_CAfile = {lab.ca_file}' in settings
    assert 'smtp_dns_support_level = dnssec' in settings
    assert 'smtp_tls_security_level = dane' in settings
    assert f'dnssec_probe = {lab.dnssec_probe.rstrip(".")}' in settings


@pytest.mark.usefixtures('outcomes')
def test_postfix_found_dnssec_validation(lab):
    """The unsigned destinations made the smtp processes send Postfix's own DNSSEC probe
    (dnssec_probe): it got a validated answer, or Postfix would have warned."""
    log = lab.sender.log_text()
    assert 'status=sent' in log and 'plain.example' in log
    assert 'DNSSEC validation may be unavailable' not in log, [
        line for line in log.splitlines() if 'dnssec' in line.lower()]


@pytest.mark.usefixtures('outcomes')
def test_resolver_restart_still_answers(lab):
    domain = lab.dests.domains['enforce-good'].domain
    before = lab.resolver.query(domain)
    assert before.startswith('secure match=')
    lab.resolver.stop()
    with pytest.raises(RuntimeError, match='Connection refused'):
        lab.resolver.query(domain)
    lab.resolver.start()
    assert lab.resolver.query(domain) == before


def test_new_policy_needs_a_new_id_and_is_picked_up_after_the_cache_grace(lab, outcomes):
    dest = lab.dests.domains['rollover']
    message_id, first = outcomes['rollover']
    assert first.status == 'deferred'
    old = lab.resolver.query(dest.domain)
    assert old.startswith('secure match=mx1.rollover.sts.example')
    # A new policy under the old id: senders keep what they have.
    lab.dests.change_policy('rollover', ('enforce', ['*.rollover.sts.example']), new_id=False)
    time.sleep(CACHE_GRACE + 1)
    assert lab.resolver.query(dest.domain) == old
    # The new id: picked up once the cache grace has passed.
    lab.dests.change_policy('rollover', ('enforce', ['*.rollover.sts.example']))
    began = time.monotonic()
    answer = old
    while answer == old and time.monotonic() - began < CACHE_GRACE + 10:
        time.sleep(0.5)
        answer = lab.resolver.query(dest.domain)
    assert answer.startswith('secure match=.rollover.sts.example'), answer
    # And the deferred message goes out on its next try.
    lab.sender.flush()
    final = wait_for_outcomes(lab.sender, [message_id], lambda o: o.status == 'sent', timeout=30)[message_id]
    assert_delivered(lab, 'rollover', message_id, final, 'Verified')
    assert outcome(lab.sender.log_text(), message_id).attempts[0].status == 'deferred'
