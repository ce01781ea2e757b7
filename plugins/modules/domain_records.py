#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: domain_records
short_description: Publish a mail domain's whole MTA-STS record set in one run, one read and one write per zone
version_added: 0.1.0
description:
  - Publishes or removes, for each domain, any of its MTA-STS records in one run - the C(_mta-sts) TXT record
    (O(domains[].sts), as M(mailsec.mta_sts.mta_sts_record)), the C(_smtp._tls) TXT record (O(domains[].tlsrpt), as
    M(mailsec.mta_sts.tlsrpt_record)), the policy host's name C(mta-sts.<domain>) (O(domains[].host), as
    M(mailsec.mta_sts.mta_sts_host_record)) and the TLSA records of its MX hosts (O(domains[].tlsa), as
    M(mailsec.mta_sts.tlsa_record)).
  - Each kind takes the options of its own module, with the same rules, checks and results. The difference is the cost
    at the provider - the module reads each zone once for all the names of all the domains in it, and writes each zone
    at most once, where running the four modules reads every zone four times. At a provider's API quota that is the
    difference between a run that fits and one that is locked out.
  - A kind a domain does not give is not managed there; nothing is written at its name.
  - All input, of every domain and every kind, is validated before anything is read or written; an error names the
    field, for example C(domains[3].tlsrpt.rua) or C(domains[0].tlsa[1].current).
  - A conflict in any kind (a CNAME where a TXT or TLSA record would go, other records where a CNAME would go)
    fails the module before anything is written, in any zone, with RV(conflict=true).
  - Order of RFC 8461 section 8 - a new C(_mta-sts) id goes out only after the policy it announces is served and
    verified. Publish the policy host's name and C(_smtp._tls) (and TLSA) together first; give O(domains[].sts) only
    in a run after the policy is verified (see EXAMPLES).
extends_documentation_fragment:
  - mailsec.mta_sts.record
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
      - The mail domains, each a dict with C(domain) and the kinds to manage there. Each kind's dict may also give
        C(state) (V(present) or V(absent), default O(state)) and C(ttl) (over O(ttl)).
      - A domain listed twice, or a name managed twice (two domains listing one MX host's TLSA records, or a
        C(record_name) that is another domain's C(_mta-sts) name), is refused.
    type: list
    elements: dict
    required: true
    suboptions:
      domain:
        description:
          - The mail domain, for example V(example.com); U-labels are converted to A-labels as by the other record
            modules.
        type: str
        required: true
      sts:
        description:
          - The C(_mta-sts) TXT record, with the options of M(mailsec.mta_sts.mta_sts_record) - C(id) or C(policy),
            C(delegate_to) or C(record_name), C(state), C(ttl) - merged over O(sts).
          - V(false) leaves it alone at this domain, whatever O(sts) says; omitted, O(sts) decides.
        type: raw
      tlsrpt:
        description:
          - The C(_smtp._tls) TXT record, with the options of M(mailsec.mta_sts.tlsrpt_record) - C(rua), C(state),
            C(ttl) - merged over O(tlsrpt).
          - V(false) leaves it alone at this domain.
        type: raw
      host:
        description:
          - The policy host's name C(mta-sts.<domain>), with the options of M(mailsec.mta_sts.mta_sts_host_record) -
            C(addresses) or C(target), C(state), C(ttl) - merged over O(host).
          - V(false) leaves it alone at this domain.
        type: raw
      tlsa:
        description:
          - The TLSA records of the domain's MX hosts, one dict per host and port, with the options of
            M(mailsec.mta_sts.tlsa_record) - C(host) (required), C(current), C(next), C(records), C(smtp_port),
            C(usage), C(selector), C(matching_type), C(state), C(ttl).
        type: list
        elements: dict
  sts:
    description:
      - Defaults of O(domains[].sts) for every domain; a domain that gives C(id) or C(policy) uses neither of
        these (they are taken together, as in M(mailsec.mta_sts.mta_sts_record)).
      - Given, the C(_mta-sts) record is managed at every domain that does not set O(domains[].sts=false).
    type: dict
  tlsrpt:
    description:
      - Defaults of O(domains[].tlsrpt) for every domain, for example the one C(rua) of all of them.
      - Given, the C(_smtp._tls) record is managed at every domain that does not set O(domains[].tlsrpt=false).
    type: dict
  host:
    description:
      - Defaults of O(domains[].host) for every domain, for example the shared policy host's C(addresses).
      - Given, C(mta-sts.<domain>) is managed at every domain that does not set O(domains[].host=false).
    type: dict
  serving_check:
    description:
      - The look at an MX host before a change that removes any of its TLSA values, as O(domains[].tlsa) items
        have it in M(mailsec.mta_sts.tlsa_record). The module connects to the host (or O(serving_check.address)) on
        the item's C(smtp_port), issues STARTTLS and matches the served chain against the records. When the served key
        matches a record being removed and none left, or the MX cannot be probed, the whole run is refused before
        anything is written.
      - The C(serving) key of the RV(results[].tlsa) entries shows what was found.
    type: dict
    suboptions:
      enabled:
        description:
          - Set to V(false) to remove TLSA records without looking at the MX.
        type: bool
        default: true
      address:
        description:
          - The IP address to connect to instead of the hosts' own addresses (for every MX host of the task).
        type: str
      timeout:
        description:
          - Seconds for the whole probe of one host (DNS, connection, SMTP dialogue, TLS handshake), at most 300.
        type: float
        default: 10.0
      ca_path:
        description:
          - A PEM file of certificate authorities for the probe's PKIX check. DANE matching does not use it.
        type: path
notes:
  - The O(policy_check) applies to O(domains[].sts) and the O(serving_check) to O(domains[].tlsa), as in their own
    modules.
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.mta_sts_record
  - module: mailsec.mta_sts.tlsrpt_record
  - module: mailsec.mta_sts.mta_sts_host_record
  - module: mailsec.mta_sts.tlsa_record
  - name: RFC 8461 section 8 (changing a policy)
    description: Serve and verify the new policy before publishing its id.
    link: https://www.rfc-editor.org/rfc/rfc8461#section-8
'''

EXAMPLES = r'''
# Step 1 (RFC 8461 section 8): the policy host's name, TLS reporting and DANE, together, before the policy is served.
- name: Everything but the _mta-sts id, one read and one write per zone
  mailsec.mta_sts.domain_records:
    domains:
      - domain: example.com
        tlsa:
          - host: mx1.example.com
            current: "{{ lookup('ansible.builtin.file', 'certs/mx1.crt') }}"
      - domain: example.net
      - domain: customer.example
        host: {target: mta-sts.hoster.example}
    host: {addresses: [192.0.2.10, "2001:db8::10"]}
    tlsrpt: {rua: [mailto:tlsrpt@example.com]}
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

# Step 2, once the policy is served and verified at https://mta-sts.<domain>/.well-known/mta-sts.txt: its id.
- name: The _mta-sts records, with the records of step 1 kept as they are, in the same single read per zone
  mailsec.mta_sts.domain_records:
    domains:
      - domain: example.com
      - domain: example.net
      - domain: customer.example
        sts: {delegate_to: customer.example._mta-sts.hoster.example}
    sts:
      policy: {mode: testing, mx: [mx1.example.com], max_age: 604800}
    host: {addresses: [192.0.2.10, "2001:db8::10"]}
    tlsrpt: {rua: [mailto:tlsrpt@example.com]}
    provider: cloudflare
    api_token: "{{ cloudflare_token }}"

- name: Stop asking for TLS reports at one domain, leave its other records alone
  mailsec.mta_sts.domain_records:
    domains:
      - domain: example.net
        tlsrpt: {state: absent}
    provider: route53
'''

RETURN = r'''
results:
  description: One entry per domain, in the order given.
  returned: success, or failure after reading (a conflict, a refusal of the serving check, a partial change)
  type: list
  elements: dict
  contains:
    domain:
      description: The domain (A-label form).
      type: str
      sample: example.com
    changed:
      description: Whether any of this domain's records changed (or would change, in check mode).
      type: bool
    sts:
      description:
        - The C(_mta-sts) record's result, as an item of M(mailsec.mta_sts.mta_sts_record)'s RV(results) (C(name),
          C(zone), C(state), C(changed), C(before), C(after), C(id), C(policy), ...); null when not managed.
      type: dict
    tlsrpt:
      description: The C(_smtp._tls) record's result, as in M(mailsec.mta_sts.tlsrpt_record); null when not managed.
      type: dict
    host:
      description: The result of C(mta-sts.<domain>), as in M(mailsec.mta_sts.mta_sts_host_record); null when not managed.
      type: dict
    tlsa:
      description: One result per O(domains[].tlsa) item, as in M(mailsec.mta_sts.tlsa_record) (with C(serving) when
        the MX was probed).
      type: list
      elements: dict
api:
  description:
    - What the run cost at the provider's API (providers V(route53) and V(cloudflare)), null for the others.
      See the result of the same name of the other record modules.
  returned: always
  type: dict
conflict:
  description:
    - On failure, whether it came from what the module read at the provider rather than from the input.
      Nothing was written in any zone when a conflict was found before the writes.
  returned: failure after reading
  type: bool
field:
  description: On a validation failure, the field at fault, for example V(domains[3].tlsrpt.rua).
  returned: failure of validation
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._domain_records import build_domains
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.registry import (
    PROVIDERS, provider_options, provider_rules, warn_unused_options,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._record_module import (
    POLICY_CHECK_OPTION, SERVING_CHECK_OPTION, check_serving, check_serving_options, item_diffs, publish_items, warn_all,
)


def main():
    argument_spec = dict(
        # The kinds' dicts are raw: each kind validates its own, so that every error names its field the same way.
        domains=dict(type='list', elements='dict', required=True, options=dict(
            domain=dict(type='str', required=True),
            sts=dict(type='raw'),
            tlsrpt=dict(type='raw'),
            host=dict(type='raw'),
            tlsa=dict(type='list', elements='dict'),
        )),
        sts=dict(type='dict'),
        tlsrpt=dict(type='dict'),
        host=dict(type='dict'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        ttl=dict(type='int', default=3600),
        zone=dict(type='str'),
        provider=dict(type='str', required=True, choices=sorted(PROVIDERS)),
    )
    argument_spec.update(POLICY_CHECK_OPTION)
    argument_spec.update(SERVING_CHECK_OPTION)
    argument_spec.update(provider_options())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **provider_rules())
    warn_unused_options(module)
    domains = []

    def build(params):
        domains.extend(build_domains(params))
        check_serving_options(params)
        return [item for domain in domains for item in domain.items]

    def results_of(items):
        return [domain.result() for domain in domains]

    items, api = publish_items(module, build, results_of, before_write=check_serving)
    warn_all(module, items)
    results = results_of(items)
    output = dict(changed=any(result['changed'] for result in results), results=results, api=api)
    if module._diff:
        output['diff'] = item_diffs(items)
    module.exit_json(**output)


if __name__ == '__main__':
    main()
