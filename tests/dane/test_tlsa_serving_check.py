"""tlsa_record's serving check through ansible-playbook, live: a Postfix MX (127.0.1.11:25, lab CA certificate on
key A) found through the lab's validating resolver, and its TLSA records in the signed zone dane.example, written
through the rfc2136 provider to the session's Knot and read back from Knot directly.

A change that drops the record of the key the MX serves is refused with nothing written; dropping the other key's
record goes through; an MX that cannot be probed refuses the removal, naming the override. Names are this file's own,
under h1.dane.example.
"""

import hashlib
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.playbook import run_playbook
from tests.lab.mail import MailLab

ZONE = 'dane.example.'
MX_ADDRESS = '127.0.1.11'
MX = 'mx1.h1.dane.example'
# A name in the signed zone with TLSA records but no address: the probe cannot even connect.
GONE = 'mx-gone.h1.dane.example'


def spki_record(pem):
    """3 1 1 of the first certificate, computed here with cryptography alone (not the collection's code)."""
    cert = x509.load_pem_x509_certificates(pem)[0]
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return '3 1 1 ' + hashlib.sha256(spki).hexdigest()


@pytest.fixture(scope='module')
def lab(dnssec_lab, lab_ca, tmp_path_factory):
    mail = MailLab(os.path.join(str(tmp_path_factory.mktemp('h1-serving')), 'mail'), lab_ca, accept=True)
    mail.add_mx(MX_ADDRESS, name=MX)
    mail.start()
    try:
        dnssec_lab.add_records(ZONE, ['%s. 300 IN A %s' % (MX, MX_ADDRESS)])
        mail.next_pair = lab_ca.issue([MX])
        yield mail
    finally:
        mail.stop()


def published(dnssec_lab, host):
    return sorted(dnssec_lab.knot.query('_25._tcp.%s.' % host, 'TLSA'))


def seed(dnssec_lab, host, records):
    dnssec_lab.add_records(ZONE, ['_25._tcp.%s. 300 IN TLSA %s' % (host, record) for record in records])


def tlsa_task(dnssec_lab, **options):
    knot = dnssec_lab.knot
    args = dict(provider='rfc2136', server=knot.address, port=knot.port,
                key_name=knot.key_name, key_secret=knot.key_secret, zone='dane.example', ttl=300)
    args.update(options)
    return {'name': 'under test', 'mailsec.mta_sts.tlsa_record': args}


def test_dropping_the_served_keys_record_is_refused_and_the_other_keys_allowed(lab, dnssec_lab, tmp_path):
    served, following = spki_record(lab.certificate(MX_ADDRESS)), spki_record(lab.next_pair[0])
    seed(dnssec_lab, MX, [served, following])
    before = published(dnssec_lab, MX)
    assert len(before) == 2

    # Switching the records to the next key while the MX still serves the current one: refused, also in check mode.
    for check in (True, False):
        refused = run_playbook([tlsa_task(dnssec_lab, host=MX, current=lab.next_pair[0].decode())],
                               check=check, workdir=str(tmp_path))
        assert refused.returncode != 0, refused
        assert refused.result['conflict'] is True
        assert 'nothing was written' in refused.result['msg'] and 'which this change removes' in refused.result['msg']
        serving = refused.result['results'][0]['serving']
        assert serving == {'matched': [served], 'served_spki_sha256': served.split()[3], 'error': None}
        assert published(dnssec_lab, MX) == before

    # Removing everything is refused the same way.
    gone = run_playbook([tlsa_task(dnssec_lab, host=MX, state='absent')], workdir=str(tmp_path))
    assert gone.returncode != 0 and 'which this change removes' in gone.result['msg'], gone
    assert published(dnssec_lab, MX) == before

    # Dropping the record of the key the MX does not serve goes through, and says what matched.
    kept = run_playbook([tlsa_task(dnssec_lab, host=MX, current=lab.certificate(MX_ADDRESS).decode())],
                        workdir=str(tmp_path))
    assert kept.returncode == 0, kept
    result = kept.result['results'][0]
    assert result['changed'] is True and result['after'] == [served]
    assert result['serving'] == {'matched': [served], 'served_spki_sha256': served.split()[3], 'error': None}
    assert published(dnssec_lab, MX) == [served]


def test_an_mx_that_cannot_be_probed_refuses_the_removal_naming_the_override(lab, dnssec_lab, tmp_path):
    seed(dnssec_lab, GONE, [spki_record(lab.certificate(MX_ADDRESS)), spki_record(lab.next_pair[0])])
    before = published(dnssec_lab, GONE)
    switch = dict(host=GONE, current=lab.next_pair[0].decode())
    refused = run_playbook([tlsa_task(dnssec_lab, serving_check={'timeout': 5}, **switch)], workdir=str(tmp_path))
    assert refused.returncode != 0, refused
    assert 'the MX could not be probed' in refused.result['msg']
    assert 'Set serving_check.enabled=false to remove anyway' in refused.result['msg']
    assert refused.result['results'][0]['serving']['error']
    assert published(dnssec_lab, GONE) == before

    overridden = run_playbook([tlsa_task(dnssec_lab, serving_check={'enabled': False}, **switch)],
                              workdir=str(tmp_path))
    assert overridden.returncode == 0, overridden
    assert published(dnssec_lab, GONE) == [spki_record(lab.next_pair[0])]
    assert any('serving_check.enabled is false' in text for text in overridden.result['warnings'])


def test_records_that_match_nothing_served_may_go_with_a_warning(lab, dnssec_lab, tmp_path):
    host = 'mx-stale.h1.dane.example'
    stale, following = '3 1 1 ' + 'ab' * 32, spki_record(lab.next_pair[0])
    seed(dnssec_lab, host, [stale, following])
    # No address in DNS for this name: serving_check.address points the probe at the MX.
    run = run_playbook([tlsa_task(dnssec_lab, host=host, records=[following],
                                  serving_check={'address': MX_ADDRESS})], workdir=str(tmp_path))
    assert run.returncode == 0, run
    served = spki_record(lab.certificate(MX_ADDRESS))
    assert run.result['results'][0]['serving'] == {'matched': [], 'served_spki_sha256': served.split()[3], 'error': None}
    assert any('no TLSA record here matches' in text for text in run.result['warnings'])
    assert published(dnssec_lab, host) == [following]
