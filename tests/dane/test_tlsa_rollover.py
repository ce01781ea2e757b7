"""The TLSA rollover of the domain's own MX (issue 12), through ``playbooks/tlsa_rollover.yml`` against real Postfix.

A receiving Postfix MX (``mx.h5.dane.example``, 127.0.5.1) whose inbound certificate the ``mailsec.mta_sts.postfix``
role manages, and a sending Postfix that enforces DANE (the same role with ``postfix_dane: true``): mail to
``h5.dane.example`` is delivered only when a TLSA record at ``_25._tcp.mx.h5.dane.example`` matches the key the MX
serves (the sender does not trust the lab CA, so only DANE can verify). Knot signs the zone, unbound validates.
See rollover_lab.py.

Mail is sent at every point between the runs (before, the next record published and waiting, the wait over,
switched and retired, after; and switched with both records published, in the B -> C rollover) and all the time
while the playbook runs (a message a second), and every message must be delivered at its first attempt over TLS
that DANE verified: a switch before senders saw the next record, or a removal of the record of the key the MX
serves, would defer some of them.

A -> B: --check --diff (nothing changes), a run that stops at the wait (tlsa_rollover_wait_timeout 0), a run that
resumes and completes (switch by the postfix role, retire), a run that changes nothing. B -> C: the MTA not switched
(tlsa_rollover_switch_mta false) stops at the switch with B's record kept, and tlsa_record refuses to drop it by
hand; a switch the MX does not show fails the run with B's record kept; a switch made outside, then the retire.
"""

import hashlib
import os
import shutil
import smtplib
import ssl
import tempfile
import threading
import time

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.dane.rollover_lab import DNS_TTL, DOMAIN, MX_ADDRESS, MX_NAME, WHEELS, ZONE, MailPair, RolloverInventory
from tests.postfix.mail_lab import tlsa_3_1_1, unrelated_tlsa

TLSA_NAME = f'_25._tcp.{MX_NAME}.'
# The playbook's probes after the switch (retries: 5 is five attempts in all).
SWITCH_ATTEMPTS = 5


def tlsa_line(data, ttl=DNS_TTL):
    return f'{TLSA_NAME} {ttl} TLSA 3 1 1 {data}'


@pytest.fixture(scope='module')
def mail(dnssec_lab, lab_ca):
    if not os.path.isdir(WHEELS):
        pytest.fail(f'{WHEELS} is missing: scripts/install-deps downloads the wheels of the DANE lookup there')
    work = tempfile.mkdtemp(prefix='mailsec-h5-rollover-')
    pair = MailPair(dnssec_lab, lab_ca, work)
    try:
        yield pair.start('a')
    finally:
        pair.stop()
        shutil.rmtree(work, ignore_errors=True)


def pem(path):
    with open(path, 'rb') as handle:
        return handle.read()


def record(mail, label):
    """The 3 1 1 data of certificate ``label``, as the DNS and the modules say it."""
    return f'3 1 1 {tlsa_3_1_1(pem(mail.certificate(label)[0]))}'


def published(dns_lab):
    """The TLSA records Knot (the zone's authoritative server) answers at the MX's name."""
    query = dns.message.make_query(TLSA_NAME, dns.rdatatype.TLSA)
    answer = dns.query.tcp(query, dns_lab.knot.address, port=dns_lab.knot.port, timeout=5)
    return sorted(rr.to_text().lower() for rrset in answer.answer for rr in rrset)


def served(mail):
    """The 3 1 1 data of the key the MX serves over STARTTLS now."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(MX_ADDRESS, 25, local_hostname='probe.lab.invalid', timeout=10) as smtp:
        smtp.starttls(context=context)
        der = smtp.sock.getpeercert(binary_form=True)
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f'3 1 1 {hashlib.sha256(spki).hexdigest()}'


class Traffic:
    """A message a second to the domain while the block runs; ``ids`` in order."""

    def __init__(self, mail, tag):
        self.mail, self.tag, self.ids = mail, tag, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.ids.append(self.mail.submit(f'{self.tag}-{len(self.ids)}'))
            self._stop.wait(1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def assert_all_verified(mail, message_ids):
    deliveries = mail.deliveries(message_ids)
    failed = [d for d in deliveries.values() if not d.verified]
    assert not failed, (failed, mail.log_tail())


def step_messages(run):
    """What the run said of each MX name at its end: "<name>: <step>: <reason>"."""
    return [item['msg'] for r in run.results if r['_task'].endswith("Say each MX name's step and why")
            for item in r.get('results', [])]


def switch_attempts(run):
    """How many times the run probed the MX for the next key after switching the MTA."""
    return next(r['attempts'] for r in run.results if r['_task'] == 'Wait a little until the MX serves the next key')


def failure(run):
    """The message of the task that failed the run (the last failure: a rescued one comes before it)."""
    assert run.returncode != 0, run
    failed = [r for r in run.results if r['_status'] == 'failed']
    assert failed, run
    return failed[-1]['msg']


def test_harness_defers_when_no_tlsa_record_matches(mail, dnssec_lab):
    """The harness can fail: with only a 3 1 1 record of another key the message is deferred and never received;
    once the record of the served key A is published, the sender's retry delivers it, verified."""
    wrong = tlsa_line(unrelated_tlsa())
    dnssec_lab.remove_records(ZONE, [tlsa_line(record(mail, 'a').split()[3])])
    dnssec_lab.add_records(ZONE, [wrong])
    time.sleep(DNS_TTL + 1)
    try:
        message_id = mail.submit('harness-mismatch')
        refused = mail.deliveries([message_id], timeout=30)[message_id]
        assert refused.statuses[:1] == ['deferred'], (refused, mail.log_tail())
        assert refused.reason == 'Server certificate not verified', refused
        assert not refused.received
        dnssec_lab.add_records(ZONE, [tlsa_line(record(mail, 'a').split()[3])])
        dnssec_lab.remove_records(ZONE, [wrong])
        retried = mail.sender_retries(message_id, timeout=40)
        assert retried.status == 'sent' and retried.received, (retried, mail.log_tail())
        assert ' Verified TLS connection established to ' in retried.tls, retried
    finally:
        dnssec_lab.remove_records(ZONE, [wrong])


@pytest.fixture(scope='module')
def rolled(mail, dnssec_lab):
    """Key A published and served; then the playbook: --check --diff, a run that stops at the wait (bound 0 s),
    a run that completes, and a run that finds nothing to do. Mail all along."""
    dnssec_lab.add_records(ZONE, [tlsa_line(record(mail, 'a').split()[3])])
    time.sleep(DNS_TTL + 1)
    inventory = RolloverInventory(mail, mail.work, 'a', 'b')
    points = {'before': mail.submit('before')}
    config_before = mail.mx.config_files()
    with Traffic(mail, 'check') as check_traffic:
        check = inventory.run(check=True, diff=True)
    seen = {'check': {'records': published(dnssec_lab), 'state': inventory.state(),
                      'config_unchanged': mail.mx.config_files() == config_before}}
    with Traffic(mail, 'first') as first_traffic:
        first = inventory.run(tlsa_rollover_wait_timeout=0)
    seen['first'] = {'records': published(dnssec_lab), 'state': inventory.state(), 'served': served(mail)}
    points['published'] = mail.submit('published')
    time.sleep(2 * DNS_TTL + 1)
    points['waited'] = mail.submit('waited')
    with Traffic(mail, 'second') as second_traffic:
        second = inventory.run()
    seen['second'] = {'records': published(dnssec_lab), 'state': inventory.state(), 'served': served(mail)}
    points['retired'] = mail.submit('retired')
    again = inventory.run()
    points['after'] = mail.submit('after')
    return {'inventory': inventory, 'check': check, 'first': first, 'second': second, 'again': again,
            'seen': seen, 'points': points,
            'traffic': check_traffic.ids + first_traffic.ids + second_traffic.ids}


def test_check_diff_shows_the_publication_and_changes_nothing(mail, rolled):
    check, seen = rolled['check'], rolled['seen']['check']
    assert check.returncode == 0, check
    assert seen['records'] == [record(mail, 'a')]
    assert seen['state'] is None and seen['config_unchanged']
    planned = [r for r in check.results if r['_task'] == "Publish the next key's record beside the current one"]
    assert planned and planned[0]['changed'], check
    assert record(mail, 'b').split()[3] in check.output, check


def test_first_run_publishes_next_and_stops_at_the_wait(mail, rolled):
    first, seen = rolled['first'], rolled['seen']['first']
    assert first.returncode == 0, first
    assert seen['records'] == sorted([record(mail, 'a'), record(mail, 'b')])
    assert seen['served'] == record(mail, 'a')
    entry = seen['state'][MX_NAME]
    assert entry['current'] == record(mail, 'a') and entry['next'] == record(mail, 'b')
    assert entry['next_visible_since'] and not entry['switched_at']
    messages = step_messages(first)
    assert messages and f'{MX_NAME}: wait: ' in messages[0] and '. Run again after ' in messages[0], messages


def test_second_run_resumes_switches_the_mta_and_retires_the_old_record(mail, rolled):
    second, seen = rolled['second'], rolled['seen']['second']
    assert second.returncode == 0, second
    assert seen['records'] == [record(mail, 'b')]
    assert seen['served'] == record(mail, 'b')
    assert seen['state'][MX_NAME]['current'] == record(mail, 'b') and seen['state'][MX_NAME]['next'] is None
    assert f'{MX_NAME}: done: ' in step_messages(second)[0]
    switched = [r for r in second.results if 'postfix_tls' in str(r.get('invocation', {}).get('module_args', {}))
                or r['_task'].endswith('Configure Postfix\'s TLS settings, policy maps and certificates')]
    assert switched and switched[0]['changed'], second
    assert switch_attempts(second) < SWITCH_ATTEMPTS, second


def test_a_run_after_the_rollover_changes_nothing(rolled):
    again = rolled['again']
    assert again.returncode == 0, again
    assert not [r['_task'] for r in again.results if r.get('changed')], again


def test_the_validator_finds_the_rolled_record_matching_the_served_key(mail, dnssec_lab, rolled):
    """Publishing and checking agree: after the rollover, policy_info with check_dane (through the validating
    unbound) finds the MX's one record, B's, authenticated and matching the key the MX serves, and no DANE problem."""
    run = rolled['inventory'].run_tasks([{'mailsec.mta_sts.policy_info': {
        'domains': [DOMAIN], 'check_dane': True, 'nameservers': [dnssec_lab.resolver_address], 'timeout': 5,
        'dane_dnssec_probe': 'soa:' + ZONE, 'dane_bogus_name': dnssec_lab.bogus_name}}])
    assert run.returncode == 0, run
    result = run.result['results'][0]
    dane = [entry for entry in result['mx'] if entry['host'] == MX_NAME][0]['dane']
    assert dane['status'] == 'ok' and dane['authenticated'] is True, dane
    assert dane['records'] == [record(mail, 'b')] and dane['matched'] == [record(mail, 'b')], dane
    assert [f for f in result['findings'] if f['code'].startswith('dane-') and f['severity'] != 'info'] == [], result


def test_mail_was_delivered_verified_at_every_step(mail, rolled):
    assert len(rolled['traffic']) >= 10
    assert_all_verified(mail, list(rolled['points'].values()) + rolled['traffic'])


def test_an_mta_never_switched_keeps_the_old_record_and_the_mail_flowing(mail, dnssec_lab, rolled):
    """B -> C with the MTA switched outside the playbook, and not switched yet: the run publishes C, waits, and
    stops at the switch; B's record stays. A removal of B's record by hand is refused by tlsa_record's serving
    check, before any write. Mail is delivered, verified, all along."""
    inventory = rolled['inventory']
    inventory.set('b', 'c', tlsa_rollover_switch_mta=False)
    with Traffic(mail, 'unswitched') as traffic:
        run = inventory.run()
        removal = inventory.run_tasks([{
            'name': 'Remove the record of the key the MX serves',
            'mailsec.mta_sts.tlsa_record': {'host': MX_NAME, 'records': [record(mail, 'c')], 'ttl': DNS_TTL,
                                            'serving_check': {'timeout': 5}},
        }])
    assert run.returncode == 0, run
    messages = step_messages(run)
    assert messages and messages[0].startswith(f'{MX_NAME}: switch: '), messages
    assert published(dnssec_lab) == sorted([record(mail, 'b'), record(mail, 'c')])
    assert served(mail) == record(mail, 'b')
    entry = inventory.state()[MX_NAME]
    assert entry['current'] == record(mail, 'b') and entry['next'] == record(mail, 'c') and not entry['switched_at']
    assert removal.returncode != 0 and not removal.result.get('changed'), removal
    assert record(mail, 'b').split()[3][:12] in removal.result['msg'], removal.result['msg']
    assert_all_verified(mail, traffic.ids + [mail.submit('unswitched-after')])


def test_a_switch_the_mx_does_not_show_fails_keeping_the_old_record_then_one_made_outside_completes(
        mail, dnssec_lab, rolled):
    """Still B -> C, now with the playbook switching the MTA, but the role configures a copy of the MX's
    configuration that no Postfix runs (a wrong postfix_config_dir): the role's run succeeds, the probe still
    sees B, so the run fails saying so and B's record stays. Then the switch is made outside the playbook (the
    role run by hand, as with tlsa_rollover_switch_mta: false): a message sent while the MX serves C and both
    records are published is delivered, and the next run retires B and is done. Mail verified all along."""
    inventory = rolled['inventory']
    decoy = tempfile.mkdtemp(prefix='decoy-', dir=mail.work)
    for name, data in mail.mx.config_files().items():
        with open(os.path.join(decoy, name), 'wb') as handle:
            handle.write(data)
    inventory.set('b', 'c', postfix_config_dir=decoy, postfix_check_command='true', postfix_reload_command='true')
    with Traffic(mail, 'decoy') as decoy_traffic:
        wrong = inventory.run()
    message = failure(wrong)
    assert switch_attempts(wrong) == SWITCH_ATTEMPTS, wrong
    assert message.startswith(f'localhost: the MTA was switched to tlsa_rollover_next.cert ({mail.certificate("c")[0]}), '
                              f'but {MX_NAME} does not serve it: '), message
    assert published(dnssec_lab) == sorted([record(mail, 'b'), record(mail, 'c')])
    assert served(mail) == record(mail, 'b')
    mail.run_role(mail.mx_role_vars('c'))
    assert served(mail) == record(mail, 'c')
    switched = mail.submit('switched')
    inventory.set('b', 'c', tlsa_rollover_switch_mta=False)
    with Traffic(mail, 'retire') as retire_traffic:
        retire = inventory.run()
    assert retire.returncode == 0, retire
    assert step_messages(retire)[0].startswith(f'{MX_NAME}: done: '), step_messages(retire)
    assert published(dnssec_lab) == [record(mail, 'c')] and served(mail) == record(mail, 'c')
    assert_all_verified(mail, decoy_traffic.ids + [switched] + retire_traffic.ids + [mail.submit('retired-c')])


def test_inventory_errors_name_the_host_and_the_field_before_any_change(mail, dnssec_lab):
    inventory = RolloverInventory(mail, mail.work, 'b', 'c', tlsa_rollover_mx_hosts=['mx_1.h5.dane.example'],
                                  tlsa_rollover_next={'cert': mail.certificate('c')[0]}, tlsa_rollover_ttl='2')
    before = published(dnssec_lab)
    run = inventory.run()
    assert run.returncode != 0
    message = failure(run)
    assert "localhost: tlsa_rollover_mx_hosts[0] mx_1.h5.dane.example: must be a host name" in message, message
    assert 'localhost: tlsa_rollover_next.key: required' in message, message
    assert 'localhost: tlsa_rollover_ttl 2: must be an integer' in message, message
    assert published(dnssec_lab) == before and inventory.state() is None


def test_a_private_key_given_as_the_certificate_is_refused_and_never_shown(mail, dnssec_lab):
    crt, key = mail.certificate('c')
    inventory = RolloverInventory(mail, mail.work, 'b', 'c', tlsa_rollover_next={'cert': key, 'key': key})
    before = published(dnssec_lab)
    run = inventory.run()
    assert run.returncode != 0
    message = failure(run)
    assert message.startswith(f'localhost: tlsa_rollover_next.cert ({key}): '), message
    assert 'private key' in message, message
    secret = pem(key).decode().splitlines()[1]
    assert secret not in run.output and crt
    assert published(dnssec_lab) == before and inventory.state() is None
