"""The request count of the issue: 200 domains, each its own Route 53 hosted zone (moto's server behind the
lab's counting proxy, tests/lab/route53.py), and a site.yml run that changes nothing makes at most 202 API
requests and no write: one domain_records run (two ListHostedZones pages of 100 + one ListResourceRecordSets
per zone) covers every domain's _mta-sts and _smtp._tls, and, where managed, its policy host's name, at no
extra request (the same page). Only a new id needs a second read of its zone, after the served policy is
verified (RFC 8461 section 8): the floor of a first publish is two reads and two writes per zone.

moto serves no DNS. The verification (policy_info before and after, served_policy_info) reads every record
from a Knot mirror: a Knot on 127.0.0.54:53 that holds the same _mta-sts and _smtp._tls records as moto (the
test writes both, with the record modules' TTL), the MX records and the policy hosts' names, as Route 53's own nameservers would answer.
So every request the proxy counts comes from the publishing steps, and the count is of the whole run.
"""

import os
import sys

import pytest
import yaml

from tests.lab.knot import KnotLab
from tests.lab.nginx_site import NginxSite
from tests.lab.route53 import FaultProxy, MotoServer
from tests.rollout.conftest import WORKER_GROUP, WORKER_USER, Inventory, changed_tasks

MIRROR = '127.0.0.54'
POLICY_HOST = '127.0.0.90'
COUNT = 200
DOMAINS = ['d%03d.count.test' % index for index in range(COUNT)]
RUA = ['mailto:tlsrpt@count.test']
MAX_REQUESTS = 202


def policy(domain):
    return {'mode': 'testing', 'mx': ['mx1.%s' % domain], 'max_age': 86400}


def txt(value):
    return '"%s"' % value


@pytest.fixture(scope='module')
def count_lab(lab):
    """moto + counting proxy, the Knot mirror and a second nginx for the 200 domains, on the rollout lab's CA."""
    from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id
    moto = MotoServer(log_path=lab.path('moto.log')).start()
    proxy = FaultProxy(moto.endpoint_url).start()
    mirror = KnotLab(lab.path('mirror'), DOMAINS, port=53, address=MIRROR)
    nginx = NginxSite(lab.path('nginx-count'), POLICY_HOST, user='%s %s' % (WORKER_USER, WORKER_GROUP))
    try:
        mirror.start()
        nginx.start()
        client = moto.client()
        for domain in DOMAINS:
            records = {'_mta-sts.%s.' % domain: txt('v=STSv1; id=%s;' % policy_id(policy(domain))),
                       '_smtp._tls.%s.' % domain: txt('v=TLSRPTv1; rua=%s' % RUA[0])}
            zone_id = moto.create_zone(domain, client=client)
            client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={'Changes': [
                {'Action': 'CREATE', 'ResourceRecordSet': {'Name': name, 'Type': 'TXT', 'TTL': 3600,
                                                           'ResourceRecords': [{'Value': value}]}}
                for name, value in records.items()]})
            mirror.add_records(domain, ['%s 300 IN TXT %s' % (name, value) for name, value in records.items()] + [
                '%s. 300 IN MX 10 mx1.%s.' % (domain, domain), 'mx1.%s. 300 IN A 127.0.0.25' % domain,
                'mta-sts.%s. 300 IN A %s' % (domain, POLICY_HOST)])
        yield {'moto': moto, 'proxy': proxy, 'mirror': mirror, 'nginx': nginx}
    finally:
        for server in (nginx, mirror, proxy, moto):
            try:
                server.stop()
            except Exception:  # pylint: disable=broad-except  # the others must stop too
                pass


def count_inventory(lab, count_lab):
    inventory = Inventory(lab, [{'domain': domain, 'policy': policy(domain), 'rua': RUA} for domain in DOMAINS])
    inventory.extra = {
        'mta_sts_dns': {'provider': 'route53', 'endpoint_url': count_lab['proxy'].endpoint_url, 'region': 'us-east-1',
                        'aws_access_key_id': 'lab', 'aws_secret_access_key': 'lab-secret', 'wait': False},
        'mta_sts_verify': {'nameservers': [MIRROR], 'ca_path': lab.ca_path, 'timeout': 10, 'wait_timeout': 3,
                           'interval': 1},
    }
    inventory.write()
    host_vars = lab.policy_host_vars(count_lab['nginx'], lab.policy_host_certificate('count', DOMAINS), 'data-count')
    with open(inventory.path('host_vars', 'localhost.yml'), 'w') as handle:
        yaml.safe_dump(host_vars, handle)
    return inventory


def test_a_no_change_run_at_200_domains_makes_at_most_202_requests_and_no_write(lab, count_lab):
    inventory = count_inventory(lab, count_lab)
    proxy = count_lab['proxy']
    proxy.reset_counts()
    run = inventory.run('site.yml')
    assert run.returncode == 0, run
    counts = dict((operation, number) for operation, number in proxy.counts().items() if number)
    total = sum(counts.values())
    sys.stderr.write('site.yml, 200 domains on route53, no change: %d requests %r\n' % (total, counts))
    assert proxy.writes() == 0, counts
    assert total <= MAX_REQUESTS, counts
    assert counts == {'ListHostedZones': 2, 'ListResourceRecordSets': COUNT}
    # Only the policy host's files (its first run here) and the state file (first recorded) were new.
    assert [task for task in changed_tasks(run) if 'policy_host' not in task and not task.startswith('Record when')] == []
    plan = inventory.plan()
    assert {entry['status'] for entry in plan['domains']} == {'unchanged'}
    assert os.path.exists(inventory.path('mta-sts-state.json'))
