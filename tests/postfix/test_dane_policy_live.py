"""The DANE socketmap and the resolver probe against the real DNSSEC lab (Knot signs, unbound validates).

The script runs as Postfix's spawn(8) runs it: one process per TCP connection,
with the connection as its stdin, stdout and stderr. It is asked by Postfix's
own socketmap client (``postmap -q``), so the wire format is Postfix's, and
it resolves through the lab /etc/resolv.conf the session fixture bound.
Full deliveries with DANE are in test_deliveries.py.
"""

import os
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnssec import probe_resolver

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'roles', 'postfix', 'files', 'mailsec_dane_policy.py')
TLSA_EE = '3 1 1 ' + '5e' * 32
SIGNED = 'sts.example.'
UNSIGNED = 'plain.example.'


class Spawner(object):
    """What spawn(8) does: accept on a loopback port, run the script per connection on the socket."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(8)
        self.map = 'socketmap:inet:127.0.0.1:%d:dane' % self.listener.getsockname()[1]
        self.processes = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _peer = self.listener.accept()
            except OSError:
                return
            with conn:
                self.processes.append(subprocess.Popen([sys.executable, SCRIPT], stdin=conn, stdout=conn,
                                                       stderr=conn))

    def close(self):
        self.listener.close()
        for process in self.processes:
            process.wait(timeout=15)


@pytest.fixture(scope='module')
def spawner():
    spawn = Spawner()
    yield spawn
    spawn.close()


def postmap(spawner, *keys):
    """``postmap -q - MAP`` with the keys on stdin: Postfix's client, one connection for all keys."""
    return subprocess.run(['postmap', '-q', '-', spawner.map], input=''.join(key + '\n' for key in keys),
                          capture_output=True, text=True, timeout=60, check=False)


def add_domain(dnssec_lab, zone, domain, hosts):
    """``domain`` with an MX per host in ``hosts`` ({name: [TLSA data, ...]}); each host gets an A record."""
    lines = []
    for preference, (host, tlsa) in enumerate(sorted(hosts.items())):
        lines.append('%s. 60 IN MX %d %s.' % (domain, 10 * (preference + 1), host))
        lines.append('%s. 60 IN A 127.0.0.1' % host)
        lines.extend('_25._tcp.%s. 60 IN TLSA %s' % (host, data) for data in tlsa)
    dnssec_lab.add_records(zone, lines)


@pytest.fixture(scope='module')
def domains(dnssec_lab):
    """Destinations for each case, under names of this module's own (the lab is shared by the session)."""
    tag = 'h3-%s' % uuid.uuid4().hex[:8]
    names = {case: '%s.%s.%s' % (case, tag, zone.rstrip('.')) for case, zone in (
        ('full', SIGNED), ('partial', SIGNED), ('pkix', SIGNED), ('implicit', SIGNED), ('unsigned', UNSIGNED))}
    full, partial, pkix = names['full'], names['partial'], names['pkix']
    add_domain(dnssec_lab, SIGNED, full, {'mx1.' + full: [TLSA_EE], 'mx2.' + full: ['2 0 1 ' + 'ab' * 32]})
    add_domain(dnssec_lab, SIGNED, partial, {'mx1.' + partial: [TLSA_EE], 'mx2.' + partial: []})
    add_domain(dnssec_lab, SIGNED, pkix, {'mx1.' + pkix: ['0 0 1 ' + 'ab' * 32, '1 1 1 ' + 'cd' * 32]})
    add_domain(dnssec_lab, UNSIGNED, names['unsigned'], {'mx1.' + names['unsigned']: [TLSA_EE]})
    dnssec_lab.add_records(SIGNED, ['%s. 60 IN A 127.0.0.1' % names['implicit'],
                                    '_25._tcp.%s. 60 IN TLSA %s' % (names['implicit'], TLSA_EE)])
    return names


def test_every_mx_with_usable_tlsa_is_dane_only(spawner, domains):
    result = postmap(spawner, domains['full'])
    assert (result.returncode, result.stdout, result.stderr) == (0, '%s\tdane-only\n' % domains['full'], '')


def test_a_domain_without_mx_is_its_own_mx_host(spawner, domains):
    result = postmap(spawner, domains['implicit'])
    assert (result.returncode, result.stdout) == (0, '%s\tdane-only\n' % domains['implicit'])


def explain(domain):
    """The script's own account of its decision (``--query``), through the lab resolv.conf."""
    return subprocess.run([sys.executable, SCRIPT, '--query', domain], capture_output=True, text=True, timeout=30,
                          check=True).stdout


@pytest.mark.parametrize('case, why', [
    ('partial', 'mx2.{domain} has no TLSA records (nxdomain)'),
    ('pkix', 'mx1.{domain} has no usable TLSA record (usage 2 or 3)'),
    ('unsigned', '{domain} MX is not DNSSEC-secure'),
])
def test_not_fully_dane_is_notfound(spawner, domains, case, why):
    """One MX without TLSA; only PKIX-TA/EE usages (0, 1); TLSA in an unsigned zone: the next map decides."""
    result = postmap(spawner, domains[case])
    assert (result.returncode, result.stdout, result.stderr) == (1, '', '')
    assert explain(domains[case]) == 'NOTFOUND\t%s\n' % why.format(domain=domains[case])


def test_a_broken_signature_is_temp_so_postfix_defers(spawner, dnssec_lab):
    result = postmap(spawner, dnssec_lab.bogus_name.rstrip('.'))
    assert result.returncode != 0 and result.stdout == ''
    # Postfix's client reads TEMP as a temporary error: the smtp client defers the message.
    assert ('socketmap server temporary error: %s MX lookup failed: 127.0.0.1:53 SERVFAIL'
            % dnssec_lab.bogus_name.rstrip('.')) in result.stderr


def test_several_keys_on_one_connection_in_postfix_wire_format(spawner, domains):
    before = len(spawner.processes)
    result = postmap(spawner, domains['full'], domains['partial'], '[%s]:25' % domains['full'], domains['full'] + '.',
                     '.' + domains['full'], domains['implicit'])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['%s\tdane-only' % domains['full'], '%s.\tdane-only' % domains['full'],
                                          '%s\tdane-only' % domains['implicit']]
    assert len(spawner.processes) == before + 1   # one spawned process answered them all


def test_probe_passes_on_the_validating_resolver_of_resolv_conf(dnssec_lab):
    assert probe_resolver('soa:' + dnssec_lab.signed_probe, dnssec_lab.bogus_name, timeout=5) == []


def test_probe_fails_on_an_authoritative_server_that_never_sets_ad(dnssec_lab):
    knot = '%s:%d' % (dnssec_lab.knot.address, dnssec_lab.knot.port)
    problems = probe_resolver('soa:' + dnssec_lab.signed_probe, dnssec_lab.bogus_name, [knot], timeout=5)
    assert problems == [
        'the resolver at %s does not validate DNSSEC: no AD bit on its answer to soa:%s (Postfix would treat every '
        'answer as insecure and never use TLSA records)' % (knot, dnssec_lab.signed_probe),
        'the resolver at %s answers a name with a broken signature: %s gave NOERROR instead of SERVFAIL, so forged '
        'answers would be accepted' % (knot, dnssec_lab.bogus_name)]
