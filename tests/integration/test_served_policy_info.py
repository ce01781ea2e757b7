"""served_policy_info through ansible-playbook, against real Knot and nginx on loopback.

``multi.example``'s policy host has two addresses, each its own nginx: the first serves the new policy,
the second still the old one. A lab resolver (Knot on a random port) has a stale view of the zone,
with only the first address; the zone's own server (a second Knot on port 53 of another loopback
address, named by the NS glue) has both. ``down.example``'s policy host resolves to an address
where nothing listens.
"""

import json
import os
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id
from tests.integration.playbook import run_playbook
from tests.integration.validation_lab import policy_text
from tests.lab.knot import KnotLab
from tests.lab.pki import LabCA
from tests.lab.web import PolicyWeb, free_loopback_addresses

NEW = policy_text('multi.example', mode='enforce', mx=['mx1.multi.example', 'mx2.multi.example'])
OLD = policy_text('multi.example', mode='testing')
HOST = 'mta-sts.multi.example'
ZONES = ['multi.example', 'down.example']


class Lab:
    def __init__(self, workdir):
        self.new_address, self.old_address, self.dead_address = free_loopback_addresses(3, port=443)
        [auth_address] = free_loopback_addresses(1, port=53, exclude=(self.new_address, self.old_address, self.dead_address))
        self.ca = LabCA()
        self.ca_path = self.ca.write_bundle(os.path.join(workdir, 'ca.pem'))
        self.resolver = KnotLab(os.path.join(workdir, 'resolver'), ZONES)
        self.auth = KnotLab(os.path.join(workdir, 'auth'), ZONES, address=auth_address, port=53)
        self.new_web = PolicyWeb(os.path.join(workdir, 'new'), self.new_address, ca=self.ca)
        self.old_web = PolicyWeb(os.path.join(workdir, 'old'), self.old_address, ca=self.ca)

    @property
    def nameservers(self):
        return ['%s:%d' % (self.resolver.address, self.resolver.port)]

    def start(self):
        self.resolver.start()
        self.auth.start()
        for knot in (self.resolver, self.auth):
            for zone in ZONES:
                # The NS glue sends an authoritative lookup to the second Knot, on port 53.
                knot.remove_records(zone, ['ns1.%s. 300 IN A 127.0.0.1' % zone])
                knot.add_records(zone, ['ns1.%s. 300 IN A %s' % (zone, self.auth.address)])
            knot.add_records('down.example', ['mta-sts.down.example. 300 IN A %s' % self.dead_address])
        self.resolver.add_records('multi.example', ['%s. 300 IN A %s' % (HOST, self.new_address)])
        self.auth.add_records('multi.example', ['%s. 300 IN A %s' % (HOST, address) for address in (self.new_address, self.old_address)])
        self.new_web.serve(HOST, NEW).apply()
        self.old_web.serve(HOST, OLD).apply()
        return self

    def stop(self):
        for server in (self.old_web, self.new_web, self.auth, self.resolver):
            server.stop()


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    lab = Lab(str(tmp_path_factory.mktemp('served')))
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture
def old_bytes(lab):
    """The second address serves the old policy again (a test may have fixed it)."""
    lab.old_web.serve(HOST, OLD).apply()
    return lab


def task(lab, domains, **options):
    return {'mailsec.mta_sts.served_policy_info': dict(
        {'domains': domains, 'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'timeout': 3}, **options)}


def by_address(result):
    return dict((entry['address'], entry) for entry in result['addresses'])


def test_an_address_with_the_old_policy_keeps_the_domain_unserved(old_bytes):
    lab = old_bytes
    run = run_playbook([
        task(lab, [{'domain': 'multi.example', 'policy': NEW}], authoritative=True),
        # The stale resolver knows only the first address: without authoritative the old bytes go unseen.
        task(lab, [{'domain': 'multi.example', 'policy': NEW}]),
    ])
    assert run.returncode == 0, run
    authoritative, cached = run.results
    assert authoritative['changed'] is False and authoritative['all_served'] is False
    [result] = authoritative['results']
    assert result['served'] is False and result['expected_id'] == policy_id(NEW) and result['attempts'] == 1
    entries = by_address(result)
    assert sorted(entries) == sorted([lab.new_address, lab.old_address])
    assert (entries[lab.new_address]['matches'], entries[lab.new_address]['id'], entries[lab.new_address]['status']) == (
        True, policy_id(NEW), 200)
    old = entries[lab.old_address]
    assert (old['matches'], old['id'], old['status'], old['error']) == (False, policy_id(OLD), 200, None)
    assert result['reason'] == '%s at %s serves the policy with id %s, not %s' % (HOST, lab.old_address, policy_id(OLD), policy_id(NEW))
    assert cached['all_served'] is True
    assert [entry['address'] for entry in cached['results'][0]['addresses']] == [lab.new_address]


def test_an_address_fixed_during_the_wait_is_served(old_bytes):
    lab = old_bytes
    fixer = threading.Timer(3.0, lambda: lab.old_web.serve(HOST, NEW).apply())
    began = time.monotonic()
    fixer.start()
    try:
        run = run_playbook([task(lab, [{'domain': 'multi.example', 'policy': NEW}], authoritative=True, wait_timeout=60, interval=0.5)])
    finally:
        fixer.join()
    seconds = time.monotonic() - began
    assert run.returncode == 0, run
    [result] = run.result['results']
    assert run.result['all_served'] is True and result['served'] is True and result['reason'] is None
    assert all(entry['matches'] and entry['id'] == policy_id(NEW) for entry in result['addresses'])
    assert len(result['addresses']) == 2
    # Tried before the fix (one attempt would mean the first one already saw it fixed: ansible-playbook's start-up
    # on a loaded machine can take most of the 3 s, so no more is assumed), and ended soon after it, not at the timeout.
    assert result['attempts'] >= 2
    assert seconds < 30


def test_the_wait_is_bounded_and_names_the_address_still_differing(old_bytes):
    lab = old_bytes
    began = time.monotonic()
    run = run_playbook([task(lab, [{'domain': 'multi.example', 'policy': NEW}], authoritative=True, wait_timeout=3, interval=1)])
    seconds = time.monotonic() - began
    assert run.returncode == 0, run
    [result] = run.result['results']
    assert result['served'] is False and 4 <= result['attempts'] <= 5
    assert lab.old_address in result['reason'] and policy_id(OLD) in result['reason']
    assert lab.new_address not in result['reason']
    # ansible-playbook itself takes a few seconds; the module gives up after 3 s plus one try.
    assert seconds < 3 + 3 + 15


def test_unreachable_address_and_given_addresses(lab):
    run = run_playbook([task(lab, [
        {'domain': 'down.example', 'policy': NEW, 'rua': ['mailto:x@down.example']},
        # Given addresses replace the lookup: only the first nginx is asked.
        {'domain': 'multi.example', 'policy': NEW, 'addresses': [lab.new_address], 'host_record': {'addresses': ['192.0.2.1']}},
    ], authoritative=True)])
    assert run.returncode == 0, run
    down, multi = run.result['results']
    assert run.result['all_served'] is False
    assert down['served'] is False
    [entry] = down['addresses']
    assert (entry['address'], entry['status'], entry['id'], entry['matches']) == (lab.dead_address, None, None, False)
    assert entry['error'].startswith('policy-fetch-failed: connect: ')
    assert down['reason'].startswith('mta-sts.down.example at %s: policy-fetch-failed: connect: ' % lab.dead_address)
    assert 'refused' in down['reason'].lower()
    assert multi['served'] is True and [entry['address'] for entry in multi['addresses']] == [lab.new_address]


def test_check_mode_runs_the_same_read_only_verification(old_bytes):
    lab = old_bytes
    run = run_playbook([task(lab, [{'domain': 'multi.example', 'policy': {
        'mode': 'enforce', 'mx': ['mx1.multi.example', 'mx2.multi.example'], 'max_age': 604800}}], authoritative=True)], check=True)
    assert run.returncode == 0, run
    [result] = run.result['results']
    # The dict renders to the bytes the first nginx serves (policy_text above is canonical), not the second's.
    assert run.result['changed'] is False and result['expected_id'] == policy_id(NEW)
    assert dict((entry['address'], entry['matches']) for entry in result['addresses']) == {lab.new_address: True, lab.old_address: False}


@pytest.mark.parametrize('domains, options, message', [
    ([{'domain': 'multi.example', 'policy': 'version: STSv1\nmode: enforce\n'}], {},
     "domains[0].policy"),
    ([{'domain': 'multi.example'}], {}, 'domains[0].policy None: give the policy that must be served'),
    ([{'domain': 'multi.example', 'policy': NEW}, {'domain': 'MULTI.example.', 'policy': NEW}], {},
     "domains[1].domain 'MULTI.example.': is multi.example again, already listed as domains[0]"),
    ([{'domain': 'multi.example', 'policy': NEW, 'addresses': ['192.0.2.300']}], {},
     "domains[0].addresses[0] '192.0.2.300': must be an IPv4 or IPv6 address"),
    ([{'domain': 'multi.example', 'policy': NEW}], {'wait_timeout': -1}, 'wait_timeout -1.0: must be 0 (one try) to 3600 seconds'),
    ([{'domain': 'multi.example', 'policy': NEW}], {'interval': 0}, 'interval 0.0: must be more than 0'),
])
def test_bad_input_fails_naming_the_field_before_any_fetch(lab, domains, options, message):
    before = len(lab.new_web.requests())
    run = run_playbook([task(lab, domains, **options)])
    assert run.returncode != 0 and run.result['_status'] == 'failed'
    assert message in run.result['msg'], run.result['msg']
    time.sleep(0.2)
    assert len(lab.new_web.requests()) == before


def test_drift_reports_through_ansible_playbook(lab, tmp_path):
    """The drift check as a playbook runs it: one lookup call, the three reports written, the failures listed."""
    lab.resolver.add_records('multi.example', ['_mta-sts.multi.example. 300 IN TXT "v=STSv1; id=%s;"' % policy_id(NEW),
                                               '_smtp._tls.multi.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@multi.example"'])
    items = [{'domain': 'multi.example', 'policy': NEW, 'rua': ['mailto:tlsrpt@multi.example']},
             {'domain': 'down.example', 'policy': NEW, 'rua': ['mailto:tlsrpt@down.example']}]
    report_dir = str(tmp_path)
    run = run_playbook([
        {'ansible.builtin.set_fact': {'drift': "{{ query('mailsec.mta_sts.validate', *items, nameservers=nameservers, "
                                               "ca_path=ca_path, timeout=3) }}"}},
    ] + [
        {'ansible.builtin.copy': {'content': "{{ drift | mailsec.mta_sts.drift_report('%s') }}" % output_format,
                                  'dest': os.path.join(report_dir, name), 'mode': '0644'}}
        for output_format, name in (('json', 'drift.json'), ('junit', 'drift.junit.xml'), ('markdown', 'drift.md'))
    ] + [
        {'ansible.builtin.set_fact': {'failures': '{{ drift | mailsec.mta_sts.drift_failures }}',
                                      # No certificate of the lab has 100 days left.
                                      'strict': '{{ drift | mailsec.mta_sts.drift_failures(expiry_days=100) }}'}},
    ], play_vars={'items': items, 'nameservers': lab.nameservers, 'ca_path': lab.ca_path}, workdir=str(tmp_path))
    assert run.returncode == 0, run
    with open(os.path.join(report_dir, 'drift.json')) as handle:
        report = json.load(handle)
    multi, down = report['domains']
    assert multi['passed'] is True and multi['in_sync'] is True
    # The policy host's certificate, as nginx presented it: 90 days from the lab CA.
    assert multi['certificates'][0]['host'] == HOST and multi['certificate_days_left'] in (89, 90)
    assert down['passed'] is False and [check['check'] for check in down['checks'] if not check['passed']] == ['record', 'policy', 'in_sync']
    root = ET.parse(os.path.join(report_dir, 'drift.junit.xml')).getroot()
    assert len(root.findall('testsuite/testcase')) == 10 and root.get('failures') == '3'
    with open(os.path.join(report_dir, 'drift.md')) as handle:
        markdown = handle.read()
    assert '| multi.example | pass | enforce | yes | ' in markdown and '| down.example | **fail** | - | **no**: ' in markdown
    facts = run.results[-1]['ansible_facts']
    assert list(dict.fromkeys(sentence.split(':')[0] for sentence in facts['failures'])) == [
        'down.example [record]', 'down.example [policy]', 'down.example [in_sync]']
    assert 'multi.example [certificates]: the certificate of %s expires at ' % HOST in ' '.join(facts['strict'])
