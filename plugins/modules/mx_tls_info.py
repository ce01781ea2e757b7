#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: mx_tls_info
short_description: Probe named mail hosts for STARTTLS as an MTA-STS enforcing sender does
version_added: 0.1.0
description:
  - Connects to port 25 of each host, says EHLO, asks for STARTTLS and checks the certificate (trusted, unexpired,
    naming the host), the same probe the P(mailsec.mta_sts.validate#lookup) lookup makes with C(check_mx_tls=true).
  - Each host is judged as if it were an MX under a C(mode=enforce) policy, so every TLS fault is an error; use it to
    check your own MX names before they go into a policy, or after a certificate renewal.
  - Certificates are judged at the time of the run; see O(expiry_warning_days).
requirements:
  - dnspython (on the host the task runs on)
  - cryptography (optional; to name the names and expiry of a certificate that fails verification)
extends_documentation_fragment:
  - mailsec.mta_sts.validate.probe
  - mailsec.mta_sts.attributes.info_module
  - mailsec.mta_sts.attributes.validate_group
options:
  hosts:
    description:
      - The host names to probe (MX names, not mail domains). A name listed twice is refused.
    required: true
    type: list
    elements: str
  address:
    description:
      - Connect to this IP address for every host instead of the addresses its name resolves to, to check a
        server's names on that server (for example before DNS points at it). The certificate is still checked
        against each host name.
    type: str
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.policy_info
  - plugin: mailsec.mta_sts.validate
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Check the MX names this Postfix serves before they go into the policy
  mailsec.mta_sts.mx_tls_info:
    hosts:
      - mx1.example.com
      - mx2.example.com
    expiry_warning_days: 21
  register: mx_tls

- name: Fail on any error
  ansible.builtin.assert:
    that: mx_tls.results | map(attribute='findings') | flatten | selectattr('severity', 'eq', 'error') | list | length == 0
    fail_msg: "{{ mx_tls.results | map(attribute='findings') | flatten }}"
'''

RETURN = r'''
results:
  description: One result per host, in order.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The host name probed.
      type: str
    addresses:
      description: The addresses it resolved to.
      type: list
      elements: str
    starttls:
      description: Whether the EHLO answer offered STARTTLS; null when the probe ended before EHLO.
      type: bool
    tls_version:
      description: The TLS version negotiated, for example C(TLSv1.3).
      type: str
    certificate_valid:
      description: Whether the certificate is trusted, unexpired and names the host.
      type: bool
    names:
      description: The names in the certificate.
      type: list
      elements: str
    not_after:
      description: When the certificate expires (ISO 8601, UTC).
      type: str
    error:
      description: "The probe error or the certificate error, as C(kind: message)."
      type: str
    findings:
      description:
        - C({code, severity, message}), with the codes C(mx-probe-failed), C(mx-starttls-missing), C(mx-tls-failed),
          C(mx-certificate-invalid) and C(mx-certificate-expiring) of docs/findings.md, as for an MX under enforce.
      type: list
      elements: dict
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._info_module import run_check_module
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import PROBE_OPTIONS, probe_hosts


def main():
    options = dict(PROBE_OPTIONS, address=dict(type='str'))
    run_check_module('hosts', dict(type='list', elements='str', required=True), options, probe_hosts)


if __name__ == '__main__':
    main()
