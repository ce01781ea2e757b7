"""Throttling and failures of the cloud APIs: runs converge, nothing is duplicated or lost, secrets stay hidden."""

import pytest

from tests.integration.playbook import run_playbook

STS = 'mailsec.mta_sts.mta_sts_record'


@pytest.fixture(params=['route53', 'cloudflare'])
def cloud(request):
    backend = request.getfixturevalue(request.param)
    backend.clear_faults()
    yield backend
    backend.clear_faults()


def live(backend, name):
    return sorted(b''.join(value).decode() for value in backend.strings(name))


def test_throttled_share_of_requests_still_converges(cloud, workdir):
    domains = ['throttle%d.alpha.example' % i for i in range(4)] + ['throttle%d.beta.example' % i for i in range(4)]
    for domain in domains[::3]:
        cloud.seed('_mta-sts.' + domain, ['v=STSv1; id=old;', 'v=STSv1; id=older;'], ttl=3600)
    cloud.throttle(ratio=0.4, seed=7)
    task = {STS: dict(cloud.module_args(), domains=domains, id='calm1')}
    run = run_playbook([task], workdir=workdir)
    assert run.returncode == 0, run
    assert cloud.faults() > 0
    for domain in domains:
        assert live(cloud, '_mta-sts.' + domain) == ['v=STSv1; id=calm1;']
    cloud.reset()
    again = run_playbook([task], workdir=workdir)
    assert again.returncode == 0 and again.result['changed'] is False, again
    assert cloud.writes() == 0


def test_writes_refused_past_the_retry_budget_fail_clearly_and_a_rerun_converges(cloud, workdir):
    domains = ['budget1.alpha.example', 'budget1.beta.example']
    cloud.throttle(writes_only=True)
    task = {STS: dict(cloud.module_args(), domains=domains, id='late1', max_retries=2, retry_max_seconds=20)}
    cloud.reset()
    run = run_playbook([task], workdir=workdir)
    assert run.returncode != 0
    assert 'gave up after 3 attempts' in run.result['msg'], run
    assert 'still throttling or failing: re-run later, or raise max_retries or retry_max_seconds' in run.result['msg']
    # Exactly our 3 attempts reached the server: the SDK's own retries are off, so they do not multiply.
    assert cloud.faults() == 3
    assert run.result['msg'].startswith('zone alpha.example:')
    for domain in domains:
        assert live(cloud, '_mta-sts.' + domain) == []
    cloud.clear_faults()
    again = run_playbook([task], workdir=workdir)
    assert again.returncode == 0, again
    for domain in domains:
        assert live(cloud, '_mta-sts.' + domain) == ['v=STSv1; id=late1;']


def test_failure_after_one_zone_is_applied_says_which_and_a_rerun_converges(cloudflare, workdir):
    # The stand-in can fault one zone's requests (by path); the Route 53 proxy cannot, and the
    # same reporting code is covered for every provider by the unit tests of publish().
    domains = ['partial1.alpha.example', 'partial1.beta.example']
    task = {STS: dict(cloudflare.module_args(), domains=domains, id='part1', max_retries=1, retry_max_seconds=10)}
    cloudflare.clear_faults()
    cloudflare.api.inject(503, path_contains=cloudflare.api.zone_id('beta.example') + '/dns_records/batch')
    try:
        run = run_playbook([task], workdir=workdir)
    finally:
        cloudflare.clear_faults()
    assert run.returncode != 0
    assert run.result['msg'].startswith('zone beta.example: cloudflare batch change of beta.example: gave up after 2 attempts'), run
    assert run.result['msg'].endswith('(already applied to zones alpha.example; not attempted: none)')
    assert run.result['changed'] is True
    assert live(cloudflare, '_mta-sts.partial1.alpha.example') == ['v=STSv1; id=part1;']
    assert live(cloudflare, '_mta-sts.partial1.beta.example') == []
    again = run_playbook([task], workdir=workdir)
    assert again.returncode == 0, again
    assert [result['changed'] for result in again.result['results']] == [False, True]
    assert live(cloudflare, '_mta-sts.partial1.beta.example') == ['v=STSv1; id=part1;']


def test_wrong_credentials_or_unknown_zone_fail_before_any_write_and_hide_secrets(cloud, workdir):
    args = cloud.module_args()
    secret_key = 'api_token' if cloud.name == 'cloudflare' else 'aws_secret_access_key'
    wrong = 'WRONG-secret-9f8e7d6c'
    cloud.reset()
    run = run_playbook([{STS: dict(args, domain='nozone.example', id='x1')}], verbosity=3, workdir=workdir)
    assert run.returncode != 0
    kind = 'zone visible to this API token' if cloud.name == 'cloudflare' else 'public hosted zone'
    assert '%s: no %s holds _mta-sts.nozone.example (zones seen: alpha.example, beta.example); check' % (cloud.name, kind) \
        in run.result['msg'], run
    assert cloud.writes() == 0
    assert args[secret_key] not in run.output

    if cloud.name == 'cloudflare':
        bad = run_playbook([{STS: dict(args, domain='creds.alpha.example', id='x1', api_token=wrong)}], verbosity=3, workdir=workdir)
        assert bad.returncode != 0
        assert 'HTTP 403' in bad.result['msg'], bad
        assert 'the API token was refused; check api_token (or CLOUDFLARE_API_TOKEN)' in bad.result['msg']
        assert wrong not in bad.output
        assert cloud.writes() == 0
    else:
        # What AWS answers for a key it does not know; moto accepts any, so the proxy answers it.
        faults_before = cloud.faults()
        cloud.proxy.inject('InvalidClientTokenId', status=403, message='The security token included in the request is invalid.')
        try:
            bad = run_playbook([{STS: dict(args, domain='creds.alpha.example', id='x1', aws_secret_access_key=wrong)}],
                               verbosity=3, workdir=workdir)
        finally:
            cloud.clear_faults()
        assert bad.returncode != 0
        assert 'AWS refused the credentials (InvalidClientTokenId: ' in bad.result['msg'], bad
        assert 'check aws_access_key_id, aws_secret_access_key' in bad.result['msg']
        assert wrong not in bad.output
        # Refused credentials are not retried.
        assert cloud.faults() - faults_before == 1
    ok = run_playbook([{STS: dict(args, domain='creds.alpha.example', id='x1')}], verbosity=3, diff=True, workdir=workdir)
    assert ok.returncode == 0, ok
    assert args[secret_key] not in ok.output


def test_route53_wait_polls_the_change_until_insync(route53, workdir):
    route53.reset()
    run = run_playbook([{STS: dict(route53.module_args(), domain='wait1.alpha.example', id='w1', wait=True)}], workdir=workdir)
    assert run.returncode == 0, run
    assert route53.proxy.counts()['GetChange'] >= 1
    assert live(route53, '_mta-sts.wait1.alpha.example') == ['v=STSv1; id=w1;']
