"""Many domains that validate fully, behind delaying proxies: for the latency and loss tests and bench/validate_bulk.py.

A Knot with one zone per domain (``_mta-sts`` TXT with the id of the served policy, ``_smtp._tls`` TXT,
``MX 10 mx1.<domain>``, A records for ``mta-sts.<domain>`` and ``mx1.<domain>``), an nginx serving every
``mta-sts.<domain>`` with a valid enforce policy, and optionally a Postfix with STARTTLS for the MX hosts,
all with certificates from a lab CA. Between the clients and each server sits tests/lab/latency.py: DNS
answers come ``delay_ms`` after the query, and every HTTPS/SMTP server flight (TLS handshake, HTTP response,
SMTP banner and replies) arrives ``delay_ms`` after the server sent it, so each round trip costs what it
would on a network. Clients see the proxies on the standard ports; the real servers listen behind them.
"""

import os

from tests.integration.validation_lab import policy_text
from tests.lab.knot import KnotLab, free_port
from tests.lab.latency import LatencyLab
from tests.lab.mail import MailLab
from tests.lab.pki import LabCA
from tests.lab.web import PolicyWeb, address_is_free

from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_sts_record

BACKEND_WEB_PORT = 8443
BACKEND_SMTP_PORT = 2525


class BulkLab:
    """``domains`` that validate fully; ``mx_addresses`` empty: no Postfix (MX hosts resolve but are not served)."""

    def __init__(self, workdir, domains, delay_ms, web_address, dns_address, mx_addresses=()):
        self.domains = domains
        self.web_address = web_address
        self.mx_addresses = list(mx_addresses)
        self.ca = LabCA()
        self.ca_path = self.ca.write_bundle(os.path.join(workdir, 'lab-ca.pem'))
        self.knot = KnotLab(os.path.join(workdir, 'knot'), domains, address=dns_address)
        self.web = PolicyWeb(os.path.join(workdir, 'web'), web_address, BACKEND_WEB_PORT, ca=self.ca)
        self.mail = MailLab(os.path.join(workdir, 'mail'), self.ca) if self.mx_addresses else None
        self.delay_ms = delay_ms
        self.latency = None
        self.forwarder = (dns_address, free_port(dns_address))

    @property
    def nameservers(self):
        return ['%s:%d' % self.forwarder]

    def mx_address(self, index):
        # A handful of Postfix listeners, each the MX of every n-th domain, with one certificate naming all its hosts.
        return self.mx_addresses[index % len(self.mx_addresses)] if self.mx_addresses else self.web_address

    def start(self):
        for address, port in [(self.web_address, 443), (self.web_address, BACKEND_WEB_PORT)] + [
                (mx, port) for mx in self.mx_addresses for port in (25, BACKEND_SMTP_PORT)]:
            if not address_is_free(address, port):
                raise RuntimeError('%s:%d is taken: is another benchmark running?' % (address, port))
        self.knot.start()
        for index, domain in enumerate(self.domains):
            policy = policy_text(domain)   # enforce, mx: mx1.<domain>
            self.web.serve('mta-sts.' + domain, policy)
            # The zone file already has MX 10 mx1.<domain>.
            self.knot.add_records(domain, [
                '_mta-sts.%s. 300 IN TXT "%s"' % (domain, render_sts_record(policy_id(policy))),
                '_smtp._tls.%s. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@%s"' % (domain, domain),
                'mta-sts.%s. 300 IN A %s' % (domain, self.web_address),
                'mx1.%s. 300 IN A %s' % (domain, self.mx_address(index)),
            ])
        for first, address in enumerate(self.mx_addresses):
            hosts = ['mx1.' + domain for domain in self.domains[first::len(self.mx_addresses)]]
            if hosts:
                self.mail.add_mx(address, 'good', name=hosts[0], names=hosts, port=BACKEND_SMTP_PORT)
        self.web.apply()
        if self.mail is not None:
            self.mail.start()
        used = sorted(set(self.mx_address(index) for index in range(len(self.domains)))) if self.mx_addresses else []
        self.latency = LatencyLab(
            self.delay_ms, dns=[(self.forwarder, (self.knot.address, self.knot.port))],
            tcp=[((self.web_address, 443), (self.web_address, BACKEND_WEB_PORT))] + [
                ((mx, 25), (mx, BACKEND_SMTP_PORT)) for mx in used]).start()
        return self

    def stop(self):
        for server in (self.latency, self.mail, self.web, self.knot):
            if server is not None:
                server.stop()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
