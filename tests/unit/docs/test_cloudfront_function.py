"""The CloudFront Function of docs/policy-host-s3.md, run in Node.js on CloudFront's event shape.

It must send each mta-sts host's policy path to the very object policy_s3 writes
(origin path + rewritten URI == '/' + key), and answer 404 to anything else.
"""

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3 import object_key

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FUNCTION = os.path.join(REPO, 'docs', 'examples', 'cloudfront-mta-sts-function.js')
DOC = os.path.join(REPO, 'docs', 'policy-host-s3.md')
# Runs the function file in a fresh context, as CloudFront does: no module system, a global handler.
RUNNER = r'''
const fs = require('fs'), vm = require('vm');
const context = vm.createContext({});
vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), context);
const events = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(events.map((event) => context.handler(event))));
'''
NODE = shutil.which('node') or shutil.which('nodejs')


def event(host, uri, querystring=None):
    headers = {} if host is None else {'host': {'value': host}}
    return {'version': '1.0', 'context': {'eventType': 'viewer-request'}, 'viewer': {'ip': '192.0.2.1'},
            'request': {'method': 'GET', 'uri': uri, 'querystring': querystring or {}, 'headers': headers,
                        'cookies': {}}}


def run(events):
    if NODE is None:
        pytest.fail('Node.js is needed to run the CloudFront Function (scripts/install-deps installs nodejs)')
    answer = subprocess.run([NODE, '-e', RUNNER, FUNCTION], input=json.dumps(events), capture_output=True, text=True,
                            check=True, timeout=30)
    return json.loads(answer.stdout)


@pytest.mark.parametrize('prefix, origin_path', [('', ''), ('policies/', '/policies'), ('a/b/', '/a/b')])
def test_each_host_reaches_the_object_policy_s3_writes(prefix, origin_path):
    hosts = ['mta-sts.example.com', 'MTA-STS.Example.NET', 'mta-sts.xn--bcher-kva.example', 'mta-sts.example.org:443']
    results = run([event(host, '/.well-known/mta-sts.txt', {'x': {'value': '1'}}) for host in hosts])
    for host, result in zip(hosts, results):
        name = host.lower().split(':')[0]
        assert origin_path + result['uri'] == '/' + object_key(prefix, name)
        assert result['querystring'] == {}


@pytest.mark.parametrize('host, uri', [
    ('mta-sts.example.com', '/'),
    ('mta-sts.example.com', '/.well-known/mta-sts.txt/'),
    ('mta-sts.example.com', '/.well-known/MTA-STS.txt'),
    ('mta-sts.example.com', '/mta-sts.other.example/.well-known/mta-sts.txt'),
    ('www.example.com', '/.well-known/mta-sts.txt'),
    ('mta-sts.example.com/../x', '/.well-known/mta-sts.txt'),
    ('mta-sts', '/.well-known/mta-sts.txt'),
    (None, '/.well-known/mta-sts.txt'),
])
def test_anything_else_is_404(host, uri):
    [result] = run([event(host, uri)])
    assert result['statusCode'] == 404
    assert 'uri' not in result


def test_the_doc_shows_the_tested_function():
    with open(FUNCTION) as handle:
        code = handle.read()
    with open(DOC) as handle:
        doc = handle.read()
    body = code[code.index('var POLICY_PATH'):].strip()
    assert body in doc
