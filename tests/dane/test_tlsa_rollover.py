"""The TLSA rollover of the domain's own MX (issue 12), against real Postfix.

A receiving Postfix MX (``mx.h5.dane.example``, 127.0.5.1) whose inbound
certificate the ``mailsec.mta_sts.postfix`` role manages, and a sending
Postfix that enforces DANE (the same role with ``postfix_dane: true``): mail
to ``h5.dane.example`` is delivered only when a TLSA record at
``_25._tcp.mx.h5.dane.example`` matches the key the MX serves (the lab CA is
not trusted by the sender, so only DANE can verify).  See rollover_lab.py.
"""

import tempfile
import time

import pytest

from tests.dane.rollover_lab import DNS_TTL, MX_NAME, ZONE, MailPair
from tests.postfix.mail_lab import tlsa_3_1_1, unrelated_tlsa

TLSA_NAME = f'_25._tcp.{MX_NAME}.'


def tlsa_line(data, ttl=DNS_TTL):
    return f'{TLSA_NAME} {ttl} TLSA 3 1 1 {data}'


@pytest.fixture(scope='module')
def mail(dnssec_lab, lab_ca):
    work = tempfile.mkdtemp(prefix='mailsec-h5-rollover-')
    pair = MailPair(dnssec_lab, lab_ca, work)
    try:
        yield pair.start('a')
    finally:
        pair.stop()


def pem(path):
    with open(path, 'rb') as handle:
        return handle.read()


def test_harness_defers_when_no_tlsa_record_matches(mail, dnssec_lab):
    """The harness can fail: a 3 1 1 record of another key defers the message, and it is never
    received; the record of the served key A then lets it through, verified."""
    wrong = tlsa_line(unrelated_tlsa())
    dnssec_lab.add_records(ZONE, [wrong])
    try:
        refused = mail.send('harness-mismatch', timeout=30)
        assert refused.status == 'deferred', (refused, mail.log_tail())
        assert refused.reason == 'Server certificate not verified', refused
        assert not refused.received
        right = tlsa_line(tlsa_3_1_1(pem(mail.certificate('a')[0])))
        dnssec_lab.add_records(ZONE, [right])
        dnssec_lab.remove_records(ZONE, [wrong])
        # The sender's smtp process keeps the TLSA answer it had for up to its TTL, as any sender does.
        time.sleep(DNS_TTL + 1)
        delivered = mail.send('harness-match')
        assert delivered.verified, (delivered, mail.log_tail())
    finally:
        dnssec_lab.remove_records(ZONE, [wrong])
