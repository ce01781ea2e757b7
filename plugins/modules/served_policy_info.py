#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: served_policy_info
short_description: Verify that every address of a policy host serves exactly the new MTA-STS policy
version_added: 0.1.0
description:
  - The step RFC 8461 section 8 puts between deploying a policy file and publishing its new id. Publishing the id
    first lets senders fetch the old policy and cache it under the new id.
  - For each domain, fetches C(https://mta-sts.<domain>/.well-known/mta-sts.txt) from every address of
    C(mta-sts.<domain>) (or the C(addresses) given in O(domains)), each on its own, as a strict sender does (HTTPS on
    port 443, the certificate checked against C(mta-sts.<domain>), no redirects, C(text/plain), at most 64 KiB).
  - A domain is served when every address answers with exactly the expected bytes. One address with the old
    policy is enough to keep it unserved, since senders reach any of them.
  - Judges only the fetch, never the C(_mta-sts) TXT record, which is not published yet on a first rollout.
  - Tries again every O(interval) seconds, until every domain is served or O(wait_timeout) has passed.
  - Never fails because a domain is not served; the playbook decides (see RV(all_served) and RV(results[].reason)).
requirements:
  - dnspython (on the host the task runs on)
extends_documentation_fragment:
  - mailsec.mta_sts.validate.probe
  - mailsec.mta_sts.attributes.info_module
  - mailsec.mta_sts.attributes.validate_group
options:
  domains:
    description:
      - The domains to verify, each a dict with the keys C(domain) (the mail domain; the policy host is
        C(mta-sts.<domain>)), C(policy) and optionally C(addresses).
      - C(policy) is the policy that must be served, and must be valid. A dict is rendered as the
        P(mailsec.mta_sts.render_policy#filter) filter and M(mailsec.mta_sts.policy_site) render it; text is compared
        byte for byte (as UTF-8), line ends included.
      - C(addresses) is a list of IP addresses to fetch from instead of the addresses C(mta-sts.<domain>) resolves to.
      - Other keys are ignored, so the items of an inventory's domain list can be given as they are.
      - A domain listed twice, in any spelling, is refused.
    required: true
    type: list
    elements: dict
  wait_timeout:
    description:
      - Seconds to keep trying the domains that are not served yet, counted from the first try. The last try starts
        by then, so the task ends within O(wait_timeout) plus one try (O(timeout)).
      - V(0) tries once. At most V(3600).
    type: float
    default: 0
  interval:
    description:
      - Seconds between two tries of a domain that is not served yet. More than V(0), at most V(600).
    type: float
    default: 5
notes:
  - O(timeout) applies to each address's fetch and to each lookup of the host's addresses.
  - A certificate that expires within O(expiry_warning_days) does not stop a domain from being served; its
    C(policy-certificate-expiring) warning is in RV(results[].addresses[].findings).
  - With O(authoritative=true) the addresses come from the zone's own nameservers, so a host record published a
    moment ago is seen at once, whatever the caches hold.
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.policy_info
  - module: mailsec.mta_sts.policy_site
  - plugin: mailsec.mta_sts.validate
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Wait until every policy host address serves the new policy (RFC 8461 section 8), at most five minutes
  mailsec.mta_sts.served_policy_info:
    domains:
      - domain: example.com
        policy: {mode: enforce, mx: [mx1.example.com], max_age: 604800}
      - domain: example.net
        policy: "{{ lookup('ansible.builtin.file', 'policies/example.net.txt') }}"
        addresses: [192.0.2.10, 2001:db8::10]
    authoritative: true
    wait_timeout: 300
    interval: 10
  register: served

- name: Stop here, naming each domain whose policy host does not serve the new policy yet
  ansible.builtin.fail:
    msg: "{{ served.results | rejectattr('served') | map(attribute='reason') }}"
  when: not served.all_served
'''

RETURN = r'''
all_served:
  description: Whether every domain is served.
  returned: always
  type: bool
results:
  description: One result per domain, in order, from its last try.
  returned: always
  type: list
  elements: dict
  contains:
    domain:
      description: The domain.
      type: str
    served:
      description: Whether every address served exactly the expected bytes (and there was at least one address).
      type: bool
    expected_id:
      description: The id of the expected policy, as the P(mailsec.mta_sts.policy_id#filter) filter derives it.
      type: str
    addresses:
      description: What each address served.
      type: list
      elements: dict
      contains:
        address:
          description: The IP address fetched from.
          type: str
        status:
          description: The HTTP status; null when there was no HTTP answer.
          type: int
        id:
          description: The id of the policy served (derived from its bytes); null when no valid policy came back.
          type: str
        matches:
          description: Whether the address served exactly the expected bytes, as a strict sender accepts a policy.
          type: bool
        error:
          description: "Why a strict sender rejects what this address served, as C(code: message) with the codes of
            docs/findings.md (for example C(policy-fetch-failed), C(policy-certificate-invalid)); null otherwise."
          type: str
        findings:
          description: The findings about this fetch, as the P(mailsec.mta_sts.validate#lookup) lookup reports them.
          type: list
          elements: dict
    reason:
      description: Why the domain is not served, naming each address that differs and what it served; null when served.
      type: str
      sample: "mta-sts.example.com at 192.0.2.11 serves the policy with id abc..., not xyz..."
    attempts:
      description: How many times the domain was tried.
      type: int
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import LiveError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._served import verify
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import PROBE_OPTIONS

OPTIONS = dict(PROBE_OPTIONS, wait_timeout=dict(type='float', default=0), interval=dict(type='float', default=5))


def main():
    # Items are checked by _served (naming the item and the field), so other keys of an inventory item pass.
    spec = dict(OPTIONS, domains=dict(type='list', elements='dict', required=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    options = dict((name, module.params[name]) for name in OPTIONS)
    try:
        results, all_served = verify(module.params['domains'], **options)
    except (ValidationError, LiveError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, all_served=all_served, results=results)


if __name__ == '__main__':
    main()
