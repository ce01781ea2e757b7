"""check_dane through ansible-playbook (policy_info and the validate lookup) against real servers: Knot signs the
lab zones and a validating unbound answers (``dnssec_lab``), one Postfix answers as every MX host (lab CA
certificates, 127.0.3.x:25), and nginx serves an enforce policy (127.0.3.100:443).

Names are this file's own: domains and MX hosts under h3.dane.example (signed), h3.plain.example (unsigned) and
h3.bogus.example (signed, with a wrong trust anchor: unbound answers SERVFAIL for it).
"""

import os
import re

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import load_material, tlsa_value
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import encode
from tests.integration.playbook import run_playbook
from tests.lab.mail import MailLab
from tests.lab.web import PolicyWeb

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIGNED, PLAIN, BOGUS = 'dane.example.', 'plain.example.', 'bogus.example.'
WEB = '127.0.3.100'
NOWHERE = '127.0.3.99'    # nothing listens there: the MX that cannot be probed

# name: (zone, listener address or None, TLSA: 'served' for the record of the certificate served, or data)
MX_HOSTS = {
    'mx1.h3.dane.example': (SIGNED, '127.0.3.1', ['served']),
    'mx.renewed.h3.dane.example': (SIGNED, '127.0.3.2', ['served']),
    'mx.h3.plain.example': (PLAIN, '127.0.3.3', ['served']),
    'mx.notlsa.h3.dane.example': (SIGNED, '127.0.3.4', []),
    'mx.unusable.h3.dane.example': (SIGNED, '127.0.3.5', ['1 1 1 ' + 'ab' * 32]),
    'mx.h3.bogus.example': (BOGUS, '127.0.3.6', ['served']),
    'mx.down.h3.dane.example': (SIGNED, None, ['3 1 1 ' + 'cd' * 32]),
}
# domain (all in the signed zone): its MX hosts, and the mx patterns of the enforce policy served for it, if any
DOMAINS = {
    'match.h3.dane.example': (['mx1.h3.dane.example'], None),
    'renewed.h3.dane.example': (['mx.renewed.h3.dane.example'], None),
    'plain.h3.dane.example': (['mx.h3.plain.example'], None),
    'notlsa.h3.dane.example': (['mx.notlsa.h3.dane.example'], None),
    'unusable.h3.dane.example': (['mx.unusable.h3.dane.example'], None),
    'bogus.h3.dane.example': (['mx.h3.bogus.example'], None),
    'down.h3.dane.example': (['mx.down.h3.dane.example'], None),
    'partial.h3.dane.example': (['mx1.h3.dane.example', 'mx.notlsa.h3.dane.example'], None),
    'sts.h3.dane.example': (['mx1.h3.dane.example', 'mx.notlsa.h3.dane.example'], ['mx.notlsa.h3.dane.example']),
}


def tlsa_record(pem):
    return encode('TLSA', tlsa_value(load_material(pem, 'pem')))


def tlsa_lines(host, certificate, records):
    return ['_25._tcp.%s. 60 IN TLSA %s' % (host, tlsa_record(certificate) if data == 'served' else data) for data in records]


class H3Lab(object):
    """The MX hosts, their DNS (MX, A, TLSA) and the one policy host of this file."""

    def __init__(self, dnssec_lab, ca, workdir):
        self.dns, self.ca = dnssec_lab, ca
        self.ca_path = ca.write_bundle(os.path.join(workdir, 'ca.pem'))
        self.mail = MailLab(os.path.join(workdir, 'mail'), ca)
        self.web = PolicyWeb(os.path.join(workdir, 'web'), address=WEB, ca=ca)

    def start(self):
        for host, (_zone, address, _records) in MX_HOSTS.items():
            if address:
                self.mail.add_mx(address, name=host)
        for domain, (_hosts, patterns) in DOMAINS.items():
            if patterns:
                self.web.serve('mta-sts.' + domain, 'version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n'
                               % '\r\nmx: '.join(patterns))
        self.mail.start()
        self.web.apply()
        zones = {}
        for host, (zone, address, records) in MX_HOSTS.items():
            certificate = self.mail.certificate(address) if address else None
            zones.setdefault(zone, []).extend(['%s. 60 IN A %s' % (host, address or NOWHERE)] + tlsa_lines(host, certificate, records))
        for domain, (hosts, patterns) in DOMAINS.items():
            lines = zones.setdefault(SIGNED, [])
            lines.extend('%s. 60 IN MX %d %s.' % (domain, 10 * (index + 1), host) for index, host in enumerate(hosts))
            if patterns:
                lines += ['_mta-sts.%s. 60 IN TXT "v=STSv1; id=h3dane1;"' % domain, 'mta-sts.%s. 60 IN A %s' % (domain, WEB)]
        for zone, lines in zones.items():
            self.dns.add_records(zone, lines)
        return self

    def renew_on_a_new_key(self, host):
        """The MX serves a certificate on a new key (the listener added again is issued a new pair); its TLSA stays."""
        address = MX_HOSTS[host][1]
        self.mail.add_mx(address, name=host)
        self.mail.restart()

    def stop(self):
        self.web.stop()
        self.mail.stop()

    def options(self, **extra):
        """The options of every run: the lab's resolver, its CA, and a DNSSEC probe it can answer."""
        return dict({'nameservers': [self.dns.resolver_address], 'ca_path': self.ca_path, 'timeout': 5, 'check_dane': True,
                     'dane_dnssec_probe': 'soa:' + SIGNED, 'dane_bogus_name': self.dns.bogus_name}, **extra)


@pytest.fixture(scope='module')
def lab(dnssec_lab, lab_ca, tmp_path_factory):
    h3 = H3Lab(dnssec_lab, lab_ca, str(tmp_path_factory.mktemp('h3-dane')))
    try:
        yield h3.start()
    finally:
        h3.stop()


def results_by_domain(results):
    return dict((result['domain'], result) for result in results)


@pytest.fixture(scope='module')
def real_run(lab, tmp_path_factory):
    """policy_info over every domain, and the lookup over two of them, in one ansible-playbook run."""
    run = run_playbook([
        {'mailsec.mta_sts.policy_info': dict(lab.options(), domains=sorted(DOMAINS))},
        {'set_fact': {'from_lookup': "{{ query('mailsec.mta_sts.validate', 'match.h3.dane.example', 'renewed.h3.dane.example', "
                                     "**options) }}"}, 'vars': {'options': lab.options()}},
    ], workdir=str(tmp_path_factory.mktemp('h3-run')))
    assert run.returncode == 0, run
    return run


@pytest.fixture(scope='module')
def results(real_run):
    return results_by_domain(real_run.results[0]['results'])


@pytest.fixture(scope='module')
def knot_run(lab, tmp_path_factory):
    """The same check with Knot itself as the nameserver: it answers signed data but validates nothing."""
    knot = '%s:%d' % (lab.dns.knot.address, lab.dns.knot.port)
    run = run_playbook([{'mailsec.mta_sts.policy_info': dict(lab.options(nameservers=[knot]), domains=['match.h3.dane.example'])}],
                       workdir=str(tmp_path_factory.mktemp('h3-knot')))
    assert run.returncode == 0, run
    return run


@pytest.fixture(scope='module')
def renewed_run(lab, real_run, tmp_path_factory):
    """After the main run: the renewed MX now serves a certificate on a new key, and its TLSA names the old one."""
    assert real_run
    lab.renew_on_a_new_key('mx.renewed.h3.dane.example')
    run = run_playbook([{'mailsec.mta_sts.policy_info': dict(lab.options(), domains=['renewed.h3.dane.example'])}],
                       workdir=str(tmp_path_factory.mktemp('h3-renewed')))
    assert run.returncode == 0, run
    return run


def dane_codes(result, severity=None):
    return sorted(set(f['code'] for f in result['findings'] if f['code'].startswith('dane-')
                      and (severity is None or f['severity'] == severity)))


def messages(result, code):
    return [f['message'] for f in result['findings'] if f['code'] == code]


def mx_entry(result, host):
    return [entry for entry in result['mx'] if entry['host'] == host][0]


def test_a_3_1_1_record_of_the_served_key_matches(results, real_run, lab):
    result = results['match.h3.dane.example']
    assert dane_codes(result) == []
    dane = mx_entry(result, 'mx1.h3.dane.example')['dane']
    served = tlsa_record(lab.mail.certificate('127.0.3.1'))
    assert dane['status'] == 'ok' and dane['records'] == [served] and dane['matched'] == [served]
    assert dane['authenticated'] is True and dane['signed'] is True
    # The lookup gives what the module gives.
    from_lookup = results_by_domain(real_run.results[1]['ansible_facts']['from_lookup'])
    assert from_lookup['match.h3.dane.example'] == result


def test_a_certificate_on_a_new_key_is_reported_as_an_error(results, renewed_run, lab):
    before = mx_entry(results['renewed.h3.dane.example'], 'mx.renewed.h3.dane.example')['dane']
    assert dane_codes(results['renewed.h3.dane.example']) == [] and before['matched'] == before['records']
    after = renewed_run.results[0]['results'][0]
    assert dane_codes(after, 'error') == ['dane-no-match']
    [text] = messages(after, 'dane-no-match')
    assert before['records'][0] in text and tlsa_record(lab.mail.certificate('127.0.3.2')) in text
    assert 'DANE senders defer mail to it' in text
    assert mx_entry(after, 'mx.renewed.h3.dane.example')['dane']['matched'] == []


def test_tlsa_in_an_unsigned_zone_protects_nothing(results):
    result = results['plain.h3.dane.example']
    assert dane_codes(result) == ['dane-unsigned']
    dane = mx_entry(result, 'mx.h3.plain.example')['dane']
    assert (dane['authenticated'], dane['signed'], len(dane['matched'])) == (False, False, 1)


def test_a_bogus_answer_is_a_failed_lookup(results):
    result = results['bogus.h3.dane.example']
    assert dane_codes(result, 'error') == ['dane-lookup-failed']
    assert 'SERVFAIL' in messages(result, 'dane-lookup-failed')[0]


def test_a_resolver_that_does_not_validate_is_named(knot_run):
    [result] = knot_run.results[0]['results']
    assert dane_codes(result) == ['dane-resolver-not-validating']
    text = messages(result, 'dane-resolver-not-validating')[0]
    assert 'no AD bit' in text and 'soa:dane.example.' in text
    dane = mx_entry(result, 'mx1.h3.dane.example')['dane']
    assert (dane['authenticated'], dane['signed']) == (False, True)


def test_no_tlsa_is_info(results):
    result = results['notlsa.h3.dane.example']
    assert [(f['code'], f['severity']) for f in result['findings'] if f['code'].startswith('dane-')] == [('dane-tlsa-missing', 'info')]


def test_unusable_records_and_an_mx_that_cannot_be_probed(results):
    assert dane_codes(results['unusable.h3.dane.example']) == ['dane-unusable']
    down = results['down.h3.dane.example']
    assert dane_codes(down, 'warning') == ['dane-probe-failed']
    assert 'Connection refused' in messages(down, 'dane-probe-failed')[0]


def test_dane_on_some_mx_hosts_and_against_the_enforce_policy(results):
    assert dane_codes(results['partial.h3.dane.example'], 'warning') == ['dane-partial']
    sts = results['sts.h3.dane.example']
    assert sts['valid'] is True and sts['mode'] == 'enforce'
    assert dane_codes(sts, 'warning') == ['dane-sts-mismatch']
    # Both ways: the MX with TLSA that the policy leaves out, and the one the policy covers without TLSA.
    assert messages(sts, 'dane-sts-mismatch') == [
        'MX mx1.h3.dane.example has usable TLSA records but matches no mx pattern of the enforce policy: '
        'DANE senders deliver to it, MTA-STS senders refuse it',
        'MX mx.notlsa.h3.dane.example is covered by the enforce policy but has no usable TLSA records, while '
        'mx1.h3.dane.example has: DANE senders, which prefer DANE to MTA-STS (RFC 8461 §2), deliver to it with '
        'unauthenticated TLS']


def test_every_documented_dane_code_is_reported_by_a_real_run(real_run, knot_run, renewed_run):
    """The dane-* half of tests/integration/test_validate.py's check: each code of docs/findings.md comes out of a run."""
    with open(os.path.join(REPO, 'docs', 'findings.md')) as doc:
        documented = set(code for code in re.findall(r'^### `([a-z0-9-]+)`$', doc.read(), re.MULTILINE) if code.startswith('dane-'))
    reported = set()
    for run in (real_run, knot_run, renewed_run):
        for result in run.results[0]['results']:
            reported.update(f['code'] for f in result['findings'] if f['code'].startswith('dane-'))
    assert len(documented) == 9
    assert sorted(documented - reported) == [] and sorted(reported - documented) == []
