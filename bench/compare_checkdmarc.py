"""Verdicts of the validator and of checkdmarc's MTA-STS check, side by side, on the validation lab's domains.

Starts the same lab the integration tests use (Knot, nginx with a lab CA, Postfix), runs
``mailsec.mta_sts`` (in process) and checkdmarc (in its own venv, pass --checkdmarc-venv) on every
domain, and prints a markdown table. checkdmarc resolves DNS through the nameservers it is given, but
downloads the policy with ``requests`` through the system resolver and certifi: its driver maps the
lab's ``mta-sts`` names to the lab's web server and trusts the lab CA (REQUESTS_CA_BUNDLE).

Usage: .venv/bin/python bench/compare_checkdmarc.py --checkdmarc-venv .build/checkdmarc-venv
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import link_collection  # noqa: E402

link_collection()

from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate  # noqa: E402
from tests.integration.validation_lab import CASES, WEB_ADDRESS, ValidationLab  # noqa: E402

DRIVER = r'''
import json, socket, sys
import dns.nameserver
from checkdmarc.mta_sts import check_mta_sts
address, port, web, domains = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
real = socket.getaddrinfo
def lab_getaddrinfo(host, *args, **kwargs):
    # Only the policy hosts of the lab domains go to the lab web server; nothing else is touched.
    if isinstance(host, str) and host.startswith('mta-sts.') and host[len('mta-sts.'):] in domains:
        host = web
    return real(host, *args, **kwargs)
socket.getaddrinfo = lab_getaddrinfo
results = {}
for domain in domains:
    results[domain] = check_mta_sts(domain, nameservers=[dns.nameserver.Do53Nameserver(address, port)], timeout=3)
print(json.dumps(results, default=str))
'''


def checkdmarc_results(venv, lab, domains):
    env = dict(os.environ, REQUESTS_CA_BUNDLE=lab.ca_path)
    proc = subprocess.run([os.path.join(venv, 'bin', 'python'), '-c', DRIVER, lab.knot.address, str(lab.knot.port),
                           WEB_ADDRESS, json.dumps(domains)], env=env, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(proc.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkdmarc-venv', required=True)
    args = parser.parse_args()
    domains = list(CASES)
    with tempfile.TemporaryDirectory() as workdir:
        lab = ValidationLab(workdir)
        try:
            lab.start()
            ours = dict((r['domain'], r) for r in validate(domains, nameservers=lab.nameservers, ca_path=lab.ca_path,
                                                           timeout=3, check_mx_tls=True))
            theirs = checkdmarc_results(os.path.abspath(args.checkdmarc_venv), lab, domains)
        finally:
            lab.stop()
    print('| domain | mailsec.mta_sts valid | errors (warnings) | checkdmarc valid | checkdmarc error (warnings) |')
    print('| --- | --- | --- | --- | --- |')
    for domain in domains:
        mine, other = ours[domain], theirs[domain]
        errors = [f['code'] for f in mine['findings'] if f['severity'] == 'error']
        warnings = [f['code'] for f in mine['findings'] if f['severity'] == 'warning']
        other_text = (other.get('error') or '').replace('|', '/')[:110]
        warnings_other = other.get('warnings') or []
        if warnings_other:
            more = ' and %d more' % (len(warnings_other) - 1) if len(warnings_other) > 1 else ''
            other_text += ' (%s%s)' % (warnings_other[0][:70].replace('|', '/'), more)
        ours_text = ', '.join(errors) + (' (%s)' % ', '.join(warnings) if warnings else '')
        print('| %s | %s | %s | %s | %s |' % (domain, mine['valid'], ours_text, other.get('valid'), other_text))
    return 0


if __name__ == '__main__':
    sys.exit(main())
