"""Wall time for validating N domains over real round trips: the validate lookup, one domain at a time, and checkdmarc.

The lab (loopback only, apart from the integration tests' addresses): a Knot with one zone per domain
(``_mta-sts`` TXT with the id of the served policy, ``_smtp._tls`` TXT, ``MX 10 mx1.<domain>``, A records
for ``mta-sts.<domain>`` and ``mx1.<domain>``), an nginx serving every ``mta-sts.<domain>`` with a valid
enforce policy, and a Postfix with STARTTLS for the MX hosts, all with certificates from a lab CA.
Between the clients and each server sits tests/lab/latency.py: DNS answers come ``--delay-ms`` after the
query, and every HTTPS/SMTP server flight (TLS handshake, HTTP response, SMTP banner and replies) arrives
``--delay-ms`` after the server sent it, so each round trip costs what it would on a network.

Runs, in this order: the validator on all domains in one call (concurrency 16), then one domain after
another (``validate([domain])`` in a loop, as a loop task would), each without and with ``check_mx_tls``;
then checkdmarc's ``check_mta_sts`` on every domain, one after another, in checkdmarc's own venv
(bench/_checkdmarc_driver.py) through the same forwarder.

Usage: .venv/bin/python bench/validate_bulk.py [--domains 200] [--delay-ms 20] [--checkdmarc-venv .build/checkdmarc-venv]
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
from tests.integration.validation_lab import policy_text  # noqa: E402
from tests.lab.knot import KnotLab, free_port  # noqa: E402
from tests.lab.latency import LatencyLab  # noqa: E402
from tests.lab.mail import MailLab  # noqa: E402
from tests.lab.pki import LabCA  # noqa: E402
from tests.lab.web import PolicyWeb, address_is_free  # noqa: E402

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_sts_record  # noqa: E402
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate  # noqa: E402

# Away from the integration tests' lab (127.0.0.1:443, 127.0.0.21-29:25, 127.0.0.53:53), so both can run at once.
# Clients see the delaying proxies on the standard ports; the real servers listen behind them.
WEB_ADDRESS = '127.0.0.2'        # proxy :443 -> nginx :8443; every mta-sts.<domain> A record
DNS_ADDRESS = '127.0.0.3'        # the delaying forwarder and Knot, each on a free port
MX_ADDRESSES = ['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44']  # proxy :25 -> Postfix :2525
BACKEND_WEB_PORT = 8443
BACKEND_SMTP_PORT = 2525
CONCURRENCY = 16


class BulkLab:
    """N domains that validate fully, behind the delaying forwarder and proxies."""

    def __init__(self, workdir, domains, delay_ms):
        self.domains = domains
        self.ca = LabCA()
        self.ca_path = self.ca.write_bundle(os.path.join(workdir, 'lab-ca.pem'))
        self.knot = KnotLab(os.path.join(workdir, 'knot'), domains, address=DNS_ADDRESS)
        self.web = PolicyWeb(os.path.join(workdir, 'web'), WEB_ADDRESS, BACKEND_WEB_PORT, ca=self.ca)
        self.mail = MailLab(os.path.join(workdir, 'mail'), self.ca)
        self.delay_ms = delay_ms
        self.latency = None
        self.forwarder = (DNS_ADDRESS, free_port(DNS_ADDRESS))

    @property
    def nameservers(self):
        return ['%s:%d' % self.forwarder]

    def mx_address(self, index):
        # A handful of Postfix listeners, each the MX of every 4th domain, with one certificate naming all its hosts.
        return MX_ADDRESSES[index % len(MX_ADDRESSES)]

    def start(self):
        for address, port in [(WEB_ADDRESS, 443), (WEB_ADDRESS, BACKEND_WEB_PORT)] + [
                (mx, port) for mx in MX_ADDRESSES for port in (25, BACKEND_SMTP_PORT)]:
            if not address_is_free(address, port):
                raise SystemExit('%s:%d is taken: is another benchmark running?' % (address, port))
        self.knot.start()
        for index, domain in enumerate(self.domains):
            policy = policy_text(domain)   # enforce, mx: mx1.<domain>
            self.web.serve('mta-sts.' + domain, policy)
            # The zone file already has MX 10 mx1.<domain>.
            self.knot.add_records(domain, [
                '_mta-sts.%s. 300 IN TXT "%s"' % (domain, render_sts_record(policy_id(policy))),
                '_smtp._tls.%s. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@%s"' % (domain, domain),
                'mta-sts.%s. 300 IN A %s' % (domain, WEB_ADDRESS),
                'mx1.%s. 300 IN A %s' % (domain, self.mx_address(index)),
            ])
        for first, address in enumerate(MX_ADDRESSES):
            hosts = ['mx1.' + domain for domain in self.domains[first::len(MX_ADDRESSES)]]
            if hosts:
                self.mail.add_mx(address, 'good', name=hosts[0], names=hosts, port=BACKEND_SMTP_PORT)
        self.web.apply()
        self.mail.start()
        used = sorted(set(self.mx_address(index) for index in range(len(self.domains))))
        self.latency = LatencyLab(
            self.delay_ms, dns=[(self.forwarder, (self.knot.address, self.knot.port))],
            tcp=[((WEB_ADDRESS, 443), (WEB_ADDRESS, BACKEND_WEB_PORT))] + [((mx, 25), (mx, BACKEND_SMTP_PORT)) for mx in used]).start()
        return self

    def stop(self):
        for server in (self.latency, self.mail, self.web, self.knot):
            if server is not None:
                server.stop()


def mx_ok(result):
    return bool(result['mx']) and all(mx['covered'] and mx['starttls'] and mx['certificate_valid'] for mx in result['mx'])


def ours(lab, check_mx_tls, one_by_one):
    options = dict(nameservers=lab.nameservers, ca_path=lab.ca_path, check_mx_tls=check_mx_tls, concurrency=CONCURRENCY)
    begin = time.monotonic()
    if one_by_one:
        results = [result for domain in lab.domains for result in validate([domain], **options)]
    else:
        results = validate(lab.domains, **options)
    seconds = time.monotonic() - begin
    return {'seconds': seconds, 'valid': sum(1 for r in results if r['valid']),
            'mx_ok': sum(1 for r in results if mx_ok(r)) if check_mx_tls else None}


def checkdmarc(lab, venv):
    python = os.path.join(venv, 'bin', 'python')
    run = subprocess.run([python, os.path.join(REPO, 'bench', '_checkdmarc_driver.py')],
                         input=json.dumps({'domains': lab.domains, 'nameserver': list(lab.forwarder)}),
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, REQUESTS_CA_BUNDLE=lab.ca_path))
    found = json.loads(run.stdout)
    if found['errors']:
        print('checkdmarc errors (first five): %r' % found['errors'], file=sys.stderr)
    return dict(found, mx_ok=None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=200)
    parser.add_argument('--delay-ms', type=float, default=20.0)
    parser.add_argument('--checkdmarc-venv', default=os.path.join(REPO, '.build', 'checkdmarc-venv'))
    args = parser.parse_args()
    link_collection()
    domains = ['bulk%04d.example' % index for index in range(args.domains)]
    with tempfile.TemporaryDirectory() as workdir:
        lab = BulkLab(workdir, domains, args.delay_ms)
        try:
            lab.start()
            rows = [
                ('validate lookup, one call (concurrency %d)' % CONCURRENCY, False, ours(lab, False, False)),
                ('validate lookup, one call (concurrency %d), check_mx_tls' % CONCURRENCY, True, ours(lab, True, False)),
                ('validate, one domain after another', False, ours(lab, False, True)),
                ('validate, one domain after another, check_mx_tls', True, ours(lab, True, True)),
            ]
            if os.path.exists(os.path.join(args.checkdmarc_venv, 'bin', 'python')):
                rows.append(('checkdmarc 6.0.4 check_mta_sts, one domain after another', False, checkdmarc(lab, args.checkdmarc_venv)))
        finally:
            lab.stop()
    sequential = dict((mx, found['seconds']) for label, mx, found in rows if 'one domain after another' in label and 'validate' in label)
    reference = rows[-1][2]['seconds'] if rows[-1][0].startswith('checkdmarc') else None
    print('| run | domains | valid | MX STARTTLS + certificate OK | wall time (s) | speed-up vs checkdmarc | speed-up vs sequential |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for label, mx, found in rows:
        seconds = found['seconds']
        print('| %s | %d | %d | %s | %.2f | %s | %s |' % (
            label, len(domains), found['valid'], '-' if found['mx_ok'] is None else found['mx_ok'], seconds,
            '%.1fx' % (reference / seconds) if reference else '-', '%.1fx' % (sequential[mx] / seconds)))
    print()
    print('Delay: %g ms per DNS answer and per HTTPS/SMTP server flight; %d MX listeners.' % (args.delay_ms, len(MX_ADDRESSES)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
