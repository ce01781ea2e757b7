"""DANE judged from facts (pure): each MX host's TLSA lookup matched against the chain it served, the DNSSEC
status of the answer, and how DANE and the MTA-STS policy agree across a domain's MX hosts."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import evaluate, judge_dane
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import FINDINGS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import encode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import load_material, tlsa_value
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate
from tests.lab.pki import LabCA, self_signed
from tests.unit.plugins.module_utils.test_checks import NOW, fetch, make_facts, mx, policy_body, probe, sts

CA = LabCA()
MX1, MX2 = 'mx1.example.com', 'a.mx.example.com'


def chain_of(pem):
    return [cert.public_bytes(Encoding.DER) for cert in x509.load_pem_x509_certificates(pem)]


def record(pem, usage=3, selector=1, matching_type=1):
    return encode('TLSA', tlsa_value(load_material(pem, 'pem'), usage, selector, matching_type))


SERVED = {MX1: CA.issue([MX1])[0], MX2: CA.issue([MX2])[0]}
OTHER_KEY = CA.issue([MX1])[0]     # the same name, a new key: a renewal without key reuse


def tlsa(host, records=(), status=None, authenticated=True, signed=True, error=None, authoritative=False):
    status = status or ('ok' if records else 'nxdomain')
    return {'name': '_25._tcp.' + host, 'status': status, 'records': list(records), 'authenticated': authenticated,
            'signed': signed, 'cname_chain': [], 'error': error, 'authoritative': authoritative}


def served(host, pem=None, **kwargs):
    facts = probe(host, **kwargs)
    facts['chain_der'] = chain_of(pem or SERVED[host]) if kwargs.get('error') is None and kwargs.get('starttls', True) else None
    return facts


def dane_facts(tlsa_by_host, probes=None, validates=True, problems=None, mx_lookup=None, **kwargs):
    hosts = mx_lookup or mx(MX1, MX2)
    facts = make_facts(mx_lookup=hosts, probes=probes if probes is not None else dict(
        (entry['host'], served(entry['host'])) for entry in hosts['hosts']), **kwargs)
    facts['dane'] = {'tlsa': tlsa_by_host, 'resolver': {'validates': validates, 'problems': problems or []}}
    return facts


def run(facts):
    """evaluate(), checking that every finding is in the catalogue with one of its documented severities."""
    result = evaluate(facts, None, NOW)
    for found in result['findings']:
        assert found['severity'] in FINDINGS[found['code']][0], found
    return result


def dane_found(result):
    return sorted((f['code'], f['severity']) for f in result['findings'] if f['code'].startswith('dane-'))


def message(result, code):
    return [f['message'] for f in result['findings'] if f['code'] == code][0]


def entry(result, host):
    return [item for item in result['mx'] if item['host'] == host][0]


def both_published():
    return {MX1: tlsa(MX1, [record(SERVED[MX1])]), MX2: tlsa(MX2, [record(SERVED[MX2])])}


# --- a match, a mismatch ---

def test_a_3_1_1_record_of_the_served_key_matches():
    result = run(dane_facts(both_published()))
    assert dane_found(result) == []
    dane = entry(result, MX1)['dane']
    assert dane == {'name': '_25._tcp.' + MX1, 'status': 'ok', 'records': [record(SERVED[MX1])], 'authenticated': True,
                    'signed': True, 'usable': True, 'matched': [record(SERVED[MX1])],
                    'served_spki_sha256': record(SERVED[MX1]).split()[3], 'error': None}


def test_a_certificate_on_a_new_key_matches_no_record_and_is_an_error():
    probes = {MX1: served(MX1, OTHER_KEY), MX2: served(MX2)}
    result = run(dane_facts(both_published(), probes))
    assert dane_found(result) == [('dane-no-match', 'error')]
    text = message(result, 'dane-no-match')
    assert MX1 in text and record(SERVED[MX1]) in text and record(OTHER_KEY).split()[3] in text
    assert 'DANE senders defer mail to it' in text
    assert entry(result, MX1)['dane']['matched'] == []


def test_every_selector_and_matching_type_of_the_served_leaf_matches():
    values = [record(SERVED[MX1], 3, selector, matching_type) for selector in (0, 1) for matching_type in (0, 1, 2)]
    result = run(dane_facts({MX1: tlsa(MX1, values), MX2: tlsa(MX2, [record(SERVED[MX2])])}))
    assert dane_found(result) == []
    assert entry(result, MX1)['dane']['matched'] == values


def test_usage_2_matches_the_intermediate_the_server_sends_and_not_the_leaf():
    intermediate = CA.chain_pem
    result = run(dane_facts({MX1: tlsa(MX1, [record(intermediate, usage=2)]), MX2: tlsa(MX2, [record(SERVED[MX2], usage=2)])}))
    assert entry(result, MX1)['dane']['matched'] == [record(intermediate, usage=2)]
    assert dane_found(result) == [('dane-no-match', 'error')]   # MX2: a 2 x x record of its own leaf
    assert MX2 in message(result, 'dane-no-match')


def test_a_self_signed_certificate_matches_its_3_1_1_record_although_pkix_fails():
    pem = self_signed([MX1])[0]
    probes = {MX1: served(MX1, pem, cert={'valid': False, 'error': 'self-signed certificate', 'names': [MX1],
                                          'not_after': None, 'issuer': 'CN=' + MX1}), MX2: served(MX2)}
    result = run(dane_facts({MX1: tlsa(MX1, [record(pem)]), MX2: tlsa(MX2, [record(SERVED[MX2])])}, probes))
    assert dane_found(result) == []
    assert 'mx-certificate-invalid' in [f['code'] for f in result['findings']]   # MTA-STS still refuses it


# --- what the DNS answer was ---

def test_unsigned_records_are_a_warning_and_a_mismatch_then_only_a_warning():
    records = {MX1: tlsa(MX1, [record(SERVED[MX1])], authenticated=False, signed=False),
               MX2: tlsa(MX2, [record(SERVED[MX2])], authenticated=False, signed=False)}
    result = run(dane_facts(records))
    assert dane_found(result) == [('dane-unsigned', 'warning'), ('dane-unsigned', 'warning')]
    assert 'not DNSSEC-signed' in message(result, 'dane-unsigned') and 'RFC 7672 §2.2' in message(result, 'dane-unsigned')
    mismatch = run(dane_facts(records, {MX1: served(MX1, OTHER_KEY), MX2: served(MX2)}))
    assert ('dane-no-match', 'warning') in dane_found(mismatch)
    assert 'once the records are authenticated' in message(mismatch, 'dane-no-match')


def test_signed_but_not_authenticated_by_a_validating_resolver_names_the_chain_of_trust():
    result = run(dane_facts({MX1: tlsa(MX1, [record(SERVED[MX1])], authenticated=False),
                             MX2: tlsa(MX2, [record(SERVED[MX2])])}))
    assert dane_found(result) == [('dane-unsigned', 'warning')]
    assert 'DS record' in message(result, 'dane-unsigned')


def test_a_resolver_that_does_not_validate_leaves_signed_records_unjudged():
    records = {MX1: tlsa(MX1, [record(SERVED[MX1])], authenticated=False),
               MX2: tlsa(MX2, [record(SERVED[MX2])], authenticated=False)}
    problems = ['the resolver at 127.0.0.1:5300 does not validate DNSSEC: no AD bit on its answer to soa:dane.example']
    result = run(dane_facts(records, validates=False, problems=problems))
    assert dane_found(result) == [('dane-resolver-not-validating', 'warning')]
    assert problems[0] in message(result, 'dane-resolver-not-validating')
    # A mismatch is then an error: senders with a validating resolver do see the records.
    mismatch = run(dane_facts(records, {MX1: served(MX1, OTHER_KEY), MX2: served(MX2)}, validates=False, problems=problems))
    assert ('dane-no-match', 'error') in dane_found(mismatch)
    # Without TLSA anywhere the resolver does not matter.
    assert dane_found(run(dane_facts({MX1: tlsa(MX1), MX2: tlsa(MX2)}, validates=False, problems=problems))) == [
        ('dane-tlsa-missing', 'info'), ('dane-tlsa-missing', 'info')]


def test_authoritative_answers_are_judged_by_their_signatures_only():
    signed = {MX1: tlsa(MX1, [record(SERVED[MX1])], authenticated=False, authoritative=True),
              MX2: tlsa(MX2, [record(SERVED[MX2])], authenticated=False, authoritative=True)}
    assert dane_found(run(dane_facts(signed, validates=None))) == []
    unsigned = {MX1: tlsa(MX1, [record(SERVED[MX1])], authenticated=False, signed=False, authoritative=True),
                MX2: tlsa(MX2, [record(SERVED[MX2])], authenticated=False, authoritative=True)}
    assert dane_found(run(dane_facts(unsigned, validates=None))) == [('dane-unsigned', 'warning')]


def test_a_failed_lookup_is_an_error_and_nothing_else_is_judged_for_that_host():
    records = {MX1: tlsa(MX1, status='error', error='127.0.0.1:53 answered SERVFAIL'), MX2: tlsa(MX2, [record(SERVED[MX2])])}
    result = run(dane_facts(records, {MX1: served(MX1, OTHER_KEY), MX2: served(MX2)}))
    assert dane_found(result) == [('dane-lookup-failed', 'error')]
    assert 'SERVFAIL' in message(result, 'dane-lookup-failed') and 'defers mail' in message(result, 'dane-lookup-failed')
    assert entry(result, MX1)['dane']['status'] == 'error'


def test_no_tlsa_is_info_per_host():
    result = run(dane_facts({MX1: tlsa(MX1), MX2: tlsa(MX2, status='nodata')}))
    assert dane_found(result) == [('dane-tlsa-missing', 'info'), ('dane-tlsa-missing', 'info')]
    assert 'NXDOMAIN' in message(result, 'dane-tlsa-missing')
    assert entry(result, MX2)['dane']['matched'] is None and entry(result, MX2)['dane']['usable'] is False


@pytest.mark.parametrize('records, left', [
    (['0 1 1 ' + 'ab' * 32], 'authenticate nothing'),
    (['1 1 1 ' + 'ab' * 32, '3 1 1 ' + 'ab' * 20], 'authenticate nothing'),   # a SHA-256 of the wrong length
    (['3 2 1 ' + 'ab' * 32, '3 1 9 abcd'], 'authenticate nothing'),
])
def test_records_a_dane_sender_cannot_use(records, left):
    result = run(dane_facts({MX1: tlsa(MX1, records), MX2: tlsa(MX2, [record(SERVED[MX2])])},
                            policy_fetch=fetch(body=policy_body(mode='testing'))))
    assert dane_found(result) == [('dane-partial', 'warning'), ('dane-unusable', 'warning')]
    assert left in message(result, 'dane-unusable') and repr(records[0]) in message(result, 'dane-unusable')


def test_an_unusable_record_beside_a_usable_one_is_ignored():
    records = ['1 1 1 ' + 'ab' * 32, record(SERVED[MX1])]
    result = run(dane_facts({MX1: tlsa(MX1, records), MX2: tlsa(MX2, [record(SERVED[MX2])])}))
    assert dane_found(result) == [('dane-unusable', 'warning')]
    assert 'use the others' in message(result, 'dane-unusable')
    assert entry(result, MX1)['dane']['matched'] == [record(SERVED[MX1])]


# --- when the probe saw no certificate ---

@pytest.mark.parametrize('probe_kwargs, severity, text', [
    ({'starttls': False, 'tls_version': None, 'cert': None}, 'error', 'the MX does not offer STARTTLS; DANE senders require TLS'),
    ({'error': {'kind': 'tls', 'message': 'handshake failure'}, 'tls_version': None, 'cert': None}, 'error',
     'could not be matched: handshake failure; DANE senders'),
    ({'starttls': None, 'error': {'kind': 'connect', 'message': 'refused'}, 'tls_version': None, 'cert': None}, 'warning',
     'could not be matched: refused; the certificate it serves is unknown'),
])
def test_no_certificate_to_match(probe_kwargs, severity, text):
    probes = {MX1: served(MX1, **probe_kwargs), MX2: served(MX2)}
    result = run(dane_facts(both_published(), probes))
    assert ('dane-probe-failed', severity) in dane_found(result)
    assert text in message(result, 'dane-probe-failed')


def test_no_starttls_with_insecure_records_is_only_a_warning():
    records = {MX1: tlsa(MX1, [record(SERVED[MX1])], authenticated=False, signed=False), MX2: tlsa(MX2, [record(SERVED[MX2])])}
    result = run(dane_facts(records, {MX1: served(MX1, starttls=False, tls_version=None, cert=None), MX2: served(MX2)}))
    assert ('dane-probe-failed', 'warning') in dane_found(result)


def test_without_a_probe_nothing_is_matched():
    findings, fields = judge_dane(MX1, tlsa(MX1, [record(SERVED[MX1])]), None, True)
    assert findings == [] and fields['matched'] is None and fields['usable'] is True


# --- DANE across the MX hosts, and against the policy ---

def test_dane_on_some_mx_hosts_only_is_partial_under_a_testing_policy():
    facts = dane_facts({MX1: tlsa(MX1, [record(SERVED[MX1])]), MX2: tlsa(MX2)},
                       policy_fetch=fetch(body=policy_body(mode='testing')))
    result = run(facts)
    assert dane_found(result) == [('dane-partial', 'warning'), ('dane-tlsa-missing', 'info')]
    assert '(%s); %s has none' % (MX1, MX2) in message(result, 'dane-partial')


def test_under_enforce_an_mx_the_policy_covers_without_tlsa_is_a_mismatch_not_partial():
    result = run(dane_facts({MX1: tlsa(MX1, [record(SERVED[MX1])]), MX2: tlsa(MX2)}))
    assert dane_found(result) == [('dane-sts-mismatch', 'warning'), ('dane-tlsa-missing', 'info')]
    assert message(result, 'dane-sts-mismatch').startswith('MX %s is covered by the enforce policy but has no usable TLSA' % MX2)


@pytest.mark.parametrize('mode, senders', [('enforce', 'refuse it'), ('testing', 'report failures for it')])
def test_an_mx_with_tlsa_that_the_policy_does_not_cover(mode, senders):
    other = 'mx.other.example.net'
    hosts = mx(MX1, other)
    probes = {MX1: served(MX1), other: served(other, SERVED[MX2])}
    facts = dane_facts({MX1: tlsa(MX1, [record(SERVED[MX1])]), other: tlsa(other, [record(SERVED[MX2])])}, probes,
                       mx_lookup=hosts, policy_fetch=fetch(body=policy_body(mode=mode)))
    result = run(facts)
    assert dane_found(result) == [('dane-sts-mismatch', 'warning')]
    assert message(result, 'dane-sts-mismatch') == ('MX %s has usable TLSA records but matches no mx pattern of the %s policy: '
                                                    'DANE senders deliver to it, MTA-STS senders %s' % (other, mode, senders))


def test_no_mismatch_when_no_policy_is_published():
    other = 'mx.other.example.net'
    facts = dane_facts({MX1: tlsa(MX1, [record(SERVED[MX1])]), other: tlsa(other, [record(SERVED[MX2])])},
                       {MX1: served(MX1), other: served(other, SERVED[MX2])}, mx_lookup=mx(MX1, other), sts_txt=sts(status='nxdomain'))
    assert dane_found(run(facts)) == []


def test_without_check_dane_the_entries_have_no_dane_field():
    result = run(make_facts())
    assert all('dane' not in item for item in result['mx'])


def test_every_dane_code_is_in_the_catalogue():
    assert sorted(code for code in FINDINGS if code.startswith('dane-')) == sorted([
        'dane-tlsa-missing', 'dane-no-match', 'dane-unsigned', 'dane-resolver-not-validating', 'dane-lookup-failed',
        'dane-unusable', 'dane-probe-failed', 'dane-partial', 'dane-sts-mismatch'])


# --- the options, refused before any question ---

@pytest.mark.parametrize('options, field', [
    ({'dane_dnssec_probe': 'dane.example'}, 'dane_dnssec_probe'),
    ({'dane_dnssec_probe': 'nosuchtype:dane.example'}, 'dane_dnssec_probe'),
    ({'dane_bogus_name': 'a..b'}, 'dane_bogus_name'),
    ({'dane_bogus_name': ''}, 'dane_bogus_name'),
])
def test_bad_dane_options_are_refused_naming_the_option(options, field):
    # 192.0.2.1 would never answer: the error comes before any question.
    with pytest.raises(ValidationError) as error:
        validate(['example.com'], nameservers=['192.0.2.1'], timeout=1, check_dane=True, **options)
    assert error.value.field == field


def test_each_mx_host_is_looked_up_and_probed_once_and_the_resolver_checked_once(monkeypatch):
    """Two domains share an MX host: one TLSA lookup and one probe per host, one resolver check per run."""
    from ansible_collections.mailsec.mta_sts.plugins.module_utils import _validator
    calls = {'tlsa': [], 'probe': [], 'resolver': []}
    shared = {'a.example': mx(MX1, MX2), 'b.example': mx(MX1)}

    def gather(_resolver, domain, *_args):
        return dict(make_facts(mx_lookup=shared[domain], probes=None), domain=domain)

    def lookup_tlsa(_resolver, host):
        calls['tlsa'].append(host)
        return tlsa(host, [record(SERVED[host])])

    def probe_mx(_resolver, host, **_options):
        calls['probe'].append(host)
        return served(host)

    def probe_resolver(dnssec_probe, bogus_name, nameservers, _timeout):
        calls['resolver'].append((dnssec_probe, bogus_name, nameservers))
        return []
    for name, replacement in (('gather', gather), ('lookup_tlsa', lookup_tlsa), ('probe_mx', probe_mx),
                              ('probe_resolver', probe_resolver)):
        monkeypatch.setattr(_validator, name, replacement)
    results = validate(['a.example', 'b.example'], nameservers=['192.0.2.1'], check_dane=True, dane_dnssec_probe='soa:example.')
    assert sorted(calls['tlsa']) == sorted(calls['probe']) == sorted([MX1, MX2])
    assert calls['resolver'] == [('soa:example.', 'dnssec-failed.org', ['192.0.2.1'])]
    assert [[entry['dane']['matched'] is not None for entry in result['mx']] for result in results] == [[True, True], [True]]
    # Authoritative servers never validate: no resolver check, and the AD bit is not asked of them.
    calls['resolver'] = []
    validate(['a.example'], nameservers=['192.0.2.1'], check_dane=True, authoritative=True)
    assert calls['resolver'] == []
