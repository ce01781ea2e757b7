"""Verdicts of the validator and of checkdmarc's MTA-STS check, side by side, on the validation lab's domains.

Starts the same lab the integration tests use (Knot, nginx with a lab CA, Postfix), runs
``mailsec.mta_sts`` (in process) and checkdmarc (in its own venv, pass --checkdmarc-venv) on every
domain, and prints a markdown table. checkdmarc resolves DNS through the nameservers it is given, but
downloads the policy with ``requests`` through the system resolver and certifi: its driver maps the
lab's ``mta-sts`` names through the lab's DNS (bench/_checkdmarc_driver.py) and trusts the lab CA (REQUESTS_CA_BUNDLE).

Usage: .venv/bin/python bench/compare_checkdmarc.py [--checkdmarc-venv .build/checkdmarc-venv] (``make bench`` creates it)
"""

import argparse
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import link_collection  # noqa: E402

link_collection()

from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate  # noqa: E402
from bench.validate_bulk import run_checkdmarc  # noqa: E402
from tests.integration.validation_lab import CASES, ValidationLab  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkdmarc-venv', default=os.path.join(REPO, '.build', 'checkdmarc-venv'))
    args = parser.parse_args()
    domains = list(CASES)
    with tempfile.TemporaryDirectory() as workdir:
        lab = ValidationLab(workdir)
        try:
            lab.start()
            ours = dict((r['domain'], r) for r in validate(domains, nameservers=lab.nameservers, ca_path=lab.ca_path,
                                                           timeout=3, check_mx_tls=True))
            theirs = run_checkdmarc(os.path.abspath(args.checkdmarc_venv), (lab.knot.address, lab.knot.port), lab.ca_path,
                                    domains, timeout=3, results=True)['results']
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
