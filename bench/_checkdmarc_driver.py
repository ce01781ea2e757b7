"""checkdmarc's MTA-STS check on lab domains, one after another; run with checkdmarc's own Python.

bench/validate_bulk.py runs it as ``CHECKDMARC_VENV/bin/python bench/_checkdmarc_driver.py`` with JSON on
stdin: ``{"domains": [...], "nameserver": [ip, port]}``, and ``REQUESTS_CA_BUNDLE`` set to the lab CA;
bench/compare_checkdmarc.py adds ``"timeout"`` (seconds) and ``"results": true``.
It prints JSON: ``{"seconds": wall time of the loop, "valid": count, "errors": {domain: error} for the first five}``,
and with ``results`` also ``"results": {domain: checkdmarc's result}``.

checkdmarc asks ``nameservers`` for the TXT record, but downloads the policy with ``requests``, which
resolves ``mta-sts.<domain>`` through the system resolver. So that the download reaches the lab, and
pays the DNS round trip a real resolver would, ``socket.getaddrinfo`` resolves lab names (and only
those) with an A query to the same delaying forwarder.
"""

import json
import socket
import sys
import time

import dns.nameserver
import dns.resolver
from checkdmarc.mta_sts import check_mta_sts


def main():
    job = json.load(sys.stdin)
    domains = job['domains']
    address, port = job['nameserver']
    nameserver = dns.nameserver.Do53Nameserver(address, port)
    lab_names = set('mta-sts.' + domain for domain in domains)
    lab_resolver = dns.resolver.Resolver(configure=False)
    lab_resolver.nameservers = [nameserver]
    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.lower().rstrip('.') in lab_names:
            host = lab_resolver.resolve(host, 'A')[0].address
        return system_getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo

    options = {'timeout': job['timeout']} if job.get('timeout') else {}
    errors = {}
    results = {}
    begin = time.monotonic()
    for domain in domains:
        results[domain] = check_mta_sts(domain, nameservers=[nameserver], **options)
        if not results[domain]['valid']:
            errors[domain] = results[domain]['error']
    seconds = time.monotonic() - begin
    found = {'seconds': seconds, 'valid': len(domains) - len(errors), 'errors': dict(list(errors.items())[:5])}
    if job.get('results'):
        found['results'] = results
    json.dump(found, sys.stdout, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
