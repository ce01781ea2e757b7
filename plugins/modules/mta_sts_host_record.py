#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mta_sts_host_record
short_description: Publish the policy host's name, C(mta-sts.<domain>), as A/AAAA records or a CNAME
version_added: 0.1.0
description:
  - Senders fetch the MTA-STS policy from C(https://mta-sts.<domain>/.well-known/mta-sts.txt) (RFC 8461 section 3.3),
    so C(mta-sts.<domain>) must resolve to a host that serves it. This module publishes that name through a DNS
    provider, for one domain or many in one run.
  - With O(addresses), the name gets A records (IPv4) and AAAA records (IPv6) with exactly those addresses.
    With O(target), it gets a CNAME to the policy host, for example a hosting provider's shared policy host
    (RFC 8461 section 8.2); that host's certificate must name C(mta-sts.<domain>).
  - The module manages the A, AAAA and CNAME records at C(mta-sts.<domain>) only. Records of other types there
    (TXT, MX, ...) are never touched. A CNAME may not share its name with other records (RFC 1034 section 3.6.2),
    so when O(target) is given and the name holds records of other types, the module fails naming those types,
    with RV(conflict=true), before anything is written.
  - Switching between O(addresses) and O(target) replaces the old records with the new ones in one write per zone.
  - O(state=absent) removes the A, AAAA and CNAME records at the name.
extends_documentation_fragment:
  - mailsec.mta_sts.record
  - mailsec.mta_sts.record.domain
  - mailsec.mta_sts.attributes
  - mailsec.mta_sts.attributes.dns_group
  - mailsec.mta_sts.zonefile
  - mailsec.mta_sts.rfc2136
  - mailsec.mta_sts.route53
  - mailsec.mta_sts.cloudflare
  - mailsec.mta_sts.retry
options:
  domain:
    description:
      - The mail domain, for example V(example.com); the module manages C(mta-sts.<domain>).
      - An internationalised name may be given with U-labels; it is converted to A-labels as for the other record
        modules (RV(results[].domain_unicode) shows it as given).
      - Mutually exclusive with O(domains); one of them is required.
    type: str
  domains:
    description:
      - Several domains in one run. Each item is a domain name that shares the task's O(addresses) or O(target) and
        O(state), or a dict with its own C(domain), C(state), and C(addresses) or C(target).
      - Mutually exclusive with O(domain).
    type: list
    elements: raw
  addresses:
    description:
      - The policy host's IPv4 and IPv6 addresses. IPv4 addresses become A records, IPv6 addresses AAAA records.
      - Mutually exclusive with O(target).
    type: list
    elements: str
  target:
    description:
      - The name of the policy host, published as the CNAME of C(mta-sts.<domain>), for example
        V(mta-sts.hoster.example).
      - Mutually exclusive with O(addresses).
    type: str
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.mta_sts_record
  - name: RFC 8461 section 8.2 (delegation to a hosting provider)
    description: How a customer domain points its policy host at a provider.
    link: https://www.rfc-editor.org/rfc/rfc8461#section-8.2
'''

EXAMPLES = r'''
- name: The policy host's addresses
  mailsec.mta_sts.mta_sts_host_record:
    domain: example.com
    addresses: [192.0.2.10, "2001:db8::10"]
    provider: rfc2136
    server: ns1.example.com
    key_name: ansible
    key_secret: "{{ tsig_secret }}"

- name: Many domains on one shared policy host, one read and one write per zone
  mailsec.mta_sts.mta_sts_host_record:
    domains:
      - example.com
      - example.net
      - domain: customer.example
        target: mta-sts.hoster.example     # a customer that delegates its policy host (RFC 8461 section 8.2)
      - domain: old.example
        state: absent
    addresses: [192.0.2.10]
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone
'''

RETURN = r'''
results:
  description: One entry per domain, in the order given.
  returned: success or failure after a partial change
  type: list
  elements: dict
  contains:
    domain:
      description: The domain.
      type: str
      sample: example.com
    name:
      description: The name managed.
      type: str
      sample: mta-sts.example.com
    zone:
      description: The zone that holds it.
      type: str
      sample: example.com
    state:
      description: The state asked for.
      type: str
      sample: present
    changed:
      description: Whether this domain's records changed (or would change, in check mode).
      type: bool
    before:
      description: The A, AAAA and CNAME values at the name before the run, by type (IPv6 compressed, names without the final dot).
      type: dict
      sample: {"A": ["192.0.2.10"], "AAAA": [], "CNAME": []}
    after:
      description: The A, AAAA and CNAME values at the name after the run, by type.
      type: dict
      sample: {"A": [], "AAAA": [], "CNAME": ["mta-sts.hoster.example"]}
    domain_unicode:
      description: The domain as given, when it was an internationalised name with U-labels.
      type: str
      returned: when the domain was given with U-labels
      sample: bücher.example
api:
  description:
    - What the run asked of the provider's API, so a pipeline can show the progress of a long run; null for
      providers without an API quota (V(rfc2136), V(zonefile)). See O(api_budget).
  returned: always (success, or failure after the provider was set up)
  type: dict
  contains:
    requests:
      description: Requests sent, every attempt (retries) counted.
      type: int
      sample: 1020
    requests_by_kind:
      description: Requests by what they were, C(zones) (zone listings), C(read) (record reads), C(write) (changes),
        C(other) (such as waiting for a change to be in sync).
      type: dict
      sample: {"zones": 20, "read": 1000, "write": 0, "other": 0}
    retries:
      description: Attempts that were retries of a failed or throttled one.
      type: int
      sample: 0
    throttled:
      description: Answers that refused for the quota (HTTP 429, C(Throttling), C(PriorRequestNotComplete)).
      type: int
      sample: 0
    quota_wait_seconds:
      description: Seconds spent waiting for the budget of O(api_budget) (pacing, not retries).
      type: float
      sample: 12.3
conflict:
  description:
    - On failure, whether it came from what the module read at the provider rather than from the input
      (other records beside a CNAME to be, or a change by someone else between the read and the write).
  returned: failure after reading
  type: bool
domain:
  description: With O(domain), the same as RV(results[0].domain); likewise RV(name), RV(zone), RV(before), RV(after).
  returned: success, with O(domain)
  type: str
  sample: example.com
name:
  description: With O(domain), the name managed.
  returned: success, with O(domain)
  type: str
  sample: mta-sts.example.com
zone:
  description: With O(domain), the zone.
  returned: success, with O(domain)
  type: str
  sample: example.com
before:
  description: With O(domain), the A, AAAA and CNAME values before, by type.
  returned: success, with O(domain)
  type: dict
after:
  description: With O(domain), the A, AAAA and CNAME values after, by type.
  returned: success, with O(domain)
  type: dict
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._record_module import run_record_module
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import HOST_RECORD


def main():
    run_record_module(HOST_RECORD, dict(addresses=dict(type='list', elements='str'), target=dict(type='str')),
                      mutually_exclusive=[('addresses', 'target')])


if __name__ == '__main__':
    main()
