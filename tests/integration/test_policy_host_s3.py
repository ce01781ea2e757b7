"""The policy_host role with backend s3, through real ansible-playbook, against moto's S3 behind a counting proxy.

moto checks credentials here (an IAM user made for the run), so a wrong secret is
refused by the server as S3 would, and a run that succeeds proves the secret was used.
"""

import itertools

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from tests.integration.playbook import run_playbook
from tests.lab.s3 import S3Lab

ROLE_TASK = 'Put the policies into the S3 bucket'
CONTENT_TYPE = 'text/plain; charset=utf-8'
ENFORCE = {'mode': 'enforce', 'mx': ['mx1.alpha.example', '*.mx.alpha.example'], 'max_age': 1209600}
TESTING_TEXT = 'version: STSv1\nmode: testing\nmx: mail.beta.example\nmax_age: 86400\n'
NONE_DICT = {'mode': 'none', 'max_age': 86400}
_buckets = itertools.count(1)


@pytest.fixture(scope='module')
def lab():
    # The first 3 requests (the IAM user and its key) go unchecked; every later one must be signed right.
    with S3Lab(authenticate=3) as s3:
        s3.credentials = s3.create_user()
        yield s3


@pytest.fixture
def bucket(lab):
    name = 'policies-%d' % next(_buckets)
    lab.client(**lab.credentials).create_bucket(Bucket=name)
    return name


def domains():
    return [
        {'domain': 'alpha.example', 'policy': ENFORCE},
        {'domain': 'beta.example', 'policy': TESTING_TEXT},
        # U-label in, A-label key out; a certificate is ignored by this backend.
        {'domain': 'bücher.example', 'policy': NONE_DICT, 'certificate': '/nonexistent.pem', 'private_key': '/x.key'},
    ]


def apply_role(lab, bucket, items, check=False, diff=False, verbosity=0, **overrides):
    role_vars = {
        'policy_host_backend': 's3',
        'policy_host_domains': items,
        'policy_host_s3_bucket': bucket,
        'policy_host_s3_prefix': 'policies/',
        'policy_host_s3_region': 'us-east-1',
        'policy_host_s3_endpoint_url': lab.endpoint_url,
        'policy_host_s3_access_key': lab.credentials['aws_access_key_id'],
        'policy_host_s3_secret_key': lab.credentials['aws_secret_access_key'],
    }
    role_vars.update(overrides)
    tasks = [
        {'name': 'policy host', 'ansible.builtin.include_role': {'name': 'mailsec.mta_sts.policy_host'}, 'vars': role_vars},
        {'name': 'the fact', 'ansible.builtin.debug': {'var': 'policy_host_policies'}},
    ]
    return run_playbook(tasks, check=check, diff=diff, verbosity=verbosity)


def module_result(run):
    found = [result for result in run.results if result['_task'].endswith(ROLE_TASK)]
    assert len(found) == 1, run
    return found[0]


def puts(lab):
    return lab.proxy.counts()['PutObject']


def stored(lab, bucket, key):
    answer = lab.client(**lab.credentials).get_object(Bucket=bucket, Key=key)
    return answer['Body'].read(), answer['ContentType'], answer['CacheControl']


def key_of(domain):
    return 'policies/mta-sts.%s/.well-known/mta-sts.txt' % domain


def test_objects_carry_the_bytes_type_and_cache_header_and_a_rerun_uploads_nothing(lab, bucket):
    before = puts(lab)
    run = apply_role(lab, bucket, domains())
    assert run.returncode == 0, run
    assert puts(lab) - before == 3
    expected = {'alpha.example': render_policy(ENFORCE), 'beta.example': TESTING_TEXT,
                'xn--bcher-kva.example': render_policy(NONE_DICT)}
    fact = run.results[-1]['policy_host_policies']
    assert sorted(fact) == sorted(expected)
    for domain, text in expected.items():
        assert stored(lab, bucket, key_of(domain)) == (text.encode(), CONTENT_TYPE, 'max-age=300')
        assert fact[domain]['id'] == policy_id(text)
        assert fact[domain]['policy'] == text
        assert fact[domain]['url'] == 'https://mta-sts.%s/.well-known/mta-sts.txt' % domain
        assert fact[domain]['key'] == key_of(domain)
    assert module_result(run)['changed'] is True

    before = puts(lab)
    again = apply_role(lab, bucket, domains())
    assert again.returncode == 0, again
    assert puts(lab) == before
    assert module_result(again)['changed'] is False
    assert module_result(again)['changed_policies'] == []
    refact = again.results[-1]['policy_host_policies']
    assert [entry.pop('changed') for entry in refact.values()] == [False] * 3
    assert [entry.pop('changed') for entry in fact.values()] == [True] * 3
    assert refact == fact


def test_one_changed_domain_is_one_put(lab, bucket):
    assert apply_role(lab, bucket, domains()).returncode == 0
    items = domains()
    items[1]['policy'] = TESTING_TEXT.replace('max_age: 86400', 'max_age: 604800')
    before = puts(lab)
    run = apply_role(lab, bucket, items)
    assert run.returncode == 0, run
    assert puts(lab) - before == 1
    assert module_result(run)['changed_policies'] == ['beta.example']
    assert stored(lab, bucket, key_of('beta.example'))[0] == items[1]['policy'].encode()


def test_check_mode_uploads_nothing_and_the_diff_shows_the_change(lab, bucket):
    assert apply_role(lab, bucket, domains()).returncode == 0
    items = domains()
    items[0]['policy'] = dict(ENFORCE, mode='testing')
    before = puts(lab)
    run = apply_role(lab, bucket, items, check=True, diff=True)
    assert run.returncode == 0, run
    assert puts(lab) == before
    result = module_result(run)
    assert result['changed'] is True and result['changed_policies'] == ['alpha.example']
    assert [entry['after_header'] for entry in result['diff']] == [key_of('alpha.example')]
    assert 'mode: enforce' in result['diff'][0]['before'] and 'mode: testing' in result['diff'][0]['after']
    assert stored(lab, bucket, key_of('alpha.example'))[0] == render_policy(ENFORCE).encode()


def test_a_wrong_content_type_or_cache_header_is_put_right(lab, bucket):
    assert apply_role(lab, bucket, domains()).returncode == 0
    client = lab.client(**lab.credentials)
    # Same bytes, wrong headers: only a HEAD of each object can see this.
    client.put_object(Bucket=bucket, Key=key_of('alpha.example'), Body=render_policy(ENFORCE).encode(),
                      ContentType='binary/octet-stream', CacheControl='max-age=300')
    client.put_object(Bucket=bucket, Key=key_of('beta.example'), Body=TESTING_TEXT.encode(),
                      ContentType=CONTENT_TYPE, CacheControl='max-age=86400')
    before = puts(lab)
    run = apply_role(lab, bucket, domains(), diff=True)
    assert run.returncode == 0, run
    assert puts(lab) - before == 2
    assert sorted(module_result(run)['changed_policies']) == ['alpha.example', 'beta.example']
    assert stored(lab, bucket, key_of('alpha.example'))[1:] == (CONTENT_TYPE, 'max-age=300')
    assert stored(lab, bucket, key_of('beta.example'))[1:] == (CONTENT_TYPE, 'max-age=300')


def test_a_new_cache_control_is_put_on_every_object(lab, bucket):
    assert apply_role(lab, bucket, domains()).returncode == 0
    before = puts(lab)
    run = apply_role(lab, bucket, domains(), policy_host_s3_cache_control='max-age=60')
    assert run.returncode == 0, run
    assert puts(lab) - before == 3
    assert stored(lab, bucket, key_of('beta.example'))[2] == 'max-age=60'


def test_a_missing_bucket_fails_before_any_put(lab):
    before = lab.proxy.counts()
    run = apply_role(lab, 'no-such-bucket', domains())
    assert run.returncode != 0
    result = module_result(run)
    assert result['_status'] == 'failed'
    assert 'bucket no-such-bucket does not exist' in result['msg']
    after = lab.proxy.counts()
    assert after['PutObject'] == before['PutObject'] and after['HeadObject'] == before['HeadObject']


@pytest.mark.parametrize('credentials', [{'policy_host_s3_secret_key': 'wrong-secret'},
                                         {'policy_host_s3_access_key': 'AKIANOSUCHKEY0000000'}])
def test_refused_credentials_fail_before_any_put(lab, bucket, credentials):
    before = lab.proxy.counts()
    run = apply_role(lab, bucket, domains(), **credentials)
    assert run.returncode != 0
    result = module_result(run)
    assert 'AWS refused the request' in result['msg'] and 'aws_secret_access_key' in result['msg']
    after = lab.proxy.counts()
    assert after['HeadBucket'] == before['HeadBucket'] + 1
    assert after['PutObject'] == before['PutObject'] and after['HeadObject'] == before['HeadObject']
    assert not lab.client(**lab.credentials).list_objects_v2(Bucket=bucket).get('Contents')


def test_bad_input_fails_before_any_request(lab, bucket):
    items = domains()
    items.append({'domain': 'Alpha.Example.', 'policy': ENFORCE})
    before = sum(lab.proxy.counts().values())
    run = apply_role(lab, bucket, items)
    assert run.returncode != 0
    assert 'domains[3].domain' in module_result(run)['msg'] and 'listed more than once' in module_result(run)['msg']
    items = domains()
    items[2]['policy'] = {'mode': 'enforce', 'max_age': 86400}
    run = apply_role(lab, bucket, items)
    assert 'domains[2].policy' in module_result(run)['msg']
    run = apply_role(lab, bucket, domains(), policy_host_s3_prefix='policies')
    assert "prefix 'policies'" in module_result(run)['msg']
    assert sum(lab.proxy.counts().values()) == before


def test_no_bucket_fails_clearly(lab):
    run = apply_role(lab, None, domains())
    assert run.returncode != 0
    assert 'policy_host_s3_bucket is required' in run.output


def test_the_secret_never_shows_even_with_vvv(lab, bucket):
    secret = lab.credentials['aws_secret_access_key']
    run = apply_role(lab, bucket, domains(), diff=True, verbosity=3)
    # moto checks the signature: the run only succeeds with the secret in use.
    assert run.returncode == 0, run
    assert 'policy_host_s3_secret_key' in run.output or 'aws_secret_access_key' in run.output
    assert secret not in run.output
    failed = apply_role(lab, 'no-such-bucket', domains(), verbosity=3)
    assert failed.returncode != 0
    assert secret not in failed.output


def run_module(lab, bucket, items, **options):
    """policy_s3 itself, for the retry options the role leaves at their defaults."""
    args = dict(domains=items, bucket=bucket, region='us-east-1', endpoint_url=lab.endpoint_url, **lab.credentials)
    args.update(options)
    return run_playbook([{'name': 'put', 'mailsec.mta_sts.policy_s3': args}])


def test_throttled_uploads_are_retried(lab, bucket):
    rule = lab.proxy.inject('SlowDown', status=503, message='Please reduce your request rate.', count=2,
                            operations=['PutObject'])
    try:
        before = lab.proxy.counts()['PutObject']
        run = run_module(lab, bucket, [{'domain': 'alpha.example', 'policy': ENFORCE},
                                       {'domain': 'beta.example', 'policy': TESTING_TEXT}])
    finally:
        lab.proxy.clear_faults()
    assert run.returncode == 0, run
    assert rule.fired == 2
    assert lab.proxy.counts()['PutObject'] - before == 2
    assert stored(lab, bucket, 'mta-sts.beta.example/.well-known/mta-sts.txt')[0] == TESTING_TEXT.encode()


def test_failed_uploads_are_named_and_a_rerun_puts_only_those(lab, bucket):
    items = [{'domain': 'd%d.example' % number, 'policy': NONE_DICT} for number in range(4)]
    lab.proxy.inject('InternalError', every=2, operations=['PutObject'])
    try:
        run = run_module(lab, bucket, items, max_retries=0)
    finally:
        lab.proxy.clear_faults()
    assert run.returncode != 0
    result = run.result
    assert result['msg'].startswith('2 of 4 uploads failed, first: d')
    assert result['changed'] is True and len(result['uploaded']) == 2
    before = puts(lab)
    again = run_module(lab, bucket, items)
    assert again.returncode == 0, again
    assert puts(lab) - before == 2
    assert sorted(again.result['changed_policies']) == sorted(result['not_uploaded'])
    assert sorted(result['not_uploaded'] + result['uploaded']) == [item['domain'] for item in items]
