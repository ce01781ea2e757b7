"""Cloud providers at bulk scale: requests and wall time for N domains, each its own zone, both records.

Route 53 runs against moto's server behind the counting proxy; Cloudflare against the v4 API
stand-in. Each phase is one playbook: mta_sts_record and tlsrpt_record, each with ``domains``.
Side by side, amazon.aws.route53 (from the ``ansible`` package, in its own venv: pass
--ansible-venv) publishes the same 2N TXT records the usual way, one loop item per record,
against the same moto server. Requests are counted at the servers.

Usage: .venv/bin/python bench/cloud_bulk.py [--domains 200] [--ansible-venv .build/ansible-venv]
"""

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import link_collection  # noqa: E402
from tests.integration.playbook import run_playbook  # noqa: E402
from tests.lab.cloudflare_api import CloudflareApi  # noqa: E402
from tests.lab.route53 import FaultProxy, MotoServer  # noqa: E402

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_sts_record  # noqa: E402
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt import render_tlsrpt_record  # noqa: E402

POLICY = {'mode': 'testing', 'mx': ['mx1.example.net'], 'max_age': 86400}
RUA = ['mailto:tlsrpt@example.net']
TOKEN = 'bench-token'


def our_tasks(provider, domains):
    return [
        {'mailsec.mta_sts.mta_sts_record': dict(provider, domains=domains, policy=POLICY)},
        {'mailsec.mta_sts.tlsrpt_record': dict(provider, domains=domains, rua=RUA)},
    ]


def timed(tasks, workdir, **kwargs):
    begin = time.monotonic()
    run = run_playbook(tasks, workdir=workdir, **kwargs)
    seconds = time.monotonic() - begin
    if run.returncode != 0:
        raise SystemExit(repr(run))
    return run, seconds


def route53_phases(label, proxy, tasks, workdir, **kwargs):
    rows = []
    for phase in ('first publish', 'no-change re-run'):
        proxy.reset_counts()
        run, seconds = timed(tasks, workdir, **kwargs)
        counts = proxy.counts()
        zone_listing = counts.get('ListHostedZones', 0) + counts.get('ListHostedZonesByName', 0) + counts.get('GetHostedZone', 0)
        rows.append((label, phase, zone_listing, counts.get('ListResourceRecordSets', 0),
                     counts.get('ChangeResourceRecordSets', 0) + counts.get('GetChange', 0), sum(counts.values()), seconds))
    return rows


def cloudflare_phases(label, api, tasks, workdir):
    rows = []
    for phase in ('first publish', 'no-change re-run'):
        api.reset_counts()
        run, seconds = timed(tasks, workdir)
        counts = api.counts()
        rows.append((label, phase, counts['GET zones'], counts['GET dns_records'], api.writes(), counts['total'], seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=200)
    parser.add_argument('--ansible-venv', help='a venv with the ansible package (amazon.aws) and boto3, for the side-by-side run')
    args = parser.parse_args()
    link_collection()
    domains = ['bench%03d.example' % i for i in range(args.domains)]
    rows = []
    with tempfile.TemporaryDirectory() as workdir, MotoServer() as moto, FaultProxy(moto.endpoint_url) as proxy, \
            CloudflareApi(tokens=(TOKEN,)) as api:
        aws = {'aws_access_key_id': 'AKIDBENCH', 'aws_secret_access_key': 'bench-secret', 'endpoint_url': proxy.endpoint_url}
        if args.ansible_venv:
            moto.reset()
            for domain in domains:
                moto.create_zone(domain)
            records = []
            for domain in domains:
                records.append({'zone': domain, 'record': '_mta-sts.' + domain, 'value': render_sts_record(policy_id(POLICY))})
                records.append({'zone': domain, 'record': '_smtp._tls.' + domain, 'value': render_tlsrpt_record(RUA)})
            loop_task = {
                'amazon.aws.route53': {
                    'state': 'present', 'zone': '{{ item.zone }}', 'record': '{{ item.record }}', 'type': 'TXT', 'ttl': 3600,
                    'value': '"{{ item.value }}"', 'overwrite': True, 'endpoint_url': proxy.endpoint_url,
                    'access_key': aws['aws_access_key_id'], 'secret_key': aws['aws_secret_access_key'],
                },
                'loop': '{{ records }}',
                'loop_control': {'label': '{{ item.record }}'},
            }
            python = os.path.join(os.path.abspath(args.ansible_venv), 'bin', 'python')
            rows += route53_phases('amazon.aws.route53, one loop item per record', proxy, [loop_task], workdir,
                                   python=python, play_vars={'records': records}, env={'AWS_DEFAULT_REGION': 'us-east-1'})
        moto.reset()
        for domain in domains:
            moto.create_zone(domain)
            api.add_zone(domain)
        rows += route53_phases('mailsec.mta_sts, provider route53', proxy, our_tasks(dict(aws, provider='route53'), domains), workdir)
        rows += cloudflare_phases('mailsec.mta_sts, provider cloudflare', api,
                                  our_tasks({'provider': 'cloudflare', 'api_token': TOKEN, 'base_url': api.base_url}, domains), workdir)

    print('%d domains, each its own zone, both records (%d TXT records)' % (args.domains, 2 * args.domains))
    print()
    print('| run | phase | zone listing requests | record reads | writes | all requests | wall time (s) |')
    print('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
    for label, phase, listing, reads, writes, total, seconds in rows:
        print('| %s | %s | %d | %d | %d | %d | %.1f |' % (label, phase, listing, reads, writes, total, seconds))
    return 0


if __name__ == '__main__':
    sys.exit(main())
