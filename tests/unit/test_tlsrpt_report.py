"""The TLS-RPT report parser: every input form, every tolerance and every rejected rule, through
report_bytes and parse_report; and the corpus helpers the other report tests build on."""

import base64
import copy
import email
import email.policy
import gzip
import json
import os
import tracemalloc

import pytest
import yaml

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import (
    DEFAULT_MAX_BYTES, parse_report, report_bytes,
)

from tests.unit import tlsrpt_corpus as corpus


def error_of(value, **kwargs):
    with pytest.raises(ValidationError) as err:
        parse_report(value, **kwargs)
    return str(err.value)


def slurp(data):
    """What ansible.builtin.slurp returns as ``content``."""
    return base64.b64encode(data).decode('ascii')


# -- the shipped corpus ------------------------------------------------------------------------

def test_rfc8460_example_normalised_in_full():
    assert parse_report(corpus.raw('rfc8460-example')) == {
        'organization_name': 'Company-X',
        'report_id': '5065427c-23d3-47ca-b6e0-946ea0e8c4be',
        'contact_info': 'sts-reporting@company-x.example',
        'date_range': {'start': '2016-04-01T00:00:00Z', 'end': '2016-04-01T23:59:59Z'},
        'policies': [{
            'policy_type': 'sts',
            'policy_string': ['version: STSv1', 'mode: testing', 'mx: *.mail.company-y.example', 'max_age: 86400'],
            'policy_domain': 'company-y.example',
            'mx_host': ['*.mail.company-y.example'],
            'successful_sessions': 5326,
            'failed_sessions': 303,
            'failure_details': [{
                'result_type': 'certificate-expired', 'failed_sessions': 100,
                'sending_mta_ip': '2001:db8:abcd:0012::1', 'receiving_mx_hostname': 'mx1.mail.company-y.example',
                'receiving_mx_helo': None, 'receiving_ip': None, 'additional_information': None,
                'failure_reason_code': None,
            }, {
                'result_type': 'starttls-not-supported', 'failed_sessions': 200,
                'sending_mta_ip': '2001:db8:abcd:0013::1', 'receiving_mx_hostname': 'mx2.mail.company-y.example',
                'receiving_mx_helo': None, 'receiving_ip': '203.0.113.56',
                'additional_information': 'https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported ',
                'failure_reason_code': None,
            }, {
                'result_type': 'validation-failure', 'failed_sessions': 3,
                'sending_mta_ip': '198.51.100.62', 'receiving_mx_hostname': 'mx-backup.mail.company-y.example',
                'receiving_mx_helo': None, 'receiving_ip': '203.0.113.58', 'additional_information': None,
                'failure_reason_code': 'X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED',
            }],
        }],
    }


@pytest.mark.parametrize('name, organization, start, policy_type, domain, mx_host, successful, failed, details', [
    ('google-sts', 'Google Inc.', '2026-11-01T00:00:00Z', 'sts', 'example.com', ['mail.example.com'], 1180, 2, 1),
    ('microsoft-sts', 'Microsoft Corporation', '2026-11-01T00:00:00Z', 'sts', 'example.com', ['mail.example.com'], 450, 3, 1),
    ('tlsa-dane', 'DANE Sender Mail', '2026-11-01T00:00:00Z', 'tlsa', 'example.net', ['mx1.example.net'], 310, 5, 2),
    ('no-policy-found', 'Small Sender Co', '2026-11-01T00:00:00Z', 'no-policy-found', 'example.net', [], 77, 0, 0),
    ('mx-host-string', 'Relay Networks', '2026-11-02T00:00:00Z', 'sts', 'example.net', ['*.example.net'], 640, 0, 0),
    ('failure-error-code', 'Legacy Mail Systems', '2026-11-02T00:00:00Z', 'sts', 'example.com', ['mail.example.com'], 96, 4, 2),
    ('minimal', 'Minimal Sender', '2026-11-03T00:00:00Z', 'sts', 'example.com', [], 10, 0, 0),
    ('many-failures', 'Busy Sender Inc.', '2026-11-03T00:00:00Z', 'sts', 'example.com', ['mail.example.com'], 25000, 794, 200),
])
def test_every_shipped_report_parses(name, organization, start, policy_type, domain, mx_host, successful, failed, details):
    parsed = parse_report(corpus.raw(name))
    assert (parsed['organization_name'], parsed['date_range']['start']) == (organization, start)
    [policy] = parsed['policies']
    assert (policy['policy_type'], policy['policy_domain'], policy['mx_host']) == (policy_type, domain, mx_host)
    assert (policy['successful_sessions'], policy['failed_sessions'], len(policy['failure_details'])) == (successful, failed, details)


def test_the_corpus_lists_every_shipped_report():
    shipped = sorted(name[:-len('.json')] for name in os.listdir(corpus.CORPUS_DIR) if name.endswith('.json'))
    assert shipped == sorted(corpus.NAMES)


# -- input forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize('form', [
    lambda data: data,                                        # bytes, as read from a .json file
    bytearray,
    lambda data: data.decode('utf-8'),                        # JSON text
    lambda data: '\n  ' + data.decode('utf-8'),               # JSON text after white space
    lambda data: b'\xef\xbb\xbf' + data,                      # a UTF-8 byte order mark
    gzip.compress,                                            # a .json.gz file
    slurp,                                                    # slurp of a .json file
    lambda data: slurp(gzip.compress(data)),                  # slurp of a .json.gz file
    lambda data: base64.encodebytes(gzip.compress(data)).decode('ascii'),   # base64 in 76-column lines
    json.loads,                                               # already loaded (from_json, a module's result)
], ids=['bytes', 'bytearray', 'text', 'text-after-space', 'bom', 'gzip', 'base64-json', 'base64-gzip',
        'base64-lines', 'dict'])
def test_every_input_form_gives_the_same_report(form):
    data = corpus.raw('google-sts')
    assert parse_report(form(data)) == parse_report(data)


def test_concatenated_gzip_members_are_read_in_turn():
    data = corpus.raw('minimal')
    half = len(data) // 2
    joined = gzip.compress(data[:half]) + gzip.compress(data[half:]) + b'\0' * 8
    assert report_bytes(joined) == data


def test_report_bytes_returns_the_json_document_undecoded():
    data = corpus.raw('tlsa-dane')
    assert report_bytes(gzip.compress(data)) == data
    assert report_bytes(slurp(data)) == data
    assert report_bytes(data.decode('utf-8')) == data


def test_the_cap_is_inclusive_for_gzip_plain_bytes_and_text():
    data = corpus.raw('many-failures')
    size = len(data)
    assert report_bytes(gzip.compress(data), max_bytes=size) == data
    assert report_bytes(data, max_bytes=size) == data
    assert report_bytes(data.decode('utf-8'), max_bytes=size) == data
    with pytest.raises(ValidationError) as err:
        report_bytes(gzip.compress(data), max_bytes=size - 1)
    assert err.value.rule.startswith('decompresses to more than %d bytes, the cap' % (size - 1))
    assert error_of(data, max_bytes=size - 1) == "report '<bytes, %d bytes>': is %d bytes, more than the cap of %d bytes" % (
        size, size, size - 1)
    assert error_of(data.decode('utf-8'), max_bytes=size - 1) == (
        "report '<text, %d characters>': is %d bytes, more than the cap of %d bytes" % (size, size, size - 1))


def test_a_gzip_bomb_is_refused_at_the_cap_without_inflating_it():
    bomb = corpus.gzip_bomb(1024 ** 3)
    assert len(bomb) < 2 * 1024 ** 2
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as err:
            report_bytes(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(err.value) == (
        "report '<gzip data, %d bytes>': decompresses to more than 10485760 bytes, the cap; reading stopped there "
        "(a gzip bomb, or a report bigger than the cap allows)" % len(bomb))
    # Inflating it whole would take 1 GiB; reading up to the cap takes the cap and a slice.
    assert peak < 3 * DEFAULT_MAX_BYTES
    with pytest.raises(ValidationError, match='more than 4096 bytes, the cap'):
        parse_report(slurp(corpus.gzip_bomb(3 * 1024 ** 2)), max_bytes=4096)


# -- tolerances ----------------------------------------------------------------------------------

def minimal(change=None):
    document = corpus.report('minimal')
    if change:
        change(document)
    return document


def policy_of(document):
    return document['policies'][0]


def with_detail(**detail):
    def change(document):
        entry = {'result-type': 'certificate-expired', 'failed-session-count': 1}
        entry.update(detail)
        policy_of(document)['failure-details'] = [entry]
    return change


def first_detail(document):
    return parse_report(document)['policies'][0]['failure_details'][0]


def test_missing_optional_fields_are_none_or_empty():
    parsed = parse_report(minimal())
    assert parsed['contact_info'] is None
    assert parsed['policies'][0]['policy_string'] == []
    assert parsed['policies'][0]['mx_host'] == []
    assert parsed['policies'][0]['failure_details'] == []
    assert first_detail(minimal(with_detail())) == {
        'result_type': 'certificate-expired', 'failed_sessions': 1, 'sending_mta_ip': None,
        'receiving_mx_hostname': None, 'receiving_mx_helo': None, 'receiving_ip': None,
        'additional_information': None, 'failure_reason_code': None}


def test_json_null_counts_as_missing_for_optional_fields():
    def change(document):
        document['contact-info'] = None
        policy_of(document)['policy'].update({'policy-string': None, 'mx-host': None})
        policy_of(document)['failure-details'] = None
    parsed = parse_report(minimal(change))
    assert (parsed['contact_info'], parsed['policies'][0]['policy_string'], parsed['policies'][0]['mx_host'],
            parsed['policies'][0]['failure_details']) == (None, [], [], [])
    assert first_detail(minimal(with_detail(**{'receiving-ip': None})))['receiving_ip'] is None


def test_mx_host_as_a_string_or_a_list():
    def mx(value):
        return minimal(lambda document: policy_of(document)['policy'].update({'mx-host': value}))
    assert parse_report(mx('*.example.net'))['policies'][0]['mx_host'] == ['*.example.net']
    assert parse_report(mx(['a.example.net', 'b.example.net']))['policies'][0]['mx_host'] == ['a.example.net', 'b.example.net']


def test_value_names_sent_as_keys_are_read():
    document = minimal(lambda document: policy_of(document)['policy'].update({'mx-host-pattern': '*.example.com'}))
    assert parse_report(document)['policies'][0]['mx_host'] == ['*.example.com']
    detail = first_detail(minimal(with_detail(**{'additional-info-uri': 'https://sender.example/why'})))
    assert detail['additional_information'] == 'https://sender.example/why'


def test_failure_error_code_is_read_as_failure_reason_code():
    assert first_detail(minimal(with_detail(**{'failure-error-code': 'X509_V_ERR_CERT_HAS_EXPIRED'})))[
        'failure_reason_code'] == 'X509_V_ERR_CERT_HAS_EXPIRED'
    both = with_detail(**{'failure-reason-code': 'the schema name', 'failure-error-code': 'the alias'})
    assert first_detail(minimal(both))['failure_reason_code'] == 'the schema name'
    parsed = parse_report(corpus.raw('failure-error-code'))
    assert [d['failure_reason_code'] for d in parsed['policies'][0]['failure_details']] == [
        'X509_V_ERR_CERT_HAS_EXPIRED', 'X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY']


def test_unknown_keys_are_ignored_and_unknown_result_types_kept():
    def change(document):
        document['x-extension'] = {'anything': [1, 2]}
        policy_of(document)['policy']['x-policy-note'] = 'ignored'
        policy_of(document)['summary']['x-total'] = 'ignored'
    assert parse_report(minimal(change)) == parse_report(minimal())
    assert first_detail(minimal(with_detail(**{'result-type': 'not-yet-registered', 'x-detail': 1})))[
        'result_type'] == 'not-yet-registered'
    many = parse_report(corpus.raw('many-failures'))['policies'][0]['failure_details']
    assert 'sts-policy-expired' in {detail['result_type'] for detail in many}


def test_policy_domain_is_lower_case_without_the_final_dot():
    document = minimal(lambda document: policy_of(document)['policy'].update({'policy-domain': 'Example.COM.'}))
    assert parse_report(document)['policies'][0]['policy_domain'] == 'example.com'


@pytest.mark.parametrize('start, end, normalised', [
    ('2026-11-01T02:00:00+02:00', '2026-11-02T01:59:59+02:00', ('2026-11-01T00:00:00Z', '2026-11-01T23:59:59Z')),
    ('2026-10-31T19:00:00-05:00', '2026-11-01T18:59:59-05:00', ('2026-11-01T00:00:00Z', '2026-11-01T23:59:59Z')),
    ('2026-11-01T00:00:00.000Z', '2026-11-01T23:59:59.999999Z', ('2026-11-01T00:00:00Z', '2026-11-01T23:59:59Z')),
    ('2026-11-01t00:00:00z', '2026-11-01T23:59:59+00:00', ('2026-11-01T00:00:00Z', '2026-11-01T23:59:59Z')),
    ('2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z', ('2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z')),
    ('2024-02-29T23:30:00-01:00', '2024-03-01T23:59:59Z', ('2024-03-01T00:30:00Z', '2024-03-01T23:59:59Z')),
])
def test_dates_are_rfc_3339_converted_to_utc(start, end, normalised):
    document = minimal(lambda document: document['date-range'].update({'start-datetime': start, 'end-datetime': end}))
    parsed = parse_report(document)['date_range']
    assert (parsed['start'], parsed['end']) == normalised


def test_an_empty_policies_list_is_kept():
    assert parse_report(minimal(lambda document: document.update(policies=[])))['policies'] == []


def test_the_field_names_the_whole_report_in_its_errors():
    assert error_of(b'[]', field='paths[0]/a.json') == "paths[0]/a.json 'list': must be a JSON object (RFC 8460 §4.4)"


# -- rejected ------------------------------------------------------------------------------------

MALFORMED = [
    ('negative-count.json', "policies[0].summary.total-failure-session-count -3: must be a non-negative integer"),
    ('float-count.json', "policies[0].summary.total-successful-session-count 10.0: must be a non-negative integer"),
    ('string-count.json', "policies[0].summary.total-successful-session-count '10': must be a non-negative integer"),
    ('bool-count.json', "policies[0].summary.total-failure-session-count True: must be a non-negative integer"),
    ('string-failed-session-count.json',
     "policies[0].failure-details[0].failed-session-count '1': must be a non-negative integer"),
    ('missing-policies.json', "policies None: is required (RFC 8460 §4.4)"),
    ('bad-date.json', "date-range.start-datetime '2026-11-03 00:00': must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z"),
    ('end-before-start.json',
     "date-range.end-datetime '2026-11-02T23:59:59Z': must not be before start-datetime 2026-11-03T00:00:00Z"),
    ('missing-organization-name.json', "organization-name None: is required (RFC 8460 §4.4)"),
    ('missing-report-id.json', "report-id None: is required (RFC 8460 §4.4)"),
    ('unknown-policy-type.json', "policies[0].policy.policy-type 'dane': must be one of sts, tlsa, no-policy-found"),
    ('missing-summary.json', "policies[0].summary None: is required (RFC 8460 §4.4)"),
    ('not-json.json', "report '<bytes, 76 bytes>': is not JSON (Expecting value: line 2 column 1 (char 76))"),
    ('not-object.json', "report 'list': must be a JSON object (RFC 8460 §4.4)"),
    ('not-utf8.bin', "report '<bytes, 423 bytes>': is not UTF-8 (byte 0xe9 at offset 29)"),
]


@pytest.mark.parametrize('name, message', MALFORMED)
def test_every_malformed_corpus_file_is_refused_naming_the_field_and_the_rule(name, message):
    data = corpus.raw('bad/' + name)
    assert error_of(data) == message
    # The same rule holds whatever the report came wrapped in.
    assert error_of(slurp(gzip.compress(data))).partition(':')[2] == message.partition(':')[2]


def test_every_malformed_corpus_file_has_a_case():
    assert sorted(name for name, _message in MALFORMED) == sorted(os.listdir(corpus.BAD_DIR))


DELETE = object()
DETAILS = ('policies', 0, 'failure-details')


def changed(path, value):
    """The minimal report with the value at ``path`` (keys and list indexes) replaced, or deleted when value is DELETE."""
    document = minimal()
    target = document
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize('path, value, message', [
    (('organization-name',), '', "organization-name '': must not be empty"),
    (('organization-name',), 7, "organization-name 7: must be a string"),
    (('report-id',), ['x'], "report-id ['x']: must be a string"),
    (('contact-info',), {'a': 1}, "contact-info {'a': 1}: must be a string"),
    (('date-range',), DELETE, "date-range None: is required (RFC 8460 §4.4)"),
    (('date-range',), '2026-11-01', "date-range '2026-11-01': must be a JSON object"),
    (('date-range', 'end-datetime'), DELETE, "date-range.end-datetime None: is required (RFC 8460 §4.4)"),
    (('date-range', 'start-datetime'), 1793491200, "date-range.start-datetime 1793491200: must be a string"),
    (('date-range', 'start-datetime'), '2026-13-01T00:00:00Z',
     "date-range.start-datetime '2026-13-01T00:00:00Z': must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z"),
    (('date-range', 'start-datetime'), '2026-02-30T00:00:00Z',
     "date-range.start-datetime '2026-02-30T00:00:00Z': must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z"),
    (('date-range', 'start-datetime'), '2026-11-01T00:00:00',
     "date-range.start-datetime '2026-11-01T00:00:00': must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z"),
    (('date-range', 'start-datetime'), '2026-11-01T00:00:00+0200',
     "date-range.start-datetime '2026-11-01T00:00:00+0200': must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z"),
    (('date-range', 'start-datetime'), '2026-11-01T24:00:00Z',
     "date-range.start-datetime '2026-11-01T24:00:00Z': must be an RFC 3339 date-time such as 2016-04-01T00:00:00Z"),
    (('policies',), {'policy': {}}, "policies 'object': must be a list"),
    (('policies', 0), 'sts', "policies[0] 'sts': must be a JSON object"),
    (('policies', 0, 'policy'), DELETE, "policies[0].policy None: is required (RFC 8460 §4.4)"),
    (('policies', 0, 'policy', 'policy-type'), DELETE, "policies[0].policy.policy-type None: is required (RFC 8460 §4.4)"),
    (('policies', 0, 'policy', 'policy-type'), 'STS', "policies[0].policy.policy-type 'STS': must be one of sts, tlsa, no-policy-found"),
    (('policies', 0, 'policy', 'policy-domain'), DELETE, "policies[0].policy.policy-domain None: is required (RFC 8460 §4.4)"),
    (('policies', 0, 'policy', 'policy-domain'), '.', "policies[0].policy.policy-domain '.': must be a domain name"),
    (('policies', 0, 'policy', 'policy-string'), 'version: STSv1',
     "policies[0].policy.policy-string 'version: STSv1': must be a list of strings"),
    (('policies', 0, 'policy', 'policy-string'), ['mode: testing', 3], "policies[0].policy.policy-string[1] 3: must be a string"),
    (('policies', 0, 'policy', 'mx-host'), 25, "policies[0].policy.mx-host 25: must be a list of strings or a string"),
    (('policies', 0, 'summary', 'total-successful-session-count'), DELETE,
     "policies[0].summary.total-successful-session-count None: is required (RFC 8460 §4.4)"),
    (('policies', 0, 'summary', 'total-failure-session-count'), 1e3,
     "policies[0].summary.total-failure-session-count 1000.0: must be a non-negative integer"),
    (DETAILS, {'result-type': 'x'}, "policies[0].failure-details {'result-type': 'x'}: must be a list"),
    (DETAILS, ['certificate-expired'], "policies[0].failure-details[0] 'certificate-expired': must be a JSON object"),
    (DETAILS, [{'failed-session-count': 1}], "policies[0].failure-details[0].result-type None: is required (RFC 8460 §4.4)"),
    (DETAILS, [{'result-type': 'certificate-expired'}],
     "policies[0].failure-details[0].failed-session-count None: is required (RFC 8460 §4.4)"),
    (DETAILS, [{'result-type': 'certificate-expired', 'failed-session-count': -1}],
     "policies[0].failure-details[0].failed-session-count -1: must be a non-negative integer"),
    (DETAILS, [{'result-type': 'certificate-expired', 'failed-session-count': 1, 'receiving-ip': 3232235777}],
     "policies[0].failure-details[0].receiving-ip 3232235777: must be a string"),
])
def test_each_rule_names_the_json_path(path, value, message):
    assert error_of(changed(path, value)) == message


def test_the_first_bad_policy_is_named_by_its_index():
    document = minimal()
    second = copy.deepcopy(policy_of(document))
    second['summary']['total-failure-session-count'] = -3
    document['policies'].append(second)
    assert error_of(document) == "policies[1].summary.total-failure-session-count -3: must be a non-negative integer"


@pytest.mark.parametrize('value, message', [
    (None, "report 'NoneType': must be a string or bytes: must be JSON text (starting with \"{\"), or base64 of JSON "
           "or of gzip (what ansible.builtin.slurp returns)"),
    (12, "report 'int': must be a string or bytes: must be JSON text (starting with \"{\"), or base64 of JSON "
         "or of gzip (what ansible.builtin.slurp returns)"),
    ('organization-name: x', "report '<text, 20 characters>': must be JSON text (starting with \"{\"), or base64 of JSON "
                             "or of gzip (what ansible.builtin.slurp returns)"),
    ('aGVsbG8gd29ybGQ=', "report '<text, 16 characters>': is base64 of neither JSON nor gzip: must be JSON text "
                         "(starting with \"{\"), or base64 of JSON or of gzip (what ansible.builtin.slurp returns)"),
    ('', "report '<text, 0 characters>': is base64 of neither JSON nor gzip: must be JSON text "
         "(starting with \"{\"), or base64 of JSON or of gzip (what ansible.builtin.slurp returns)"),
    (b'', "report '<bytes, 0 bytes>': is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ('{"a": "\ud800"}', "report '<text, 10 characters>': is not valid Unicode text (surrogates not allowed)"),
])
def test_what_is_not_a_report_at_all(value, message):
    assert error_of(value) == message


def test_broken_gzip_is_refused_clearly():
    data = gzip.compress(corpus.raw('google-sts'))
    assert error_of(data[:-20]) == "report '<gzip data, %d bytes>': is a truncated gzip stream (it ends before its end marker)" % (
        len(data) - 20)
    corrupt = data[:30] + bytes([data[30] ^ 0xFF]) + data[31:]
    assert error_of(corrupt).startswith("report '<gzip data, %d bytes>': is not a readable gzip stream (" % len(data))
    assert error_of(data + b'trailing') == "report '<gzip data, %d bytes>': has data after the end of its gzip stream" % (
        len(data) + 8)
    assert error_of(b'\x1f\x8b') == "report '<gzip data, 2 bytes>': is a truncated gzip stream (it ends before its end marker)"
    latin1 = gzip.compress(corpus.raw('bad/not-utf8.bin'))
    assert error_of(slurp(latin1)) == "report '<bytes, 423 bytes>': is not UTF-8 (byte 0xe9 at offset 29)"


# -- the corpus helpers --------------------------------------------------------------------------

def test_mime_message_is_an_rfc_8460_report_mail():
    reports = [corpus.raw('google-sts'), corpus.report('microsoft-sts')]
    message = email.message_from_bytes(corpus.mime_message(reports), policy=email.policy.default)
    assert message.get_content_type() == 'multipart/report'
    assert message.get_param('report-type') == 'tlsrpt'
    assert message['TLS-Report-Domain'] == 'example.com'
    assert message['TLS-Report-Submitter'] == 'google.com'
    assert message['Subject'] == 'Report Domain: example.com Submitter: google.com Report-ID: <2026-11-01T00:00:00Z_example.com>'
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ['text/plain', 'application/tlsrpt+gzip', 'application/tlsrpt+gzip']
    assert parts[1].get_filename() == 'google.com!example.com!1793491200!1793577599.json.gz'
    assert [parse_report(part.get_content())['organization_name'] for part in parts[1:]] == [
        'Google Inc.', 'Microsoft Corporation']
    plain = email.message_from_bytes(corpus.mime_message(reports[:1], gzip=False), policy=email.policy.default)
    [attachment] = list(plain.iter_parts())[1:]
    assert attachment.get_content_type() == 'application/tlsrpt+json'
    assert parse_report(attachment.get_content()) == parse_report(corpus.raw('google-sts'))
    assert corpus.mime_message(reports) == corpus.mime_message(reports)


def test_gzip_bomb_is_valid_gzip_of_zeros():
    size = 3 * 1024 * 1024 + 17
    assert gzip.decompress(corpus.gzip_bomb(size)) == bytes(size)


def test_an_alias_is_checked_only_when_it_is_read():
    ignored = {'failure-reason-code': 'X509_V_ERR_CERT_HAS_EXPIRED', 'failure-error-code': 17}
    assert first_detail(minimal(with_detail(**ignored)))['failure_reason_code'] == 'X509_V_ERR_CERT_HAS_EXPIRED'
    unread_alias_and_bad_code = {'additional-information': 'https://sender.example/why', 'additional-info-uri': 3,
                                 'failure-reason-code': 4}
    assert error_of(minimal(with_detail(**unread_alias_and_bad_code))) == (
        "policies[0].failure-details[0].failure-reason-code 4: must be a string")
    assert error_of(minimal(with_detail(**{'failure-error-code': 17}))) == (
        "policies[0].failure-details[0].failure-error-code 17: must be a string")


def test_deeply_nested_json_is_refused_not_a_crash():
    deep = b'{"policies": ' + b'[' * 200000 + b']' * 200000 + b'}'
    assert error_of(gzip.compress(deep)) == "report '<bytes, 400014 bytes>': is not a report: its JSON nests too deeply"


def test_what_the_docs_show_is_what_the_parser_does():
    from tests.conftest import REPO
    with open(os.path.join(REPO, 'docs', 'tlsrpt-reports.md'), encoding='utf-8') as handle:
        docs = handle.read()
    section = docs[docs.index('## What is accepted'):docs.index('\n## ', docs.index('## What is accepted') + 1)]
    errors_start = section.index('```\n', section.index('**Errors**')) + len('```\n')
    shown_errors = section[errors_start:section.index('```\n', errors_start)].splitlines()
    second_policy_bad_detail = minimal()
    second_policy_bad_detail['policies'].append(dict(policy_of(minimal(with_detail(**{'failed-session-count': '1'})))))
    assert shown_errors == [
        error_of(corpus.raw('bad/negative-count.json')),
        error_of(second_policy_bad_detail),
        error_of(corpus.raw('bad/end-before-start.json')),
        error_of(corpus.raw('bad/unknown-policy-type.json')),
        error_of(corpus.raw('bad/missing-policies.json')),
        error_of(corpus.raw('bad/not-utf8.bin')),
        error_of(corpus.gzip_bomb(64 * 1024 * 1024)),
    ]
    yaml_start = section.index('```yaml\norganization_name:') + len('```yaml\n')
    shown = yaml.safe_load(section[yaml_start:section.index('```\n', yaml_start)])
    parsed = parse_report(corpus.raw('rfc8460-example'))
    assert len(parsed['policies'][0]['failure_details']) == 1 + 2   # the docs shorten "two more"
    parsed['policies'][0]['failure_details'] = parsed['policies'][0]['failure_details'][:1]
    assert shown == parsed
