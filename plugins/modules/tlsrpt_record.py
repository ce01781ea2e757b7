#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tlsrpt_record
short_description: Publish the C(_smtp._tls) TLS reporting TXT record of mail domains
version_added: 0.1.0
description:
  - Publishes or removes the C(_smtp._tls.<domain>) TXT record (RFC 8460 section 3), C(v=TLSRPTv1; rua=<uri>,...),
    through a DNS provider, for one domain or many in one run.
extends_documentation_fragment:
  - mailsec.mta_sts.record
  - mailsec.mta_sts.record.domain
  - mailsec.mta_sts.record.txt
  - mailsec.mta_sts.attributes
  - mailsec.mta_sts.attributes.dns_group
  - mailsec.mta_sts.zonefile
  - mailsec.mta_sts.rfc2136
  - mailsec.mta_sts.route53
  - mailsec.mta_sts.cloudflare
  - mailsec.mta_sts.retry
options:
  domains:
    description:
      - Several domains in one run. Each item is a domain name that shares the task's O(rua) and O(state), or a
        dict with its own C(domain), C(state) and C(rua).
      - Mutually exclusive with O(domain).
    type: list
    elements: raw
  rua:
    description:
      - Where reports go, C(mailto:) or C(https:) URIs, in order, as a list, or one URI as a string.
        Required with O(state=present).
      - A comma is refused, in a string or in a list item, and never split on. In the record a comma separates URIs
        (RFC 8460 section 3), so a comma inside a URI must be percent-encoded as C(%2C), and several URIs are given
        as a list. C(!) inside a URI must be percent-encoded as well (C(%21)).
    type: raw
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.mta_sts_record
  - name: RFC 8460 (SMTP TLS Reporting)
    description: The TLS-RPT specification.
    link: https://www.rfc-editor.org/rfc/rfc8460
'''

EXAMPLES = r'''
- name: Ask for TLS reports by mail and over HTTPS
  mailsec.mta_sts.tlsrpt_record:
    domain: example.com
    rua:
      - mailto:tlsrpt@example.com
      - https://reports.example.com/tlsrpt
    provider: rfc2136
    server: ns1.example.com
    key_name: ansible
    key_secret: "{{ tsig_secret }}"

- name: Same reporting address for many domains in a git-kept zone file each
  mailsec.mta_sts.tlsrpt_record:
    domains: "{{ mail_domains }}"
    rua: [mailto:tlsrpt@example.com]
    provider: zonefile
    zone_file: "{{ playbook_dir }}/zones/{zone}.zone"
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
      description: The record's name.
      type: str
      sample: _smtp._tls.example.com
    zone:
      description: The zone that holds it.
      type: str
      sample: example.com
    state:
      description: The state asked for.
      type: str
      sample: present
    changed:
      description: Whether this domain's record changed (or would change, in check mode).
      type: bool
    before:
      description: The C(v=TLSRPTv1) values at the name before the run.
      type: list
      elements: str
    after:
      description: The C(v=TLSRPTv1) values at the name after the run.
      type: list
      elements: str
      sample: ["v=TLSRPTv1; rua=mailto:tlsrpt@example.com"]
    rua:
      description: The report URIs published (with O(state=present)).
      type: list
      elements: str
    domain_unicode:
      description: The domain as given, when it was an internationalised name with U-labels; RV(results[].domain) is its A-label form.
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
      (a CNAME at the name, or a change by someone else between the read and the write). Re-running may succeed.
  returned: failure after reading
  type: bool
domain:
  description: With O(domain), the domain.
  returned: success, with O(domain)
  type: str
  sample: example.com
name:
  description: With O(domain), the record's name.
  returned: success, with O(domain)
  type: str
  sample: _smtp._tls.example.com
zone:
  description: With O(domain), the zone.
  returned: success, with O(domain)
  type: str
before:
  description: With O(domain), the C(v=TLSRPTv1) values before.
  returned: success, with O(domain)
  type: list
  elements: str
after:
  description: With O(domain), the C(v=TLSRPTv1) values after.
  returned: success, with O(domain)
  type: list
  elements: str
rua:
  description: With O(domain) and O(state=present), the report URIs published.
  returned: success, with O(domain) and O(state=present)
  type: list
  elements: str
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._record_module import run_record_module
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import TLSRPT_RECORD


def main():
    # raw, not a list of str: Ansible would split a string on commas, and a comma belongs to no URI here.
    run_record_module(TLSRPT_RECORD, dict(rua=dict(type='raw')))


if __name__ == '__main__':
    main()
