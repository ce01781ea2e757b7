"""The parse_tlsrpt_report filter through a real ansible-playbook run, as its documentation shows it used.

One playbook: a .json.gz report read with ansible.builtin.slurp (base64 of gzip), a plain one slurped and
read with lookup('file') and a keyword option, an already loaded dict, and the failures a user must be able to
act on: a malformed report (the message names the place in the report and the rule), a gzip bomb
(the message names the cap), a bad option value.
"""

import gzip
import os

import pytest

from tests.integration.playbook import run_playbook
from tests.unit.tlsrpt_corpus import gzip_bomb, raw

FILTER = 'mailsec.mta_sts.parse_tlsrpt_report'
BOMB = gzip_bomb(64 * 1024 * 1024)


def write(path, data):
    with open(path, 'wb') as handle:
        handle.write(data)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('parse-filter'))
    files = {
        'microsoft': os.path.join(root, 'microsoft.com!example.com!1793491200!1793577599.json.gz'),
        'dane': os.path.join(root, 'dane.json'),
        'malformed': os.path.join(root, 'malformed.json.gz'),
        'bomb': os.path.join(root, 'bomb.json.gz'),
    }
    write(files['microsoft'], gzip.compress(raw('microsoft-sts')))
    write(files['dane'], raw('tlsa-dane'))
    write(files['malformed'], gzip.compress(raw('bad/negative-count.json')))
    write(files['bomb'], BOMB)

    def slurp(name):
        return {'name': 'slurp ' + name, 'ansible.builtin.slurp': {'src': files[name]}, 'register': name}

    def parse(name, expression, ignore_errors=False):
        entry = {'name': name, 'ansible.builtin.set_fact': {'parsed': '{{ %s }}' % expression}}
        if ignore_errors:
            entry['ignore_errors'] = True
        return entry

    tasks = [
        slurp('microsoft'), slurp('dane'), slurp('malformed'), slurp('bomb'),
        parse('slurped gzip', 'microsoft.content | %s' % FILTER),
        parse('file lookup', "lookup('file', %r) | %s(max_report_size=4096)" % (files['dane'], FILTER)),
        parse('slurped json', 'dane.content | %s' % FILTER),
        parse('loaded dict', "lookup('file', %r) | from_json | %s" % (files['dane'], FILTER)),
        parse('malformed', 'malformed.content | %s' % FILTER, ignore_errors=True),
        parse('bomb', 'bomb.content | %s(max_report_size=1048576)' % FILTER, ignore_errors=True),
        parse('bad option', "microsoft.content | %s(max_report_size='10M')" % FILTER, ignore_errors=True),
        parse('too small for the report', "lookup('file', %r) | %s(max_report_size=1000)" % (files['dane'], FILTER),
              ignore_errors=True),
    ]
    run = run_playbook(tasks, workdir=root)
    recorded = dict((result['_task'], result) for result in run.results)
    assert sorted(recorded) == sorted(task['name'] for task in tasks), run
    return recorded


def test_a_slurped_gzip_report_is_normalised(results):
    result = results['slurped gzip']
    assert result['_status'] == 'ok', result
    parsed = result['ansible_facts']['parsed']
    assert (parsed['organization_name'], parsed['report_id'], parsed['contact_info']) == (
        'Microsoft Corporation', '134064864000000000+example.com', 'tlsrpt-noreply@microsoft.com')
    assert parsed['date_range'] == {'start': '2026-11-01T00:00:00Z', 'end': '2026-11-01T23:59:59Z'}
    assert parsed['policies'] == [{
        'policy_type': 'sts',
        'policy_string': ['version: STSv1', 'mode: testing', 'mx: mail.example.com', 'max_age: 604800'],
        'policy_domain': 'example.com',
        'mx_host': ['mail.example.com'],            # a string in the report
        'successful_sessions': 450,
        'failed_sessions': 3,
        'failure_details': [{
            'result_type': 'certificate-host-mismatch', 'failed_sessions': 3, 'sending_mta_ip': '2001:db8:f403::25',
            'receiving_mx_hostname': 'mail.example.com', 'receiving_mx_helo': None, 'receiving_ip': '192.0.2.25',
            'additional_information': None,
            'failure_reason_code': 'CertificateNameMismatch',   # sent as failure-error-code
        }],
    }]


def test_plain_json_slurped_read_by_a_file_lookup_with_the_option_and_as_a_loaded_dict(results):
    for name in ('slurped json', 'file lookup', 'loaded dict'):
        assert results[name]['_status'] == 'ok', results[name]
        parsed = results[name]['ansible_facts']['parsed']
        # The offset +02:00 of the report's dates, converted to UTC.
        assert parsed['date_range'] == {'start': '2026-11-01T00:00:00Z', 'end': '2026-11-01T23:59:59Z'}
        assert [(p['policy_type'], p['policy_domain'], p['successful_sessions'], p['failed_sessions'])
                for p in parsed['policies']] == [('tlsa', 'example.net', 310, 5)]
        assert [d['result_type'] for d in parsed['policies'][0]['failure_details']] == ['tlsa-invalid', 'dnssec-invalid']


@pytest.mark.parametrize('task, message', [
    ('malformed', 'policies[0].summary.total-failure-session-count -3: must be a non-negative integer'),
    ('bomb', "report '<gzip data, %d bytes>': decompresses to more than 1048576 bytes, the cap; reading stopped there" % len(BOMB)),
    ('bad option', "max_report_size '10M': must be a positive integer (bytes)"),
    ('too small for the report', "report '<text, 1403 characters>': is 1403 bytes, more than the cap of 1000 bytes"),
])
def test_failures_name_the_field_and_the_rule(results, task, message):
    result = results[task]
    assert result['_status'] == 'failed', result
    assert "The filter plugin '%s' failed: %s" % (FILTER, message) in result['msg'], result['msg']
