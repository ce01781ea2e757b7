"""Wall time for validating N domains over real round trips: the validate lookup in one call, one domain at a time, and checkdmarc.

The lab is tests/integration/bulk_lab.py on loopback addresses the tests do not use: Knot with one zone per
domain, nginx serving a valid enforce policy for every ``mta-sts.<domain>``, Postfix with STARTTLS for the MX
hosts, certificates from a lab CA; between the clients and each server, tests/lab/latency.py delays every DNS
answer and every HTTPS/SMTP server flight by ``--delay-ms``, so each round trip costs what it would on a network.

Runs, in this order, in one lab: the validator on all domains in one call, once per ``--concurrency`` value
(without MX probes), then with ``check_mx_tls`` at the first value; then, on the first ``--sequential``
domains, ``validate([domain])`` one domain after another (as a loop task would), without and with
``check_mx_tls``, and checkdmarc's ``check_mta_sts`` one domain after another, in checkdmarc's own venv
(bench/_checkdmarc_driver.py) through the same forwarder. ``make bench`` creates that venv.

Usage: .venv/bin/python bench/validate_bulk.py [--domains 200] [--delay-ms 20] [--concurrency 16,32]
       [--sequential 200] [--checkdmarc-venv .build/checkdmarc-venv]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import link_collection  # noqa: E402
from tests.integration.bulk_lab import BulkLab  # noqa: E402

from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate  # noqa: E402

# Away from the integration tests' lab (127.0.0.1:443, 127.0.0.21-29:25, 127.0.0.53:53) and the random
# addresses of tests/integration/test_resolver.py, so tests and a benchmark can run at once.
WEB_ADDRESS = '127.0.0.2'        # proxy :443 -> nginx :8443; every mta-sts.<domain> A record
DNS_ADDRESS = '127.0.0.3'        # the delaying forwarder and Knot, each on a free port
MX_ADDRESSES = ['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44']  # proxy :25 -> Postfix :2525
CHECKDMARC_VERSION = '6.0.4'


def mx_ok(result):
    return bool(result['mx']) and all(mx['covered'] and mx['starttls'] and mx['certificate_valid'] for mx in result['mx'])


def ours(lab, domains, concurrency, check_mx_tls=False, one_by_one=False):
    options = dict(nameservers=lab.nameservers, ca_path=lab.ca_path, check_mx_tls=check_mx_tls, concurrency=concurrency)
    begin = time.monotonic()
    if one_by_one:
        results = [result for domain in domains for result in validate([domain], **options)]
    else:
        results = validate(domains, **options)
    seconds = time.monotonic() - begin
    return {'domains': len(domains), 'seconds': seconds, 'valid': sum(1 for r in results if r['valid']),
            'mx_ok': sum(1 for r in results if mx_ok(r)) if check_mx_tls else None}


def run_checkdmarc(venv, nameserver, ca_path, domains, **job):
    """bench/_checkdmarc_driver.py in checkdmarc's venv; what it printed (see there)."""
    run = subprocess.run([os.path.join(venv, 'bin', 'python'), os.path.join(REPO, 'bench', '_checkdmarc_driver.py')],
                         input=json.dumps(dict(job, domains=domains, nameserver=list(nameserver))),
                         capture_output=True, text=True, check=True, timeout=3600,
                         env=dict(os.environ, REQUESTS_CA_BUNDLE=ca_path))
    return json.loads(run.stdout)


def checkdmarc(lab, domains, venv):
    found = run_checkdmarc(venv, lab.forwarder, lab.ca_path, domains)
    if found['errors']:
        print('checkdmarc errors (first five): %r' % found['errors'], file=sys.stderr)
    return dict(found, domains=len(domains), mx_ok=None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=200)
    parser.add_argument('--delay-ms', type=float, default=20.0)
    parser.add_argument('--concurrency', default='16', help='comma-separated values for the one-call runs')
    parser.add_argument('--sequential', type=int, default=None,
                        help='how many domains to run one after another (default: all; 0: none)')
    parser.add_argument('--checkdmarc-venv', default=os.path.join(REPO, '.build', 'checkdmarc-venv'))
    args = parser.parse_args()
    link_collection()
    concurrencies = [int(value) for value in args.concurrency.split(',')]
    domains = ['bulk%04d.example' % index for index in range(args.domains)]
    sequential = domains[:args.domains if args.sequential is None else args.sequential]
    has_checkdmarc = os.path.exists(os.path.join(args.checkdmarc_venv, 'bin', 'python'))
    if sequential and not has_checkdmarc:
        print('no checkdmarc in %s (make bench creates it): its row is left out' % args.checkdmarc_venv, file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        with BulkLab(workdir, domains, args.delay_ms, WEB_ADDRESS, DNS_ADDRESS, MX_ADDRESSES) as lab:
            ours(lab, domains[:1], 1)   # warm-up: imports and the CA bundle, not part of any figure
            for concurrency in concurrencies:
                rows.append(('validate lookup, one call (concurrency %d)' % concurrency, ours(lab, domains, concurrency)))
            rows.append(('validate lookup, one call (concurrency %d), check_mx_tls' % concurrencies[0],
                         ours(lab, domains, concurrencies[0], check_mx_tls=True)))
            if sequential:
                rows.append(('validate, one domain after another', ours(lab, sequential, 1, one_by_one=True)))
                rows.append(('validate, one domain after another, check_mx_tls',
                             ours(lab, sequential, 1, check_mx_tls=True, one_by_one=True)))
                if has_checkdmarc:
                    rows.append(('checkdmarc %s check_mta_sts, one domain after another' % CHECKDMARC_VERSION,
                                 checkdmarc(lab, sequential, args.checkdmarc_venv)))
    print('| run | domains | valid | MX STARTTLS + certificate OK | wall time (s) | per domain (ms) |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    for label, found in rows:
        print('| %s | %d | %d | %s | %.2f | %.1f |' % (
            label, found['domains'], found['valid'], '-' if found['mx_ok'] is None else found['mx_ok'],
            found['seconds'], 1000.0 * found['seconds'] / found['domains']))
    print()
    print('Delay: %g ms per DNS answer and per HTTPS/SMTP server flight; %d MX listeners.' % (args.delay_ms, len(MX_ADDRESSES)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
