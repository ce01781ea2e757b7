"""Pacing under the providers' API quotas, through ansible-playbook, against stand-ins that enforce them.

Each provider gets its own lab here (60 zones would change the page counts the shared labs' tests expect):
the Cloudflare stand-in with a quota per token (a sliding window, then a lockout) and moto behind the
Route 53 proxy with a token bucket, both scaled down in time. A no-change run over more zones than the
quota allows at once finishes with no 429 and no Throttling answer counted at the stand-in, and says how
long it waited; the same run with ``api_budget.enabled: false`` is locked out, which proves that the
counts at the stand-ins can show a throttled run.
"""

import urllib.error
import urllib.request

import pytest

from tests.integration.playbook import run_playbook
from tests.lab.cloudflare_api import CloudflareApi
from tests.lab.route53 import FaultProxy, MotoServer

STS = 'mailsec.mta_sts.mta_sts_record'
ZONES = ['q%02d.quota.example' % index for index in range(60)]
RECORD = 'v=STSv1; id=quota1;'
TTL = 3600   # the module's default: the seeded records are what the run asks for


class CloudflareQuotaLab:
    """The live quota, 1,200 requests per 300 s then 300 s of 429s, scaled to 40 per 2 s and 3 s."""
    name = 'cloudflare'
    token = 'lab-quota-token'
    limit, window, lockout = 40, 2.0, 3.0
    at_once = limit    # requests the quota lets through without waiting
    # The live lockout (300 s) outlasts the default retry budget (120 s); the scaled one does too, so that a
    # lockout fails the run as it would live, instead of being waited out.
    retry_max_seconds = 2

    def __init__(self, api):
        self.api = api
        for zone in ZONES:
            self.api.add_zone(zone)
            self.api.add_record(zone, 'TXT', '_mta-sts.' + zone, '"%s"' % RECORD, ttl=TTL)

    def enforce(self):
        """A fresh quota (no request counted, no lockout) and counts from zero."""
        self.api.set_quota(self.limit, self.window, self.lockout)
        self.api.reset_counts()

    def api_budget(self):
        return {'requests': self.limit, 'seconds': self.window, 'burst': None}

    def module_args(self):
        return {'provider': 'cloudflare', 'api_token': self.token, 'base_url': self.api.base_url}

    def requests(self):
        """Every request the stand-in saw, refused ones too."""
        return self.api.counts()['total']

    def throttled(self):
        return sum(counts['throttled'] for counts in self.api.quota_counts().values())

    def quota_text(self):
        return '%d requests per %g s' % (self.limit, self.window)

    def locked_out(self):
        """Whether the token's next request, from anywhere (live: the dashboard too), is refused."""
        request = urllib.request.Request(self.api.base_url + '/zones', headers={'Authorization': 'Bearer ' + self.token})
        try:
            with urllib.request.urlopen(request, timeout=10):
                return False
        except urllib.error.HTTPError as exc:
            return exc.code == 429


class Route53QuotaLab:
    """The live quota, a bucket of 50 refilled at 10 per second, scaled to 10 refilled at 5 per second."""
    name = 'route53'
    rate, burst = 5, 10
    at_once = burst
    # Route 53 throttles but locks nothing out: the retries may take their time (as the shared lab's runs do).
    retry_max_seconds = 30

    def __init__(self, moto, proxy):
        self.proxy = proxy
        client = moto.client()
        for zone in ZONES:    # made at moto itself: not counted, not throttled
            client.change_resource_record_sets(HostedZoneId=moto.create_zone(zone, client=client), ChangeBatch={
                'Changes': [{'Action': 'CREATE', 'ResourceRecordSet': {
                    'Name': '_mta-sts.%s.' % zone, 'Type': 'TXT', 'TTL': TTL,
                    'ResourceRecords': [{'Value': '"%s"' % RECORD}]}}]})

    def enforce(self):
        self.proxy.rate_limit(self.rate, self.burst)
        self.proxy.reset_counts()

    def api_budget(self):
        return {'requests': self.rate, 'seconds': 1.0, 'burst': self.burst}

    def module_args(self):
        return {'provider': 'route53', 'endpoint_url': self.proxy.endpoint_url,
                'aws_access_key_id': 'AKIDLAB', 'aws_secret_access_key': 'lab-secret-key'}

    def requests(self):
        return sum(self.proxy.counts().values()) + self.throttled()

    def throttled(self):
        return sum(self.proxy.throttled().values())

    def quota_text(self):
        return '%d requests per 1 s, burst %d' % (self.rate, self.burst)


@pytest.fixture(scope='module')
def cloudflare_quota():
    with CloudflareApi(tokens=(CloudflareQuotaLab.token,)) as api:
        yield CloudflareQuotaLab(api)
        assert api.internal_errors() == []


@pytest.fixture(scope='module')
def route53_quota():
    with MotoServer() as moto, FaultProxy(moto.endpoint_url) as proxy:
        yield Route53QuotaLab(moto, proxy)


@pytest.fixture(params=['cloudflare', 'route53'])
def quota_lab(request):
    lab = request.getfixturevalue(request.param + '_quota')
    lab.enforce()
    return lab


def no_change_task(lab, api_budget):
    return {STS: dict(lab.module_args(), domains=ZONES, id='quota1', api_budget=api_budget,
                      retry_max_seconds=lab.retry_max_seconds)}


def test_a_run_over_more_zones_than_the_quota_allows_waits_and_is_never_throttled(quota_lab, workdir):
    run = run_playbook([no_change_task(quota_lab, quota_lab.api_budget())], workdir=workdir)
    assert run.returncode == 0, run
    assert run.result['changed'] is False and len(run.result['results']) == len(ZONES)
    assert quota_lab.throttled() == 0
    api = run.result['api']
    # The module's own count is the stand-in's, and more than the quota lets through at once.
    assert api['requests'] == quota_lab.requests() > quota_lab.at_once
    assert api['requests_by_kind']['read'] == len(ZONES) and api['requests_by_kind']['zones'] >= 1
    assert (api['throttled'], api['retries']) == (0, 0)
    assert api['quota_wait_seconds'] > 0
    warning = 'waited %.1f s for the %s API quota (%s); made %d requests' % (
        api['quota_wait_seconds'], quota_lab.name, quota_lab.quota_text(), api['requests'])
    assert warning in run.result['warnings'], run


def test_the_same_run_without_pacing_is_locked_out_on_cloudflare(cloudflare_quota, workdir):
    cloudflare_quota.enforce()
    run = run_playbook([no_change_task(cloudflare_quota, {'enabled': False})], workdir=workdir)
    assert run.returncode != 0, run
    assert 'gave up after 1 attempts' in run.result['msg'] and 'HTTP 429' in run.result['msg'], run
    assert cloudflare_quota.throttled() > 0
    assert cloudflare_quota.locked_out()


def test_the_same_run_without_pacing_is_throttled_on_route53(route53_quota, workdir):
    route53_quota.enforce()
    run = run_playbook([no_change_task(route53_quota, {'enabled': False})], workdir=workdir)
    # No lockout: retries get the run through, and the module counts the Throttling answers the proxy gave.
    assert run.returncode == 0, run
    api = run.result['api']
    assert api['throttled'] == route53_quota.throttled() > 0
    assert api['quota_wait_seconds'] == 0 and api['retries'] >= api['throttled']
    assert api['requests'] == route53_quota.requests()
