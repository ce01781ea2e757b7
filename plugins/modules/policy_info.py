#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: policy_info
short_description: Check domains' MTA-STS and TLS-RPT as a strict sending MTA sees them, and what drifted
version_added: 0.1.0
description:
  - The P(mailsec.mta_sts.validate#lookup) lookup as a task, to run the checks from any host (for example one
    that sees the same DNS and network as your MTAs).
  - Certificates are judged at the time of the run; see O(expiry_warning_days).
requirements:
  - dnspython (on the host the task runs on)
  - cryptography (optional; to name the names and expiry of a certificate that fails verification)
extends_documentation_fragment:
  - mailsec.mta_sts.validate
  - mailsec.mta_sts.validate.probe
  - mailsec.mta_sts.attributes.info_module
  - mailsec.mta_sts.attributes.validate_group
options:
  domains:
    description:
      - Domain names, or dicts.
      - A dict C({domain, expect}) carries its own O(expect).
      - Or an item of the O(mailsec.mta_sts.mta_sts_record#module:domains) and
        O(mailsec.mta_sts.tlsrpt_record#module:domains) lists - C({domain, policy, id, rua, state}), also with
        C(mode), C(mx) and C(max_age) - whose keys are its expected state, so one inventory list drives the record
        modules and the validator. C(state=absent) expects no record. C(expect) and these keys exclude each other.
      - A domain listed twice, in any spelling (C(example.com), C(EXAMPLE.COM.)), is refused.
    required: true
    type: list
    elements: raw
author:
  - mailsec maintainers (@mailsec)
seealso:
  - plugin: mailsec.mta_sts.validate
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Scheduled drift check
  mailsec.mta_sts.policy_info:
    domains:
      - domain: example.com
        expect:
          policy: "{{ example_com_policy }}"
          rua: [mailto:tlsrpt@example.com]
    check_mx_tls: true
  register: check

- name: DANE and MTA-STS together, against the validating resolver the MTAs use
  mailsec.mta_sts.policy_info:
    domains: [example.com]
    check_dane: true
    nameservers: [127.0.0.53]
  register: dane

- name: Report drift
  ansible.builtin.debug:
    msg: "{{ check.results | rejectattr('in_sync') | map(attribute='drift') }}"
'''

RETURN = r'''
results:
  description: One result per domain, in order.
  returned: always
  type: list
  elements: dict
  contains:
    domain:
      description: The domain.
      type: str
    valid:
      description:
        - RFC 8461 rules only - a strict sender would obtain and apply this policy. Advice and MX probes never change it.
      type: bool
    in_sync:
      description: Live equals desired (no drift); null without O(expect).
      type: bool
    mode:
      description: The live policy's mode.
      type: str
    id:
      description: The live policy id.
      type: str
    policy:
      description: The served policy, parsed.
      type: dict
    records:
      description: The raw TXT values at C(_mta-sts) (C(sts)) and C(_smtp._tls) (C(tlsrpt)).
      type: dict
    mx:
      description:
        - Per MX host facts (C(host), C(preference), C(covered), and the probe's facts with O(check_mx_tls)).
        - With O(check_dane), C(dane) - C(name), C(status), C(records) (C(usage selector matching-type data)),
          C(authenticated) (the resolver's AD bit), C(signed), C(usable), C(matched) (the records the served chain
          satisfies), C(served_spki_sha256) and C(error); null for a host not looked up. See docs/findings.md.
      type: list
      elements: dict
    policy_certificate:
      description:
        - The policy host's certificate as the fetch saw it - C(names), C(not_after) (ISO 8601, UTC) and C(issuer) - for
          reports of its expiry; null when no TLS handshake completed.
      type: dict
    findings:
      description: C({code, severity, message}) with stable codes (docs/findings.md).
      type: list
      elements: dict
    drift:
      description: C({field, desired, live}) for each desired field that differs.
      type: list
      elements: dict
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._info_module import run_check_module
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import OPTIONS, validate


def check(domains, **options):
    return validate(domains, terms_name='domains', **options)


def main():
    run_check_module('domains', dict(type='list', elements='raw', required=True), OPTIONS, check)


if __name__ == '__main__':
    main()
