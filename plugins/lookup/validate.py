# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: validate
author: mailsec maintainers (@mailsec)
version_added: 0.1.0
short_description: Check domains' MTA-STS and TLS-RPT as a strict sending MTA sees them, and what drifted
description:
  - Looks up C(_mta-sts) and C(_smtp._tls), fetches the policy the way RFC 8461 section 3.3 says a sender does,
    matches the MX hosts against it and, optionally, probes their STARTTLS; then compares all of it with O(expect).
  - Returns one result per term, in order. The same as the M(mailsec.mta_sts.policy_info) module, run on the controller.
  - Certificates are judged at the time of the run; see O(expiry_warning_days).
requirements:
  - dnspython (on the controller)
  - cryptography (optional, on the controller; to name the names and expiry of a certificate that fails verification)
extends_documentation_fragment:
  - mailsec.mta_sts.validate
  - mailsec.mta_sts.validate.probe
options:
  _terms:
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
'''

EXAMPLES = r'''
- name: Fail the pipeline when a domain drifted from the policy in git
  ansible.builtin.assert:
    that: result.in_sync and result.valid
    fail_msg: "{{ result.domain }}: {{ result.drift }} {{ result.findings | selectattr('severity', 'eq', 'error') }}"
  vars:
    result: "{{ lookup('mailsec.mta_sts.validate', 'example.com', expect={'policy': policy}, check_mx_tls=true) }}"

- name: DANE - every MX host serves a certificate its TLSA records match, in a signed zone
  ansible.builtin.assert:
    that: result.findings | selectattr('code', 'match', 'dane-') | selectattr('severity', 'ne', 'info') | list == []
    fail_msg: "{{ result.findings | selectattr('code', 'match', 'dane-') | map(attribute='message') }}"
  vars:
    result: "{{ lookup('mailsec.mta_sts.validate', 'example.com', check_dane=true) }}"

- name: Many domains at once
  ansible.builtin.debug:
    msg: "{{ query('mailsec.mta_sts.validate', *mail_domains, concurrency=32) | map(attribute='valid') }}"

- name: The list that drives mailsec.mta_sts.mta_sts_record and tlsrpt_record is the expected state
  ansible.builtin.assert:
    that: item.in_sync
    fail_msg: "{{ item.domain }}: {{ item.drift }}"
  loop: "{{ query('mailsec.mta_sts.validate', *mta_sts_domains) }}"
  vars:
    mta_sts_domains:
      - {domain: example.com, policy: "{{ example_com_policy }}", rua: [mailto:tlsrpt@example.com]}
      - {domain: old.example, state: absent}
'''

RETURN = r'''
_raw:
  description: One result per term; see the keys below.
  type: list
  elements: dict
  contains:
    domain:
      description: The domain.
    valid:
      description: RFC 8461 rules only; see M(mailsec.mta_sts.policy_info).
    in_sync:
      description: Live equals desired; null without O(expect).
    mode:
      description: The live mode.
    id:
      description: The live id.
    policy:
      description: The served policy, parsed.
    records:
      description: Raw TXT values at both names.
    mx:
      description: Per MX host facts; with O(check_dane) each has C(dane) (see M(mailsec.mta_sts.policy_info)).
    policy_certificate:
      description: The policy host's certificate (C(names), C(not_after), C(issuer)); null when no TLS handshake completed.
    findings:
      description: Findings with stable codes.
    drift:
      description: Differences from O(expect).
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import LiveError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import OPTIONS, validate


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        options = dict((name, self.get_option(name)) for name in OPTIONS)
        try:
            return validate(list(terms), **options)
        except (ValidationError, LiveError) as exc:
            raise AnsibleLookupError(str(exc))
