#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mta_sts_record
short_description: Publish the C(_mta-sts) TXT record of MTA-STS domains
version_added: 0.1.0
description:
  - Publishes or removes the C(_mta-sts.<domain>) TXT record (RFC 8461 section 3.1), C(v=STSv1; id=<id>;),
    through a DNS provider, for one domain or many in one run.
  - The id is given (O(id)) or derived from the policy (O(policy)) so that it changes exactly when the served
    policy file changes; see the P(mailsec.mta_sts.policy_id#filter) filter.
  - Publish the new id only after the new policy file is served and verified (RFC 8461 section 8), because senders
    fetch the policy again only when they see a new id.
  - A policy with C(max_age) under a day, or under a week with C(mode) V(enforce), is published with a warning, since it
    protects little against a downgrade between two fetches (RFC 8461 section 3.2 suggests weeks).
  - O(state=absent) removes the record at once. Senders that cached the policy keep applying it for up to its
    C(max_age) and, with no record left, never learn that it changed. To retire a policy (RFC 8461 section 8.3),
    first serve and publish C(mode) V(none) with a new id, keep it for the old C(max_age), then remove the record
    (see EXAMPLES). Before removing an existing record the module fetches the live policy (O(policy_check)) and
    warns when it is not C(mode) V(none), or when that could not be confirmed.
  - With O(policy), a change of id shows the policy text in the diff and in the results, with the policy behind the
    old id when the policy host still serves it, or a line saying why it is not known (usually the host already
    serves the new policy, as it should before the id changes).
extends_documentation_fragment:
  - mailsec.mta_sts.record
  - mailsec.mta_sts.record.domain
  - mailsec.mta_sts.record.txt
  - mailsec.mta_sts.record.policy_check
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
      - Several domains in one run. Each item is a domain name that shares the task's O(id), O(policy),
        O(delegate_to), O(record_name) and O(state), or a dict with its own C(domain), C(state), C(id) or C(policy),
        and C(delegate_to) or C(record_name) (each taken from the task when the item does not give it).
      - Mutually exclusive with O(domain).
    type: list
    elements: raw
  id:
    description:
      - The policy id, 1 to 32 letters and digits. Mutually exclusive with O(policy).
    type: str
  policy:
    description:
      - The policy the record announces, as a dict (C(mode), C(mx), C(max_age), optional C(extensions)) or as the
        exact policy text served. The id is derived from its bytes with the P(mailsec.mta_sts.policy_id#filter) rule.
      - Text read with C(lookup('file', path)) loses its final newline (the lookup strips trailing whitespace by
        default), so it hashes to another id than the bytes a web server serves from that file. Use
        C(lookup('file', path, rstrip=false)).
      - Mutually exclusive with O(id).
    type: raw
  delegate_to:
    description:
      - Delegation to a hosting provider (RFC 8461 section 8.2), the customer's side. Publishes C(_mta-sts.<domain>)
        as a CNAME to this name, in the provider's zone, where the provider keeps the TXT record (see O(record_name)).
        A CNAME there to another name is replaced.
        O(id) and O(policy) are not used, since the record at the target says them.
      - A C(v=STSv1) TXT record at C(_mta-sts.<domain>) is removed in the same write. Any other TXT value there makes
        the module fail naming it, before anything is written, since a CNAME may not share its name with other records.
      - With O(state=absent), the CNAME is removed only when it points at this name.
      - Without O(delegate_to), a CNAME at the record's name is never written over.
      - Mutually exclusive with O(record_name).
    type: str
  record_name:
    description:
      - Delegation to a hosting provider (RFC 8461 section 8.2), the provider's side. Publishes the TXT record at this
        name (in the provider's zone) instead of C(_mta-sts.<domain>), for example V(example.com._mta-sts.hoster.example),
        the name the customer's C(_mta-sts.<domain>) CNAME points at (O(delegate_to)).
      - Mutually exclusive with O(delegate_to).
    type: str
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.tlsrpt_record
  - name: RFC 8461 (SMTP MTA Strict Transport Security)
    description: The MTA-STS specification.
    link: https://www.rfc-editor.org/rfc/rfc8461
'''

EXAMPLES = r'''
- name: Publish the record for the policy served at mta-sts.example.com
  mailsec.mta_sts.mta_sts_record:
    domain: example.com
    policy:
      mode: testing
      mx: [mx1.example.com, mx2.example.com]
      max_age: 86400
    provider: rfc2136
    server: ns1.example.com
    key_name: ansible
    key_secret: "{{ tsig_secret }}"

- name: Many domains, one read and one update per zone
  mailsec.mta_sts.mta_sts_record:
    domains:
      - example.com
      - example.net
      - domain: example.org
        state: absent
    id: 20261128T1200
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

- name: The policy text exactly as the web server serves it (rstrip=false keeps the final CRLF)
  mailsec.mta_sts.mta_sts_record:
    domain: example.com
    policy: "{{ lookup('file', 'files/mta-sts.example.com.txt', rstrip=false) }}"
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

# Retiring a policy (RFC 8461 section 8.3): first serve mode none (on the policy host) and publish its id,
# wait the old max_age, then remove the record (and stop serving the policy).
- name: Retire, step 1 of 2 - announce mode none (serve the same policy first)
  mailsec.mta_sts.mta_sts_record:
    domain: example.com
    policy:
      mode: none
      max_age: 86400
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

- name: Retire, step 2 of 2 - at least the OLD max_age later (here one week), remove the record
  mailsec.mta_sts.mta_sts_record:
    domain: example.com
    state: absent
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

# Delegation (RFC 8461 section 8.2): the customer's zone points at the hoster's, which keeps the record.
- name: Customer side - _mta-sts.example.com is a CNAME to the hoster's name
  mailsec.mta_sts.mta_sts_record:
    domain: example.com
    delegate_to: example.com._mta-sts.hoster.example
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

- name: Hoster side - the TXT record at that name, in the hoster's zone
  mailsec.mta_sts.mta_sts_record:
    domain: example.com
    record_name: example.com._mta-sts.hoster.example
    policy:
      mode: enforce
      mx: [mx1.hoster.example]
      max_age: 604800
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

- name: Defaults for every DNS module of the collection
  module_defaults:
    group/mailsec.mta_sts.dns:
      provider: rfc2136
      server: 192.0.2.53
      key_name: ansible
      key_secret: "{{ tsig_secret }}"
  block:
    - name: Remove the record
      mailsec.mta_sts.mta_sts_record:
        domain: example.com
        state: absent
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
      sample: _mta-sts.example.com
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
      description: The C(v=STSv1) values at the name before the run (more than one means receivers saw no policy).
      type: list
      elements: str
      sample: ["v=STSv1; id=old;"]
    after:
      description: The C(v=STSv1) values at the name after the run.
      type: list
      elements: str
      sample: ["v=STSv1; id=2n7k6q3v5x2m4h3a7d4f6g2j5k7l3m4n;"]
    id:
      description: The id published (with O(state=present)).
      type: str
      sample: 2n7k6q3v5x2m4h3a7d4f6g2j5k7l3m4n
    domain_unicode:
      description: The domain as given, when it was an internationalised name with U-labels; RV(results[].domain) is its A-label form.
      type: str
      returned: when the domain was given with U-labels
      sample: bücher.example
    policy:
      description: The policy text the id is derived from, exactly (CRLF line ends for a dict).
      type: str
      returned: with O(policy)
      sample: "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 86400\r\n"
    previous_policy:
      description:
        - The policy behind the old id, when the id changes and the policy host still serves the policy whose id
          (by the P(mailsec.mta_sts.policy_id#filter) rule) is the old id. The diff says why when it is not known.
      type: str
      returned: with O(policy), when the id changes and the old policy is known
    delegated_to:
      description: The CNAME target given by O(delegate_to), or V(null).
      type: str
      sample: example.com._mta-sts.hoster.example
    record_name:
      description: The name given by O(record_name), where the TXT record is kept; V(null) when it is C(_mta-sts.<domain>).
      type: str
      sample: example.com._mta-sts.hoster.example
    cname:
      description: With O(delegate_to), the CNAME targets at the name before and after the run.
      type: dict
      returned: with O(delegate_to)
      sample: {"before": [], "after": ["example.com._mta-sts.hoster.example"]}
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
      (a CNAME at the name, other TXT values where a delegation's CNAME would go, or a change by someone else between
      the read and the write). Re-running may succeed.
  returned: failure after reading
  type: bool
domain:
  description: With O(domain), the same as RV(results[0].domain); likewise RV(name), RV(zone), RV(before), RV(after), RV(id).
  returned: success, with O(domain)
  type: str
  sample: example.com
name:
  description: With O(domain), the record's name.
  returned: success, with O(domain)
  type: str
  sample: _mta-sts.example.com
zone:
  description: With O(domain), the zone.
  returned: success, with O(domain)
  type: str
  sample: example.com
before:
  description: With O(domain), the C(v=STSv1) values before.
  returned: success, with O(domain)
  type: list
  elements: str
after:
  description: With O(domain), the C(v=STSv1) values after.
  returned: success, with O(domain)
  type: list
  elements: str
id:
  description: With O(domain) and O(state=present), the id published.
  returned: success, with O(domain) and O(state=present)
  type: str
  sample: 2n7k6q3v5x2m4h3a7d4f6g2j5k7l3m4n
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._record_module import POLICY_CHECK_OPTION, run_record_module
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import STS_RECORD


def main():
    run_record_module(
        STS_RECORD,
        dict(id=dict(type='str'), policy=dict(type='raw'), delegate_to=dict(type='str'), record_name=dict(type='str'),
             **POLICY_CHECK_OPTION),
        mutually_exclusive=[('id', 'policy'), ('delegate_to', 'record_name')],
    )


if __name__ == '__main__':
    main()
