import ast
import datetime
import inspect
import os
import re

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _checks
from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import evaluate, probe_result
from ansible_collections.mailsec.mta_sts.plugins.module_utils._expect import normalize_expect
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import FINDINGS, SEVERITIES
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import max_age_advice, parse_policy, policy_id, render_policy

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
LATER = '2027-01-01T00:00:00Z'

POLICY_DICT = {'mode': 'enforce', 'mx': ['mx1.example.com', '*.mx.example.com'], 'max_age': 1209600}
POLICY = render_policy(POLICY_DICT).encode('utf-8')
POLICY_ID = policy_id(POLICY)
RUA = 'mailto:tlsrpt@example.com'
RESULT_KEYS = {'domain', 'valid', 'in_sync', 'mode', 'id', 'policy', 'records', 'mx', 'policy_certificate', 'findings', 'drift'}
MX_KEYS = {'host', 'preference', 'covered', 'starttls', 'tls_version', 'certificate_valid', 'names', 'not_after', 'error'}
DEFAULT = object()


# --- FACTS builders ---

def txt(name, records, status='ok', cname=(), error=None):
    """A TXT lookup; each record is a str (one character-string) or a list of strings."""
    return {'name': name, 'status': status, 'error': error, 'cname_chain': list(cname),
            'records': [[record] if isinstance(record, str) else list(record) for record in records]}


def sts(*records, **kwargs):
    if not records and 'status' not in kwargs:
        records = ('v=STSv1; id=%s;' % POLICY_ID,)
    return txt('_mta-sts.example.com', records, **kwargs)


def tlsrpt(*records, **kwargs):
    if not records and 'status' not in kwargs:
        records = ('v=TLSRPTv1; rua=%s' % RUA,)
    return txt('_smtp._tls.example.com', records, **kwargs)


def no_sts():
    return sts(status='nxdomain')


def no_tlsrpt():
    return tlsrpt(status='nxdomain')


def certificate(names, not_after=LATER, valid=True, error=None):
    return {'valid': valid, 'error': error, 'names': list(names), 'not_after': not_after, 'issuer': 'CN=Test CA'}


def fetch(body=POLICY, status=200, content_type='text/plain; charset=utf-8', error=None, location=None, truncated=False,
          tls_version='TLSv1.3', cert=DEFAULT):
    if cert is DEFAULT:
        cert = {'names': ['mta-sts.example.com'], 'not_after': LATER, 'issuer': 'CN=Test CA'}
    return {'url': 'https://mta-sts.example.com/.well-known/mta-sts.txt', 'error': error, 'status': status, 'location': location,
            'content_type': content_type, 'body': body, 'truncated': truncated, 'tls_version': tls_version, 'certificate': cert}


def failed_fetch(kind, message):
    return fetch(body=None, status=None, content_type=None, error={'kind': kind, 'message': message}, tls_version=None, cert=None)


def policy_body(mode='enforce', mx=('mx1.example.com', '*.mx.example.com'), max_age=1209600):
    return render_policy({'mode': mode, 'mx': list(mx), 'max_age': max_age}).encode('utf-8')


def probe(host, starttls=True, tls_version='TLSv1.3', error=None, cert=DEFAULT):
    if cert is DEFAULT:
        cert = certificate([host])
    return {'host': host, 'addresses': ['127.0.0.21'], 'error': error, 'starttls': starttls, 'tls_version': tls_version, 'certificate': cert}


def mx(*hosts, **kwargs):
    """MX hosts as ``host`` or ``(host, preference)``; preferences default to 10, 20, ..."""
    entries = []
    for index, host in enumerate(hosts):
        host, preference = host if isinstance(host, tuple) else (host, 10 * (index + 1))
        entries.append({'host': host, 'preference': preference})
    return {'status': kwargs.get('status', 'ok'), 'error': kwargs.get('error'), 'hosts': entries}


GOOD_MX = ('mx1.example.com', 'a.mx.example.com')


def make_facts(sts_txt=DEFAULT, tlsrpt_txt=DEFAULT, mx_lookup=DEFAULT, policy_fetch=DEFAULT, probes=DEFAULT):
    """A good enforce domain, with any part replaced. ``probes=DEFAULT`` probes every MX host cleanly."""
    mx_lookup = mx(*GOOD_MX) if mx_lookup is DEFAULT else mx_lookup
    if probes is DEFAULT:
        probes = dict((entry['host'], probe(entry['host'])) for entry in mx_lookup['hosts'] if entry['host'])
    return {
        'domain': 'example.com',
        'sts_txt': sts() if sts_txt is DEFAULT else sts_txt,
        'tlsrpt_txt': tlsrpt() if tlsrpt_txt is DEFAULT else tlsrpt_txt,
        'mx': mx_lookup,
        'policy_fetch': fetch() if policy_fetch is DEFAULT else policy_fetch,
        'mx_probes': probes,
    }


def run(facts, expect=None, now=NOW):
    """evaluate(), checking the shape of the result and that every finding is documented with its severity."""
    result = evaluate(facts, expect, now)
    assert set(result) == RESULT_KEYS
    assert set(result['records']) == {'sts', 'tlsrpt'}
    for entry in result['mx']:
        assert set(entry) == MX_KEYS
    for finding in result['findings']:
        assert set(finding) == {'code', 'severity', 'message'}
        assert finding['code'] in FINDINGS
        assert finding['severity'] in SEVERITIES
        assert finding['severity'] in FINDINGS[finding['code']][0], finding
        assert finding['message']
    for entry in result['drift']:
        assert set(entry) == {'field', 'desired', 'live'}
    return result


def found(result):
    return sorted((finding['code'], finding['severity']) for finding in result['findings'])


def message(result, code):
    messages = [finding['message'] for finding in result['findings'] if finding['code'] == code]
    assert len(messages) == 1, result['findings']
    return messages[0]


def host(result, name):
    return [entry for entry in result['mx'] if entry['host'] == name][0]


# --- the good domain ---

def test_good_enforce_domain():
    result = run(make_facts())
    assert result['findings'] == []
    assert result['valid'] is True
    assert result['in_sync'] is None
    assert result['drift'] == []
    assert result['domain'] == 'example.com'
    assert result['mode'] == 'enforce'
    assert result['id'] == POLICY_ID
    assert result['policy'] == parse_policy(POLICY)
    assert result['records'] == {'sts': ['v=STSv1; id=%s;' % POLICY_ID], 'tlsrpt': ['v=TLSRPTv1; rua=%s' % RUA]}
    assert result['mx'] == [
        {'host': 'mx1.example.com', 'preference': 10, 'covered': True, 'starttls': True, 'tls_version': 'TLSv1.3',
         'certificate_valid': True, 'names': ['mx1.example.com'], 'not_after': LATER, 'error': None},
        {'host': 'a.mx.example.com', 'preference': 20, 'covered': True, 'starttls': True, 'tls_version': 'TLSv1.3',
         'certificate_valid': True, 'names': ['a.mx.example.com'], 'not_after': LATER, 'error': None},
    ]


def test_good_domain_in_sync_with_full_expect():
    result = run(make_facts(), {'policy': POLICY_DICT, 'rua': [RUA]})
    assert result['in_sync'] is True
    assert result['drift'] == []
    assert result['findings'] == []


def test_mx_listed_by_preference_without_duplicates_and_unprobed_hosts_stay_none():
    lookup = mx(('a.mx.example.com', 20), ('mx1.example.com', 5), ('MX1.example.com.', 30))
    result = run(make_facts(mx_lookup=lookup, probes={}))
    assert [(entry['host'], entry['preference']) for entry in result['mx']] == [('mx1.example.com', 5), ('a.mx.example.com', 20)]
    assert all(entry['starttls'] is None and entry['certificate_valid'] is None for entry in result['mx'])
    assert result['findings'] == []


def test_mx_probes_not_asked_for():
    result = run(make_facts(probes=None))
    assert result['findings'] == []
    assert [entry['covered'] for entry in result['mx']] == [True, True]
    assert [entry['starttls'] for entry in result['mx']] == [None, None]


# --- hostile policy hosts ---

FETCH_FAULTS = [
    (fetch(status=301, location='https://www.example.com/mta-sts.txt', body=b'<html>moved</html>', content_type='text/html'),
     'policy-redirect', 'HTTP 301 redirect to https://www.example.com/mta-sts.txt'),
    (fetch(status=302, location='/elsewhere', body=b''), 'policy-redirect', 'redirect to /elsewhere'),
    (fetch(status=404, body=b'not found', content_type='text/html'), 'policy-http-status', 'HTTP 404'),
    (fetch(status=500, body=b'oops'), 'policy-http-status', 'HTTP 500'),
    (fetch(status=304, body=b''), 'policy-http-status', 'HTTP 304'),
    (fetch(body=(POLICY + b'x-pad: ' + b'a' * 70 * 1024)[:64 * 1024], truncated=True), 'policy-too-large', 'larger than 64 KiB'),
    (fetch(body=POLICY + b' ' * (64 * 1024)), 'policy-too-large', 'larger than 64 KiB'),
    (failed_fetch('timeout', 'timed out after 60 s'), 'policy-fetch-failed', 'timeout: timed out after 60 s'),
    (failed_fetch('dns', 'mta-sts.example.com: NXDOMAIN'), 'policy-fetch-failed', 'dns: mta-sts.example.com: NXDOMAIN'),
    (failed_fetch('connect', 'connection refused'), 'policy-fetch-failed', 'connect: connection refused'),
    (failed_fetch('tls', 'sslv3 alert handshake failure'), 'policy-fetch-failed', 'tls: sslv3 alert handshake failure'),
    (failed_fetch('http', 'bad status line'), 'policy-fetch-failed', 'http: bad status line'),
    (fetch(status=None, body=None), 'policy-fetch-failed', 'no HTTP response'),
    (failed_fetch('certificate', "hostname mismatch, certificate is not valid for 'mta-sts.example.com'"),
     'policy-certificate-invalid', 'hostname mismatch'),
    (failed_fetch('certificate', 'certificate has expired'), 'policy-certificate-invalid', 'certificate has expired'),
    (failed_fetch('certificate', 'unable to get local issuer certificate'), 'policy-certificate-invalid', 'unable to get local issuer'),
    (fetch(cert={'names': ['mta-sts.example.com'], 'not_after': '2026-05-01T00:00:00Z', 'issuer': 'CN=Test CA'}),
     'policy-certificate-invalid', 'expired at 2026-05-01T00:00:00Z'),
    (fetch(body=b'version: STSv1\nmode: enforce\nmax_age: 86400\n'), 'policy-invalid', 'at least one mx pattern is required'),
    (fetch(body=b'<html><body>Welcome</body></html>'), 'policy-invalid', "policy line 1 '<html><body>Welcome</body></html>'"),
    (fetch(body=POLICY.replace(b'mode: enforce', b'mode: Enforce')), 'policy-invalid', "mode 'Enforce': must be one of"),
    (fetch(body=POLICY.replace(b'mx1.example.com', b'*.*.example.com')), 'policy-invalid', 'wildcard may only be the whole left-most label'),
    (fetch(body=b''), 'policy-invalid', 'required field is missing'),
    (fetch(body=None), 'policy-invalid', 'required field is missing'),
]


@pytest.mark.parametrize('policy_fetch, code, text', FETCH_FAULTS)
def test_fetch_faults_make_the_domain_invalid(policy_fetch, code, text):
    result = run(make_facts(policy_fetch=policy_fetch))
    assert found(result) == [(code, 'error')]
    assert text in message(result, code)
    assert result['valid'] is False
    assert result['policy'] is None and result['mode'] is None
    # The TXT record is fine; only the policy is missing, and with it MX coverage.
    assert result['id'] == POLICY_ID
    assert [entry['covered'] for entry in result['mx']] == [None, None]


@pytest.mark.parametrize('policy_fetch, code, text', FETCH_FAULTS)
def test_fetch_faults_are_info_when_no_record_is_published_or_expected(policy_fetch, code, text):
    result = run(make_facts(sts_txt=no_sts(), policy_fetch=policy_fetch))
    assert found(result) == sorted([(code, 'info'), ('sts-record-missing', 'info')])
    assert text in message(result, code)
    # Expecting a policy restores the full severity.
    assert (code, 'error') in found(run(make_facts(sts_txt=no_sts(), policy_fetch=policy_fetch), {'mode': 'enforce'}))


@pytest.mark.parametrize('policy_fetch, code', [
    (fetch(cert={'names': ['mta-sts.example.com'], 'not_after': '2026-06-10T00:00:00Z', 'issuer': 'CN=Test CA'}), 'policy-certificate-expiring'),
    (fetch(body=policy_body(max_age=3600)), 'max-age-short'),
    (fetch(body=policy_body(max_age=86400)), 'max-age-short-enforce'),
])
def test_advice_is_info_when_no_record_is_published(policy_fetch, code):
    assert found(run(make_facts(policy_fetch=policy_fetch))) == [(code, 'warning')]
    # The policy itself is fine: that no record announces it is the one warning.
    assert found(run(make_facts(sts_txt=no_sts(), policy_fetch=policy_fetch))) == sorted(
        [(code, 'info'), ('policy-unannounced', 'warning'), ('sts-record-missing', 'info')])


@pytest.mark.parametrize('content_type', ['text/html', 'application/octet-stream', None, 'text/plain-ish', ''])
def test_content_type_not_text_plain_is_an_error(content_type):
    # Strict senders (postfix-mta-sts-resolver) drop such a policy: RFC 8461 §3.2 says they SHOULD check it.
    result = run(make_facts(policy_fetch=fetch(content_type=content_type)))
    assert found(result) == [('policy-content-type', 'error')]
    assert result['valid'] is False
    assert result['mode'] is None and result['policy'] is None


UNICODE_POLICY = POLICY + u'comment: caf\u00e9\r\n'.encode('utf-8')


@pytest.mark.parametrize('content_type', ['text/plain', 'text/plain; charset=us-ascii', 'text/plain; format=flowed'])
def test_non_ascii_policy_without_a_utf8_charset_is_an_error(content_type):
    # text/plain defaults to US-ASCII (RFC 2046), and postfix-mta-sts-resolver decodes it so: the policy fails there.
    result = run(make_facts(policy_fetch=fetch(body=UNICODE_POLICY, content_type=content_type)))
    assert found(result) == [('policy-charset-missing', 'error')]
    assert 'charset=utf-8' in message(result, 'policy-charset-missing')
    assert result['valid'] is False and result['policy'] is None


@pytest.mark.parametrize('content_type', ['text/plain; charset=utf-8', 'text/plain;charset="UTF-8"'])
def test_non_ascii_policy_with_a_charset_is_fine(content_type):
    result = run(make_facts(policy_fetch=fetch(body=UNICODE_POLICY, content_type=content_type)))
    assert result['findings'] == [] and result['valid'] is True
    assert result['policy']['extensions'] == {'comment': u'caf\u00e9'}


def test_ascii_policy_needs_no_charset():
    assert run(make_facts(policy_fetch=fetch(content_type='text/plain')))['findings'] == []


@pytest.mark.parametrize('content_type', ['text/plain', 'TEXT/Plain', 'text/plain;charset=UTF-8', ' text/plain ; charset=us-ascii'])
def test_text_plain_with_parameters_is_fine(content_type):
    assert run(make_facts(policy_fetch=fetch(content_type=content_type)))['findings'] == []


def test_policy_certificate_expiring_is_a_warning():
    soon = {'names': ['mta-sts.example.com'], 'not_after': '2026-06-10T00:00:00Z', 'issuer': 'CN=Test CA'}
    result = run(make_facts(policy_fetch=fetch(cert=soon)))
    assert found(result) == [('policy-certificate-expiring', 'warning')]
    assert 'in 8.5 days' in message(result, 'policy-certificate-expiring')
    assert result['valid'] is True
    # 14 days and more: nothing; no now: expiry is not judged at all.
    assert run(make_facts(policy_fetch=fetch(cert=soon)), now=datetime.datetime(2026, 5, 27))['findings'] == []
    assert run(make_facts(policy_fetch=fetch(cert=soon)), now=None)['findings'] == []


@pytest.mark.parametrize('not_after', [None, 'soon', '', 20260610])
def test_unreadable_expiry_is_not_judged(not_after):
    cert = {'names': ['mta-sts.example.com'], 'not_after': not_after, 'issuer': 'CN=Test CA'}
    probes = {'mx1.example.com': probe('mx1.example.com', cert=certificate(['mx1.example.com'], not_after=not_after))}
    result = run(make_facts(policy_fetch=fetch(cert=cert), probes=probes))
    assert result['findings'] == []
    assert result['valid'] is True


def test_now_as_naive_datetime_or_iso_string():
    soon = {'names': ['mta-sts.example.com'], 'not_after': '2026-06-10T00:00:00Z', 'issuer': 'CN=Test CA'}
    for now in (datetime.datetime(2026, 6, 1, 12, 0, 0), '2026-06-01T12:00:00Z', '2026-06-01T14:00:00+02:00'):
        result = run(make_facts(policy_fetch=fetch(cert=soon)), now=now)
        assert 'in 8.5 days' in message(result, 'policy-certificate-expiring')


@pytest.mark.parametrize('now', ['yesterday', 12, datetime.date(2026, 6, 1)])
def test_bad_now(now):
    with pytest.raises(ValidationError) as err:
        evaluate(make_facts(), None, now)
    assert 'must be a datetime or an ISO 8601 date and time' in str(err.value)


# --- the _mta-sts record ---

def test_two_sts_records_mean_no_policy():
    result = run(make_facts(sts_txt=sts('v=STSv1; id=%s;' % POLICY_ID, 'v=STSv1; id=older1;')))
    assert found(result) == [('sts-record-multiple', 'error')]
    assert '2 v=STSv1 records' in message(result, 'sts-record-multiple')
    assert result['valid'] is False
    assert result['id'] is None
    # The policy itself is still served and judged.
    assert result['mode'] == 'enforce'


def test_other_txt_records_at_the_name_are_ignored_but_listed():
    result = run(make_facts(sts_txt=sts('google-site-verification=abc', 'v=STSv1; id=%s;' % POLICY_ID)))
    assert result['findings'] == []
    assert result['valid'] is True
    assert result['records']['sts'] == ['google-site-verification=abc', 'v=STSv1; id=%s;' % POLICY_ID]


def test_record_split_into_two_strings_is_valid():
    result = run(make_facts(sts_txt=sts(['v=STSv1; id=%s' % POLICY_ID[:10], POLICY_ID[10:] + ';'])))
    assert found(result) == [('sts-record-multistring', 'info')]
    assert result['valid'] is True
    assert result['id'] == POLICY_ID
    assert result['records']['sts'] == ['v=STSv1; id=%s;' % POLICY_ID]


def test_records_as_plain_strings_or_bytes():
    facts = make_facts()
    facts['sts_txt']['records'] = ['v=STSv1; id=%s;' % POLICY_ID]
    facts['tlsrpt_txt']['records'] = [[b'v=TLSRPTv1; ', ('rua=%s' % RUA).encode('ascii')]]
    result = run(facts)
    assert found(result) == [('tlsrpt-record-multistring', 'info')]
    assert result['records'] == {'sts': ['v=STSv1; id=%s;' % POLICY_ID], 'tlsrpt': ['v=TLSRPTv1; rua=%s' % RUA]}
    assert result['valid'] is True


def test_cnamed_record_is_valid():
    record = sts('v=STSv1; id=%s;' % POLICY_ID, cname=['_mta-sts.provider.example', '_mta-sts.cdn.provider.example'])
    result = run(make_facts(sts_txt=record))
    assert found(result) == [('sts-record-cname', 'info')]
    assert message(result, 'sts-record-cname') == ('_mta-sts.example.com is delegated by CNAME: '
                                                   '_mta-sts.example.com -> _mta-sts.provider.example -> _mta-sts.cdn.provider.example')
    assert result['valid'] is True


@pytest.mark.parametrize('record, text', [
    ('v=STSv1; id=bad-id;', "id 'bad-id': must be 1 to 32 letters or digits"),
    ('v=STSv1;', 'must have at least one field after v=STSv1'),
    ('v=STSv1', 'must have at least one field after v=STSv1'),
    ('v=STSv1;; id=abc', 'fields must not be empty'),
    ('v=STSv1; ext=1', 'must have an id= field'),
])
def test_invalid_record(record, text):
    result = run(make_facts(sts_txt=sts(record)))
    assert found(result) == [('sts-record-invalid', 'error')]
    assert text in message(result, 'sts-record-invalid')
    assert result['valid'] is False
    assert result['id'] is None


@pytest.mark.parametrize('record', ['v=stsv1; id=abc;', ' v=STSv1; id=abc;', 'v = STSv1; id=abc', 'v=STSv1x; id=abc'])
def test_lookalike_record_is_ignored_by_senders(record):
    result = run(make_facts(sts_txt=sts(record)))
    assert found(result) == [('policy-unannounced', 'warning'), ('sts-record-ignored', 'warning'), ('sts-record-missing', 'info')]
    assert result['valid'] is False


def test_sts_dns_error():
    result = run(make_facts(sts_txt=sts(status='error', error='SERVFAIL')))
    assert found(result) == [('sts-dns-error', 'error')]
    assert 'SERVFAIL' in message(result, 'sts-dns-error')
    assert result['valid'] is False


def test_domain_without_mta_sts_has_no_errors():
    facts = make_facts(sts_txt=no_sts(), tlsrpt_txt=no_tlsrpt(), policy_fetch=failed_fetch('dns', 'NXDOMAIN'))
    result = run(facts)
    assert found(result) == [('policy-fetch-failed', 'info'), ('sts-record-missing', 'info'), ('tlsrpt-record-missing', 'info')]
    assert result['valid'] is False
    assert result['in_sync'] is None
    assert 'the name does not exist (NXDOMAIN)' in message(result, 'sts-record-missing')


def test_catch_all_web_server_without_mta_sts_is_info_only():
    facts = make_facts(sts_txt=sts('v=spf1 -all'), policy_fetch=fetch(body=b'<html></html>', content_type='text/html'))
    result = run(facts)
    assert found(result) == [('policy-content-type', 'info'), ('sts-record-missing', 'info')]
    assert 'no TXT record starts with v=STSv1' in message(result, 'sts-record-missing')


def test_missing_record_is_an_error_when_a_policy_is_expected():
    facts = make_facts(sts_txt=sts(status='nodata'), policy_fetch=failed_fetch('dns', 'NXDOMAIN'))
    result = run(facts, {'mode': 'enforce'})
    assert found(result) == [('policy-fetch-failed', 'error'), ('sts-record-missing', 'error')]
    assert result['drift'] == [{'field': 'mode', 'desired': 'enforce', 'live': None}]
    assert result['in_sync'] is False
    # rua alone does not ask for a policy.
    assert found(run(facts, {'rua': RUA})) == [('policy-fetch-failed', 'info'), ('sts-record-missing', 'info')]


def test_policy_served_before_its_record_is_verifiable():
    lookup = mx('mx1.example.com', 'backup.example.net')
    result = run(make_facts(sts_txt=no_sts(), mx_lookup=lookup))
    # Nothing fails for senders yet: the uncovered MX is worth knowing, not an error.
    assert found(result) == [('mx-not-covered', 'info'), ('mx-pattern-unused', 'info'), ('policy-unannounced', 'warning'),
                             ('sts-record-missing', 'info')]
    assert result['valid'] is False
    assert result['mode'] == 'enforce'
    assert result['policy'] == parse_policy(POLICY)
    assert result['id'] is None
    # With EXPECT the same uncovered MX is an error: this policy is about to be published.
    result = run(make_facts(sts_txt=no_sts(), mx_lookup=lookup), {'policy': POLICY_DICT})
    assert ('mx-not-covered', 'error') in found(result)
    assert result['drift'] == [{'field': 'id', 'desired': POLICY_ID, 'live': None}]


# --- max_age and mode advice ---

@pytest.mark.parametrize('mode, max_age, expected', [
    ('enforce', 0, [('max-age-short', 'warning')]),
    ('enforce', 3600, [('max-age-short', 'warning')]),
    ('enforce', 86399, [('max-age-short', 'warning')]),
    ('enforce', 86400, [('max-age-short-enforce', 'warning')]),
    ('enforce', 604799, [('max-age-short-enforce', 'warning')]),
    ('enforce', 604800, []),
    ('enforce', 31557600, []),
    ('testing', 3600, [('max-age-short', 'warning'), ('mode-testing', 'info')]),
    ('testing', 86400, [('mode-testing', 'info')]),
    ('none', 60, [('mode-none', 'info')]),
    ('none', 31557600, [('mode-none', 'info')]),
])
def test_max_age_advice(mode, max_age, expected):
    result = run(make_facts(policy_fetch=fetch(body=policy_body(mode, max_age=max_age))))
    assert found(result) == expected
    assert result['valid'] is True
    assert result['mode'] == mode


def test_mode_none_without_mx_patterns():
    body = render_policy({'mode': 'none', 'max_age': 86400}).encode('utf-8')
    result = run(make_facts(policy_fetch=fetch(body=body)))
    assert found(result) == [('mode-none', 'info')]
    assert [entry['covered'] for entry in result['mx']] == [False, False]
    assert result['valid'] is True


# --- MX coverage ---

@pytest.mark.parametrize('mode, severity', [('enforce', 'error'), ('testing', 'warning')])
def test_mx_not_covered(mode, severity):
    lookup = mx('mx1.example.com', 'a.mx.example.com', 'backup.example.net')
    result = run(make_facts(mx_lookup=lookup, policy_fetch=fetch(body=policy_body(mode))))
    expected = [('mx-not-covered', severity)] + ([('mode-testing', 'info')] if mode == 'testing' else [])
    assert found(result) == sorted(expected)
    assert 'MX backup.example.net matches no mx pattern of the %s policy' % mode in message(result, 'mx-not-covered')
    assert result['valid'] is True
    assert [entry['covered'] for entry in result['mx']] == [True, True, False]


def test_mx_not_covered_is_not_judged_in_mode_none():
    lookup = mx('mx1.example.com', 'backup.example.net')
    result = run(make_facts(mx_lookup=lookup, policy_fetch=fetch(body=policy_body('none'))))
    assert found(result) == [('mode-none', 'info')]
    assert [entry['covered'] for entry in result['mx']] == [True, False]


@pytest.mark.parametrize('hosts, covered', [
    (('a.b.example.com',), [False]),
    (('example.com',), [False]),
    (('mx1.example.com',), [True]),
    (('MX1.Example.COM.',), [True]),
])
def test_wildcard_covers_exactly_one_label(hosts, covered):
    body = policy_body(mx=('*.example.com',))
    result = run(make_facts(mx_lookup=mx(*hosts), policy_fetch=fetch(body=body)))
    assert [entry['covered'] for entry in result['mx']] == covered
    expected = [] if covered[0] else [('mx-not-covered', 'error'), ('mx-pattern-unused', 'info')]
    assert found(result) == expected


def test_pattern_unused():
    body = policy_body(mx=('mx1.example.com', '*.mx.example.com', 'mx9.example.org'))
    result = run(make_facts(policy_fetch=fetch(body=body)))
    assert found(result) == [('mx-pattern-unused', 'info')]
    assert message(result, 'mx-pattern-unused') == 'mx pattern mx9.example.org matches none of the MX hosts (mx1.example.com, a.mx.example.com)'


def test_no_mx_means_the_domain_itself():
    result = run(make_facts(mx_lookup=mx(status='nodata')))
    assert found(result) == [('mx-none', 'info'), ('mx-not-covered', 'error'), ('mx-pattern-unused', 'info'), ('mx-pattern-unused', 'info')]
    assert result['mx'][0]['host'] == 'example.com' and result['mx'][0]['preference'] == 0
    assert result['mx'][0]['covered'] is False
    body = policy_body(mx=('example.com',))
    probes = {'example.com': probe('example.com', starttls=False, cert=None)}
    result = run(make_facts(mx_lookup=mx(), policy_fetch=fetch(body=body), probes=probes))
    assert found(result) == [('mx-none', 'info'), ('mx-starttls-missing', 'error')]
    assert result['mx'][0]['covered'] is True


def test_null_mx():
    result = run(make_facts(mx_lookup=mx(('', 0))))
    assert found(result) == [('mx-null', 'info')]
    assert result['mx'] == []
    result = run(make_facts(mx_lookup=mx(('', 0), 'mx1.example.com')))
    assert found(result) == [('mx-null', 'warning'), ('mx-pattern-unused', 'info')]
    assert [entry['host'] for entry in result['mx']] == ['mx1.example.com']


def test_mx_lookup_failed():
    result = run(make_facts(mx_lookup=mx(status='error', error='SERVFAIL')))
    assert found(result) == [('mx-lookup-failed', 'error')]
    assert 'SERVFAIL' in message(result, 'mx-lookup-failed')
    assert result['mx'] == []
    assert result['valid'] is True


def test_domain_does_not_exist():
    result = run(make_facts(mx_lookup=mx(status='nxdomain')))
    assert found(result) == [('mx-nxdomain', 'error')]
    assert result['mx'] == []


# --- MX probes ---

@pytest.mark.parametrize('mode, severity', [('enforce', 'error'), ('testing', 'warning'), ('none', 'warning')])
def test_mx_without_starttls(mode, severity):
    probes = {'mx1.example.com': probe('mx1.example.com'), 'a.mx.example.com': probe('a.mx.example.com', starttls=False, tls_version=None, cert=None)}
    result = run(make_facts(policy_fetch=fetch(body=policy_body(mode)), probes=probes))
    assert ('mx-starttls-missing', severity) in found(result)
    assert [code for code, _severity in found(result) if code.startswith('mx-')] == ['mx-starttls-missing']
    assert 'MX a.mx.example.com does not offer STARTTLS' in message(result, 'mx-starttls-missing')
    assert result['valid'] is True
    assert host(result, 'a.mx.example.com')['starttls'] is False


MISMATCH = "hostname mismatch, certificate is not valid for 'a.mx.example.com'"


@pytest.mark.parametrize('mode, severity', [('enforce', 'error'), ('testing', 'warning')])
def test_mx_certificate_mismatch(mode, severity):
    bad = probe('a.mx.example.com', cert=certificate(['other.example.net'], valid=False, error=MISMATCH))
    probes = {'mx1.example.com': probe('mx1.example.com'), 'a.mx.example.com': bad}
    result = run(make_facts(policy_fetch=fetch(body=policy_body(mode)), probes=probes))
    assert [item for item in found(result) if item[0] != 'mode-testing'] == [('mx-certificate-invalid', severity)]
    assert MISMATCH in message(result, 'mx-certificate-invalid')
    assert result['valid'] is True
    entry = host(result, 'a.mx.example.com')
    assert entry['certificate_valid'] is False
    assert entry['names'] == ['other.example.net']
    assert entry['error'] == 'certificate: ' + MISMATCH
    assert host(result, 'mx1.example.com')['certificate_valid'] is True


def test_mx_certificate_problems_are_warnings_without_a_published_policy():
    bad = probe('mx1.example.com', cert=certificate(['mx1.example.com'], valid=False, error='self-signed certificate'))
    result = run(make_facts(sts_txt=no_sts(), probes={'mx1.example.com': bad}))
    assert found(result) == [('mx-certificate-invalid', 'warning'), ('policy-unannounced', 'warning'), ('sts-record-missing', 'info')]


def test_mx_certificate_enforced_while_the_record_is_broken():
    # Senders that cached the enforce policy keep applying it (RFC 8461 §5.1).
    bad = probe('mx1.example.com', cert=certificate(['mx1.example.com'], valid=False, error='certificate has expired'))
    result = run(make_facts(sts_txt=sts('v=STSv1; id=a;', 'v=STSv1; id=b;'), probes={'mx1.example.com': bad}))
    assert found(result) == [('mx-certificate-invalid', 'error'), ('sts-record-multiple', 'error')]


def test_mx_certificate_error_from_the_probe_error():
    bad = probe('mx1.example.com', error={'kind': 'certificate', 'message': 'unable to get local issuer certificate'}, cert=None)
    result = run(make_facts(probes={'mx1.example.com': bad}))
    assert found(result) == [('mx-certificate-invalid', 'error')]
    assert 'unable to get local issuer certificate' in message(result, 'mx-certificate-invalid')
    entry = host(result, 'mx1.example.com')
    assert entry['certificate_valid'] is False
    assert entry['error'] == 'certificate: unable to get local issuer certificate'


@pytest.mark.parametrize('mode, severity', [('enforce', 'error'), ('testing', 'warning')])
def test_mx_tls_handshake_failed(mode, severity):
    bad = probe('mx1.example.com', error={'kind': 'tls', 'message': 'no protocols available'}, tls_version=None, cert=None)
    result = run(make_facts(policy_fetch=fetch(body=policy_body(mode)), probes={'mx1.example.com': bad}))
    assert ('mx-tls-failed', severity) in found(result)
    assert host(result, 'mx1.example.com')['error'] == 'tls: no protocols available'


@pytest.mark.parametrize('error, starttls, severity', [
    ({'kind': 'connect', 'message': 'connection timed out (port 25 blocked?)'}, None, 'warning'),
    ({'kind': 'timeout', 'message': 'no greeting'}, None, 'warning'),
    ({'kind': 'dns', 'message': 'no address'}, None, 'warning'),
    ({'kind': 'smtp', 'message': '554 no service'}, None, 'warning'),
    ({'kind': 'smtp', 'message': '454 TLS not available'}, True, 'error'),
])
def test_mx_probe_failed(error, starttls, severity):
    bad = probe('mx1.example.com', error=error, starttls=starttls, tls_version=None, cert=None)
    result = run(make_facts(probes={'mx1.example.com': bad}))
    assert found(result) == [('mx-probe-failed', severity)]
    assert error['message'] in message(result, 'mx-probe-failed')
    assert host(result, 'mx1.example.com')['error'] == '%s: %s' % (error['kind'], error['message'])


def test_mx_certificate_expiring_and_expired():
    soon = probe('mx1.example.com', cert=certificate(['mx1.example.com'], not_after='2026-06-05T12:00:00Z'))
    result = run(make_facts(probes={'mx1.example.com': soon}))
    assert found(result) == [('mx-certificate-expiring', 'warning')]
    assert 'in 4.0 days' in message(result, 'mx-certificate-expiring')
    assert host(result, 'mx1.example.com')['certificate_valid'] is True
    gone = probe('mx1.example.com', cert=certificate(['mx1.example.com'], not_after='2026-05-31T00:00:00Z'))
    result = run(make_facts(probes={'mx1.example.com': gone}))
    assert found(result) == [('mx-certificate-invalid', 'error')]
    assert host(result, 'mx1.example.com')['certificate_valid'] is False
    assert run(make_facts(probes={'mx1.example.com': soon}), now=None)['findings'] == []


# --- TLS-RPT ---

def test_tlsrpt_missing():
    assert found(run(make_facts(tlsrpt_txt=no_tlsrpt()))) == [('tlsrpt-record-missing', 'info')]
    assert found(run(make_facts(tlsrpt_txt=tlsrpt(status='nodata')), {'rua': RUA})) == [('tlsrpt-record-missing', 'error')]
    testing = make_facts(tlsrpt_txt=no_tlsrpt(), policy_fetch=fetch(body=policy_body('testing')))
    assert found(run(testing)) == [('mode-testing', 'info'), ('tlsrpt-record-missing', 'warning')]
    # A testing policy served but not published is not in testing yet.
    testing['sts_txt'] = no_sts()
    assert found(run(testing)) == [('mode-testing', 'info'), ('policy-unannounced', 'warning'), ('sts-record-missing', 'info'),
                                   ('tlsrpt-record-missing', 'info')]


@pytest.mark.parametrize('records, code, text', [
    (('v=TLSRPTv1; rua=%s' % RUA, 'v=TLSRPTv1; rua=mailto:other@example.com'), 'tlsrpt-record-multiple', '2 v=TLSRPTv1 records'),
    (('v=TLSRPTv1; rua=http://example.com/report',), 'tlsrpt-record-invalid', 'must start with mailto: or https:'),
    (('v=TLSRPTv1',), 'tlsrpt-record-invalid', 'must have at least one field after v=TLSRPTv1'),
    (('v=TLSRPTv1; ruf=mailto:a@example.com',), 'tlsrpt-record-invalid', 'must have a rua= field'),
])
def test_tlsrpt_errors(records, code, text):
    result = run(make_facts(tlsrpt_txt=tlsrpt(*records)))
    assert found(result) == [(code, 'error')]
    assert text in message(result, code)
    assert result['valid'] is True


def test_tlsrpt_dns_error():
    result = run(make_facts(tlsrpt_txt=tlsrpt(status='error', error='timeout')))
    assert found(result) == [('tlsrpt-dns-error', 'error')]


def test_tlsrpt_cname_multistring_and_lookalike():
    record = tlsrpt(['v=TLSRPTv1; rua=mailto:tls', 'rpt@example.com'], cname=['_smtp._tls.reports.example'])
    result = run(make_facts(tlsrpt_txt=record), {'rua': RUA})
    assert found(result) == [('tlsrpt-record-cname', 'info'), ('tlsrpt-record-multistring', 'info')]
    assert result['in_sync'] is True
    assert result['records']['tlsrpt'] == ['v=TLSRPTv1; rua=%s' % RUA]
    result = run(make_facts(tlsrpt_txt=tlsrpt('v=tlsrptv1; rua=%s' % RUA)))
    assert found(result) == [('tlsrpt-record-ignored', 'warning'), ('tlsrpt-record-missing', 'info')]


# --- drift ---

@pytest.mark.parametrize('expect, drift', [
    ({'mode': 'testing'}, [{'field': 'mode', 'desired': 'testing', 'live': 'enforce'}]),
    ({'mx': ['mx1.example.com']}, [{'field': 'mx', 'desired': ['mx1.example.com'], 'live': ['mx1.example.com', '*.mx.example.com']}]),
    ({'max_age': 604800}, [{'field': 'max_age', 'desired': 604800, 'live': 1209600}]),
    ({'max_age': '604800'}, [{'field': 'max_age', 'desired': 604800, 'live': 1209600}]),
    ({'id': 'abc123'}, [{'field': 'id', 'desired': 'abc123', 'live': POLICY_ID}]),
    ({'rua': ['mailto:other@example.com']}, [{'field': 'rua', 'desired': ['mailto:other@example.com'], 'live': [RUA]}]),
    ({'rua': [RUA, 'https://r.example.com/tls']}, [{'field': 'rua', 'desired': [RUA, 'https://r.example.com/tls'], 'live': [RUA]}]),
])
def test_drift_per_field(expect, drift):
    result = run(make_facts(), expect)
    assert result['drift'] == drift
    assert result['in_sync'] is False
    assert result['findings'] == []


@pytest.mark.parametrize('expect', [
    {'mode': 'enforce'},
    {'mx': ['*.MX.example.com.', 'mx1.example.com', 'mx1.example.com']},
    {'mx': ['*.mx.example.com', 'MX1.example.com'], 'mode': None},
    {'max_age': 1209600},
    {'id': POLICY_ID},
    {'rua': RUA},
    {'policy': POLICY_DICT},
    {'policy': POLICY.decode('utf-8')},
    {'policy': POLICY, 'mode': 'enforce', 'mx': ['*.mx.example.com', 'mx1.example.com'], 'max_age': 1209600, 'rua': [RUA]},
])
def test_in_sync(expect):
    result = run(make_facts(), expect)
    assert result['drift'] == []
    assert result['in_sync'] is True


def test_mx_drift_when_a_pattern_is_missing_live():
    result = run(make_facts(), {'mx': ['mx1.example.com', '*.mx.example.com', 'mx2.example.com']})
    assert result['drift'] == [{'field': 'mx', 'desired': ['mx1.example.com', '*.mx.example.com', 'mx2.example.com'],
                                'live': ['mx1.example.com', '*.mx.example.com']}]


def test_served_file_differs_while_the_txt_id_matches():
    # The same policy with LF line ends: same fields, different bytes, so a different id than the one published.
    served = POLICY.replace(b'\r\n', b'\n')
    result = run(make_facts(policy_fetch=fetch(body=served)), {'policy': POLICY_DICT})
    assert result['drift'] == [{'field': 'policy', 'desired': POLICY_ID, 'live': policy_id(served)}]
    assert result['in_sync'] is False
    assert result['valid'] is True
    # Without policy in EXPECT, the fields alone are in sync.
    assert run(make_facts(policy_fetch=fetch(body=served)), {'id': POLICY_ID, 'mode': 'enforce'})['in_sync'] is True


def test_new_policy_served_old_id_published():
    new = {'mode': 'enforce', 'mx': ['mx1.example.com', '*.mx.example.com'], 'max_age': 2419200}
    result = run(make_facts(policy_fetch=fetch(body=render_policy(new).encode('utf-8'))), {'policy': new})
    assert result['drift'] == [{'field': 'id', 'desired': policy_id(new), 'live': POLICY_ID}]


def test_drift_live_none_when_nothing_valid_is_found():
    facts = make_facts(sts_txt=no_sts(), tlsrpt_txt=no_tlsrpt(), policy_fetch=failed_fetch('dns', 'NXDOMAIN'))
    result = run(facts, {'policy': POLICY_DICT, 'rua': [RUA]})
    assert result['drift'] == [
        {'field': 'mode', 'desired': 'enforce', 'live': None},
        {'field': 'mx', 'desired': ['mx1.example.com', '*.mx.example.com'], 'live': None},
        {'field': 'max_age', 'desired': 1209600, 'live': None},
        {'field': 'id', 'desired': POLICY_ID, 'live': None},
        {'field': 'policy', 'desired': POLICY_ID, 'live': None},
        {'field': 'rua', 'desired': [RUA], 'live': None},
    ]
    assert found(result) == [('policy-fetch-failed', 'error'), ('sts-record-missing', 'error'), ('tlsrpt-record-missing', 'error')]


def test_invalid_live_record_is_drift_even_with_the_right_id_inside():
    result = run(make_facts(sts_txt=sts('v=STSv1; id=%s;' % POLICY_ID, 'v=STSv1; id=%s;' % POLICY_ID)), {'id': POLICY_ID})
    assert result['drift'] == [{'field': 'id', 'desired': POLICY_ID, 'live': None}]


@pytest.mark.parametrize('expect', [None, {}, {'mode': None, 'rua': None}])
def test_no_expect_means_in_sync_none(expect):
    result = run(make_facts(sts_txt=no_sts()), expect)
    assert result['in_sync'] is None
    assert result['drift'] == []
    assert found(result) == [('policy-unannounced', 'warning'), ('sts-record-missing', 'info')]


# --- EXPECT validation ---

def test_normalize_expect():
    assert normalize_expect(None) == {}
    assert normalize_expect({'mode': None}) == {}
    assert normalize_expect({'mx': 'MX1.Example.com.', 'max_age': '86400', 'rua': 'mailto:a@example.com', 'mode': 'testing'}) == {
        'mode': 'testing', 'mx': ['mx1.example.com'], 'max_age': 86400, 'rua': ['mailto:a@example.com']}
    assert normalize_expect({'policy': POLICY_DICT}) == {
        'mode': 'enforce', 'mx': ['mx1.example.com', '*.mx.example.com'], 'max_age': 1209600, 'id': POLICY_ID, 'policy': POLICY_ID}
    text = 'version: STSv1\nmode: none\nmax_age: 60\n'
    assert normalize_expect({'policy': text, 'mx': []}) == {'mode': 'none', 'mx': [], 'max_age': 60, 'id': policy_id(text), 'policy': policy_id(text)}
    assert normalize_expect({'mode': 'none', 'mx': []}) == {'mode': 'none', 'mx': []}
    # Without a mode, an empty list is allowed: only a mode none policy can match it.
    assert normalize_expect({'mx': []}) == {'mx': []}


@pytest.mark.parametrize('expect', [
    {'policy': POLICY_DICT, 'rua': RUA},
    {'policy': POLICY.decode('utf-8')},
    {'id': POLICY_ID, 'mx': ['MX1.example.com.', '*.mx.example.com']},
    {},
])
def test_normalized_expect_can_be_passed_again(expect):
    # The validator normalizes every EXPECT before gathering facts, then hands the result to evaluate().
    normalized = normalize_expect(expect)
    assert normalize_expect(normalized) is normalized
    assert run(make_facts(), normalized) == run(make_facts(), expect)
    if expect:
        assert run(make_facts(), normalized)['in_sync'] is True


@pytest.mark.parametrize('expect, text', [
    ('enforce', "expect 'enforce': must be a mapping with any of mode, mx, max_age, id, policy, rua, state"),
    ({'modes': 'enforce'}, "expect 'modes': unknown key; allowed: mode, mx, max_age, id, policy, rua, state"),
    ({'mode': 'Enforce'}, "expect.mode 'Enforce': must be one of enforce, testing, none"),
    ({'mode': 1}, "expect.mode 1: must be one of enforce, testing, none"),
    ({'mx': ['*.*.example.com']}, "expect.mx '*.*.example.com': a wildcard may only be the whole left-most label"),
    ({'mx': {'a': 1}}, "expect.mx {'a': 1}: must be a list of mx patterns"),
    ({'mx': [], 'mode': 'enforce'}, 'expect.mx []: at least one mx pattern is required unless mode is none'),
    ({'max_age': -1}, "expect.max_age -1: must be plain digits (at most 10), from 0 to 31557600"),
    ({'max_age': 31557601}, "expect.max_age 31557601: must be plain digits (at most 10), from 0 to 31557600"),
    ({'max_age': True}, "expect.max_age True: must be plain digits (at most 10), from 0 to 31557600"),
    ({'max_age': '1w'}, "expect.max_age '1w': must be plain digits (at most 10), from 0 to 31557600"),
    ({'id': 'a-b'}, "expect.id 'a-b': must be 1 to 32 letters or digits"),
    ({'id': 'abc', 'policy': POLICY_DICT}, "expect.id 'abc': give id or policy, not both (the id of a policy is derived from it)"),
    ({'policy': 'mode: enforce\n'}, "expect.policy 'version': required field is missing"),
    ({'policy': {'mode': 'enforce', 'max_age': 86400}}, 'expect.policy.mx []: at least one mx pattern is required unless mode is none'),
    ({'policy': {'mode': 'enforce', 'mx': ['mx_1.example.com'], 'max_age': 86400}}, "expect.policy.mx 'mx_1.example.com': labels must be"),
    ({'policy': 'version: STSv1\nmode: none\n\nmax_age: 1\n'}, "expect.policy line 3 '': blank lines are not allowed"),
    ({'policy': 42}, 'expect.policy 42: must be a dict (as render_policy takes) or the policy text'),
    ({'policy': POLICY_DICT, 'mode': 'testing'}, "expect.mode 'testing': contradicts expect.policy, which has 'enforce'"),
    ({'policy': POLICY_DICT, 'mx': ['mx1.example.com']}, "expect.mx ['mx1.example.com']: contradicts expect.policy"),
    ({'policy': POLICY_DICT, 'max_age': 86400}, "expect.max_age 86400: contradicts expect.policy, which has 1209600"),
    ({'rua': 'http://example.com/'}, "expect.rua 'http://example.com/': must start with mailto: or https:"),
    ({'rua': []}, 'expect.rua []: must be one or more mailto: or https: URIs'),
])
def test_expect_errors(expect, text):
    with pytest.raises(ValidationError) as err:
        normalize_expect(expect)
    assert str(err.value).startswith(text)
    # evaluate validates EXPECT before it reads a single fact.
    with pytest.raises(ValidationError) as err:
        evaluate({}, expect, NOW)
    assert str(err.value).startswith(text)


# --- every code is documented ---

def emitted_codes():
    """Every finding code _checks.py can emit: the first argument of each ``finding(...)`` or ``fail(...)`` call,
    and the codes of the max_age advice the checks share with the record modules."""
    codes = set(code for code in re.findall(r"'(max-age-[a-z-]+)'", inspect.getsource(max_age_advice)))
    with open(_checks.__file__) as source:
        tree = ast.parse(source.read())
    for node in ast.walk(tree):
        name = getattr(node.func, 'id', None) if isinstance(node, ast.Call) else None
        if name in ('finding', 'fail') and node.args:
            for leaf in ast.walk(node.args[0]):
                # Codes have a hyphen; the other strings in those arguments ('certificate', 'kind') do not.
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str) and '-' in leaf.value:
                    codes.add(leaf.value)
    return codes


def test_every_emitted_code_is_in_findings_and_the_docs():
    codes = emitted_codes()
    assert len(codes) > 30
    assert codes == set(FINDINGS)
    with open(os.path.join(REPO, 'docs', 'findings.md')) as doc:
        headings = set(re.findall(r'^### `([a-z0-9-]+)`$', doc.read(), re.MULTILINE))
    assert headings == set(FINDINGS)


def test_findings_table_is_well_formed():
    for code, (severity, description) in FINDINGS.items():
        assert re.fullmatch(r'[a-z0-9]+(-[a-z0-9]+)*', code)
        words = set(re.findall(r'\b(error|warning|info)\b', severity))
        assert words and words <= set(SEVERITIES), code
        assert description.endswith('.')


# --- a policy nobody fetches; the expiry window; a named MX probed on its own ---

def test_unannounced_policy_is_a_warning_only_without_an_expected_policy():
    # A first rollout serves the policy before the record: worth a warning in a drift run, never an error by itself.
    result = run(make_facts(sts_txt=no_sts()))
    assert found(result) == [('policy-unannounced', 'warning'), ('sts-record-missing', 'info')]
    assert '_mta-sts.example.com has no v=STSv1 record' in message(result, 'policy-unannounced')
    assert result['valid'] is False and result['mode'] == 'enforce'
    # Expecting a policy: the missing record is the error, and says it all.
    assert found(run(make_facts(sts_txt=no_sts()), {'mode': 'enforce'})) == [('sts-record-missing', 'error')]
    # A DNS error may hide the record: not "unannounced".
    assert 'policy-unannounced' not in dict(found(run(make_facts(sts_txt=sts(status='error', error='SERVFAIL')))))
    # A broken record still announces the policy (senders that cached it keep using it).
    assert 'policy-unannounced' not in dict(found(run(make_facts(sts_txt=sts('v=STSv1; id=a-b;')))))


SOON = {'names': ['mta-sts.example.com'], 'not_after': '2026-06-10T00:00:00Z', 'issuer': 'CN=Test CA'}


@pytest.mark.parametrize('days, expected', [
    (14, [('policy-certificate-expiring', 'warning')]),
    (9, [('policy-certificate-expiring', 'warning')]),
    (8, []),
    (0, []),
])
def test_expiry_warning_window(days, expected):
    # The certificate has 8.5 days left at NOW.
    assert found(evaluate(make_facts(policy_fetch=fetch(cert=SOON)), None, NOW, days)) == expected


@pytest.mark.parametrize('days', [-1, 1.5, '14', True, None])
def test_bad_expiry_warning_window(days):
    with pytest.raises(ValidationError, match='expiry_warning_days'):
        evaluate(make_facts(), None, NOW, days)


def test_named_host_probe_is_judged_as_an_enforce_mx():
    result = probe_result('mx1.example.com', probe('mx1.example.com', starttls=False, tls_version=None, cert=None), NOW)
    assert [(f['code'], f['severity']) for f in result['findings']] == [('mx-starttls-missing', 'error')]
    assert result['host'] == 'mx1.example.com' and result['starttls'] is False and result['addresses'] == ['127.0.0.21']
    soon = probe('mx1.example.com', cert=certificate(['mx1.example.com'], not_after='2026-06-05T12:00:00Z'))
    assert [f['code'] for f in probe_result('mx1.example.com', soon, NOW)['findings']] == ['mx-certificate-expiring']
    assert probe_result('mx1.example.com', soon, NOW, expiry_warning_days=3)['findings'] == []
    clean = probe_result('mx1.example.com', probe('mx1.example.com'), NOW)
    assert clean['findings'] == [] and clean['certificate_valid'] is True and clean['names'] == ['mx1.example.com']


def test_expect_state_absent_wants_no_record_at_either_name():
    assert normalize_expect({'state': 'absent', 'policy': POLICY_DICT}) == {'state': 'absent'}
    assert normalize_expect({'state': 'present', 'mode': 'enforce'}) == {'mode': 'enforce'}
    live = run(make_facts(), {'state': 'absent'})
    assert live['in_sync'] is False and live['drift'] == [{'field': 'state', 'desired': 'absent', 'live': 'present'}]
    # Not asking for a policy: a missing record is no error.
    gone = run(make_facts(sts_txt=no_sts(), tlsrpt_txt=no_tlsrpt(), policy_fetch=failed_fetch('dns', 'no address')), {'state': 'absent'})
    assert gone['in_sync'] is True and [code for code, severity in found(gone) if severity == 'error'] == []
    with pytest.raises(ValidationError, match="expect.state 'gone': must be present or absent"):
        normalize_expect({'state': 'gone'})


def test_result_carries_the_policy_host_certificate_for_reports():
    assert run(make_facts())['policy_certificate'] == {'names': ['mta-sts.example.com'], 'not_after': LATER, 'issuer': 'CN=Test CA'}
    assert run(make_facts(policy_fetch=failed_fetch('certificate', 'certificate has expired')))['policy_certificate'] is None
