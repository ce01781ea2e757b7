"""Messages and wall time for publishing both records of N domains (each its own zone) through rfc2136.

Starts a Knot lab with N zones and the counting DNS proxy in front of it, then
runs one playbook (mta_sts_record + tlsrpt_record, each with ``domains``) twice:
the first publish and an identical re-run. Counts come from the proxy, not from
the modules. Usage: .venv/bin/python bench/record_updates.py [--domains 100]
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
from tests.lab.dnsproxy import CountingDnsProxy  # noqa: E402
from tests.lab.knot import KnotLab  # noqa: E402


POLICY = {'mode': 'testing', 'mx': ['mx1.example.net'], 'max_age': 86400}


def measure(knot, proxy, workdir, domains, zone=None):
    provider = {'provider': 'rfc2136', 'server': proxy.listen_address, 'port': proxy.listen_port,
                'key_name': knot.key_name, 'key_secret': knot.key_secret}
    if zone:
        provider['zone'] = zone
    tasks = [
        {'mailsec.mta_sts.mta_sts_record': dict(provider, domains=domains, policy=POLICY)},
        {'mailsec.mta_sts.tlsrpt_record': dict(provider, domains=domains, rua=['mailto:tlsrpt@example.net'])},
    ]
    rows = []
    for phase in ('first publish', 'no-change re-run'):
        proxy.reset()
        begin = time.monotonic()
        run = run_playbook(tasks, workdir=workdir)
        seconds = time.monotonic() - begin
        if run.returncode != 0:
            raise SystemExit(repr(run))
        counts = proxy.counts()
        changed = sum(1 for result in run.results for item in result['results'] if item['changed'])
        rows.append((phase, counts.get('UPDATE', 0), counts.get('QUERY/SOA', 0), counts.get('QUERY/TXT', 0),
                     counts.get('QUERY/AXFR', 0), changed, seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=100)
    args = parser.parse_args()
    link_collection()
    zones = ['bench%03d.example' % i for i in range(args.domains)]
    shared = ['mail%03d.shared.example' % i for i in range(args.domains)]
    print('| layout | phase | UPDATE | SOA queries | TXT queries | AXFR | records changed | wall time (s) |')
    print('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    with tempfile.TemporaryDirectory() as workdir:
        with KnotLab(os.path.join(workdir, 'knot'), zones + ['shared.example']) as knot, \
                CountingDnsProxy(knot.address, knot.port) as proxy:
            layouts = [
                ('%d domains, each its own zone (zones discovered)' % args.domains, measure(knot, proxy, workdir, zones)),
                ('%d domains in one zone (`zone` given)' % args.domains, measure(knot, proxy, workdir, shared, 'shared.example')),
            ]
    for layout, rows in layouts:
        for phase, updates, soa, txt, axfr, changed, seconds in rows:
            print('| %s | %s | %d | %d | %d | %d | %d | %.1f |' % (layout, phase, updates, soa, txt, axfr, changed, seconds))
    print()
    print('Each playbook run is two module runs (mta_sts_record and tlsrpt_record); counts are DNS messages seen by the proxy.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
