"""The result's ``api`` through ansible-playbook: what the module says it asked of the API is what the server counted.

Route 53 (moto behind the counting proxy) and Cloudflare (the stand-in): requests by kind (zone listings,
record reads, writes) equal the server's own counts, on a first publish and on a no-change re-run; a
throttled answer is counted and retried; a budget smaller than the run waits and says so. Providers
without an API (zonefile) report null.
"""

import pytest

from tests.integration.backends import ZonefileBackend
from tests.integration.playbook import run_playbook

TLSRPT = 'mailsec.mta_sts.tlsrpt_record'
RUA = 'mailto:tlsrpt@alpha.example'


@pytest.fixture(params=['route53', 'cloudflare'])
def cloud(request):
    backend = request.getfixturevalue(request.param)
    yield backend
    backend.clear_faults()


def server_kinds(backend):
    """The requests that reached the server, by the module's kinds."""
    if backend.name == 'route53':
        counts = backend.proxy.counts()
        kinds = {'zones': counts['ListHostedZones'], 'read': counts['ListResourceRecordSets'],
                 'write': counts['ChangeResourceRecordSets']}
    else:
        counts = backend.api.counts()
        kinds = {'zones': counts['GET zones'], 'read': counts['GET dns_records'], 'write': counts['POST batch']}
    return dict(kinds, other=0)


def publish(backend, domains, **extra):
    task = dict(backend.module_args(), domains=[{'domain': domain, 'rua': [RUA]} for domain in domains], **extra)
    return run_playbook([{TLSRPT: task}])


def three_domains(domain):
    # Two in alpha.example, one in beta.example: two zones.
    return [domain, 'x' + domain, domain.replace('alpha.example', 'beta.example')]


def test_api_counts_what_the_server_saw_on_a_publish_and_a_no_change_run(cloud, domain):
    domains = three_domains(domain)
    cloud.reset()
    run = publish(cloud, domains)
    assert run.returncode == 0, run
    api = run.result['api']
    assert api['requests_by_kind'] == server_kinds(cloud), run
    assert api['requests'] == cloud.messages()
    # One zone listing, at least one read per zone, one write per zone.
    assert api['requests_by_kind']['zones'] == 1 and api['requests_by_kind']['read'] >= 2
    assert api['requests_by_kind']['write'] == 2 == cloud.writes()
    assert (api['retries'], api['throttled'], api['quota_wait_seconds']) == (0, 0, 0.0)
    assert not any('API quota' in warning for warning in run.result.get('warnings', []))

    cloud.reset()
    again = publish(cloud, domains)
    assert again.returncode == 0 and again.result['changed'] is False, again
    assert again.result['api']['requests_by_kind'] == server_kinds(cloud)
    assert again.result['api']['requests_by_kind']['write'] == 0 == cloud.writes()


def test_a_throttled_answer_is_retried_and_counted(cloud, domain):
    cloud.reset()
    cloud.throttle(count=1)
    run = publish(cloud, [domain])
    assert run.returncode == 0, run
    api = run.result['api']
    assert (api['throttled'], api['retries']) == (1, 1), run
    # The refused request is counted too: the server saw one request more than it answered.
    assert api['requests'] == cloud.messages() == sum(server_kinds(cloud).values()) + 1


def test_a_run_larger_than_its_budget_waits_and_says_so(cloud, domain):
    # Three zones' worth of requests (a zone listing, two reads, two writes) at one request per 0.4 s.
    budget = {'requests': 1, 'seconds': 0.4, 'burst': None} if cloud.name == 'cloudflare' else \
        {'requests': 1, 'seconds': 0.4, 'burst': 1}
    cloud.reset()
    run = publish(cloud, three_domains(domain), api_budget=budget)
    assert run.returncode == 0, run
    api = run.result['api']
    requests = cloud.messages()
    assert api['requests'] == requests == 5
    # Each request after the first waits its turn, less the time the previous one took.
    assert 0.4 * (requests - 1) * 0.5 <= api['quota_wait_seconds'] <= 0.4 * (requests - 1) + 0.1
    quota = '1 requests per 0.4 s' + ('' if cloud.name == 'cloudflare' else ', burst 1')
    assert ['waited %.1f s for the %s API quota (%s); made 5 requests' % (api['quota_wait_seconds'], cloud.name, quota)] == \
        [warning for warning in run.result['warnings'] if 'API quota' in warning], run


def test_pacing_off_never_waits(cloud, domain):
    cloud.reset()
    run = publish(cloud, three_domains(domain), api_budget={'enabled': False, 'requests': 1, 'seconds': 60})
    assert run.returncode == 0, run
    assert run.result['api']['quota_wait_seconds'] == 0.0 and run.result['api']['requests'] == 5


def test_a_bad_budget_is_refused_before_any_request(cloud, domain):
    cloud.reset()
    run = publish(cloud, [domain], api_budget={'requests': 0})
    assert run.returncode != 0 and run.result['field'] == 'api_budget.requests', run
    assert cloud.messages() == 0


def test_providers_without_an_api_report_null(tmp_path, domain):
    zonefile = ZonefileBackend(str(tmp_path))
    run = publish(zonefile, [domain])
    assert run.returncode == 0, run
    assert run.result['api'] is None
