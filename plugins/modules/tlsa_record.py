#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tlsa_record
short_description: Publish the DANE TLSA records of MX hosts, C(_25._tcp.<host>)
version_added: 0.1.0
description:
  - Publishes or removes the TLSA RRset at C(_<smtp_port>._tcp.<host>) (RFC 7672 section 2.2.3) of one MX host or many,
    through a DNS provider, so that DANE senders (RFC 7672) authenticate the host's STARTTLS certificate from DNSSEC
    instead of the web PKI. The zone must be DNSSEC-signed for the records to protect anything.
  - The record data is computed from the MX's certificate or public key (O(current), O(next)), or given ready
    (O(records)). With O(state=present) the RRset holds exactly those values, each once; a value published twice
    (the same key in O(current) and O(next)) is one record.
  - The defaults, C(3 1 1) (DANE-EE, SubjectPublicKeyInfo, SHA2-256), pin the MX's own key and survive any
    certificate renewal that reuses the key. Other parameters are published with a warning saying why they are
    fragile; usages C(0) (PKIX-TA) and C(1) (PKIX-EE) are refused, since SMTP clients treat them as unusable
    (RFC 7672 section 3.1.3).
  - A key rollover (RFC 7671 section 8) publishes the next key's record beside the current one (O(current) and
    O(next)), waits at least two TTLs, switches the MX to the next key, then publishes only the new one. Before any
    change that removes a TLSA value, the module connects to the MX over STARTTLS (O(serving_check)) and refuses,
    before anything is written, when the key the MX serves now matches a record being removed and none kept.
  - Only the TLSA RRset at the name is managed; records of other types there are never touched. A CNAME at the name
    (the TLSA records kept elsewhere, RFC 7671 section 7) is never written over; the module fails naming it, with
    RV(conflict=true), before anything is written.
  - O(state=absent) removes the TLSA RRset at the name, after the same O(serving_check).
extends_documentation_fragment:
  - mailsec.mta_sts.record
  - mailsec.mta_sts.attributes
  - mailsec.mta_sts.attributes.dns_group
  - mailsec.mta_sts.zonefile
  - mailsec.mta_sts.rfc2136
  - mailsec.mta_sts.route53
  - mailsec.mta_sts.cloudflare
  - mailsec.mta_sts.retry
options:
  host:
    description:
      - The MX host whose TLSA records are managed, for example V(mx1.example.com); the module manages
        C(_<smtp_port>._tcp.<host>).
      - It must be a hostname (letters, digits and hyphens; no underscores). An internationalised name given with
        U-labels is converted to A-labels, as the other record modules do for domains.
      - Mutually exclusive with O(hosts); one of them is required.
    type: str
  hosts:
    description:
      - Several MX hosts in one run. Each item is a host name that shares the task's O(current), O(next),
        O(records), O(smtp_port), parameters and O(state), or a dict with its own C(host), C(state), C(smtp_port),
        C(usage), C(selector), C(matching_type), and C(current), C(next) or C(records) (taken together, so an item that
        gives any of these three uses none of the task's).
      - Mutually exclusive with O(host).
    type: list
    elements: raw
  smtp_port:
    description:
      - The TCP port of the SMTP service, 1 to 65535; the records live at C(_<smtp_port>._tcp.<host>).
      - Named so because O(port) is the DNS server's port of provider V(rfc2136).
    type: int
    default: 25
  current:
    description:
      - The certificate the MX serves now, or its public key, as PEM text (use P(ansible.builtin.file#lookup) for a
        file). Of a chain, the first certificate (the leaf) is used.
      - A private key is refused, and never shown; the option is C(no_log) so that one given by mistake never
        reaches a log.
    type: str
  next:
    description:
      - The certificate or public key the MX will serve after the next rollover, as PEM text; its record is
        published beside O(current)'s (RFC 7671 section 8).
    type: str
  records:
    description:
      - Ready TLSA data, each as V(usage selector matching-type hex), for example V(3 1 1 0c72ac70...).
      - Published as given, beside the records of O(current) and O(next); usages C(0) and C(1) are refused.
    type: list
    elements: str
  usage:
    description:
      - The certificate usage of the records computed from O(current) and O(next).
      - V(3) (DANE-EE) pins the MX's own certificate or key. V(2) (DANE-TA) pins a CA that issues it, with a
        warning, since a CA may rotate its intermediates, as Let's Encrypt does, and the record then matches nothing.
      - Other values are refused; V(0) (PKIX-TA) and V(1) (PKIX-EE) are unusable for SMTP (RFC 7672 section 3.1.3).
    type: int
    default: 3
  selector:
    description:
      - V(1) (SPKI) hashes the public key, and survives renewals on the same key. V(0) (Cert) hashes the whole
        certificate, with a warning, and needs a certificate rather than a public key.
    type: int
    default: 1
  matching_type:
    description:
      - V(1) (SHA2-256), V(2) (SHA2-512), or V(0) (Full, the data itself, with a warning about large answers).
    type: int
    default: 1
  serving_check:
    description:
      - The look at the MX before a change that removes any TLSA value (including O(state=absent)).
      - The module connects to the host (or O(serving_check.address)) on O(smtp_port), issues STARTTLS, and matches
        the served certificate chain against the records. When the served key matches a record being removed
        and none of the records left, the change is refused before anything is written. When the MX cannot be
        probed, the removal is refused too, naming the reason; set O(serving_check.enabled=false) to remove anyway.
      - RV(results[].serving) shows what was found.
    type: dict
    suboptions:
      enabled:
        description:
          - Set to V(false) to remove records without looking at the MX.
        type: bool
        default: true
      address:
        description:
          - The IP address to connect to instead of the host's own addresses (for every host of the task).
        type: str
      timeout:
        description:
          - Seconds for the whole probe of one host (DNS, connection, SMTP dialogue, TLS handshake), at most 300.
        type: float
        default: 10.0
      ca_path:
        description:
          - A PEM file of certificate authorities for the probe's PKIX check. DANE matching does not use it, since the
            chain is matched whether it validates or not.
        type: path
notes:
  - A TLSA change is only safe once the zone is DNSSEC-signed; the module does not check that. The
    C(mailsec.mta_sts.validate) lookup with C(check_dane) does.
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.tlsa_info
  - name: RFC 7672 (SMTP security via opportunistic DANE TLS)
    description: How sending MTAs find and use the TLSA records of an MX host.
    link: https://www.rfc-editor.org/rfc/rfc7672
  - name: RFC 7671 section 8 (digest algorithm and key rollover)
    description: Publishing the next key beside the current one before the switch.
    link: https://www.rfc-editor.org/rfc/rfc7671#section-8
'''

EXAMPLES = r'''
- name: The MX serves its certificate; publish 3 1 1 of its key
  mailsec.mta_sts.tlsa_record:
    host: mx1.example.com
    current: "{{ lookup('ansible.builtin.file', '/etc/postfix/certs/mx1.crt') }}"
    provider: rfc2136
    server: ns1.example.com
    key_name: ansible
    key_secret: "{{ tsig_secret }}"

- name: Rollover, step 1 - publish the next key beside the current one
  mailsec.mta_sts.tlsa_record:
    hosts: [mx1.example.com, mx2.example.com]
    current: "{{ lookup('ansible.builtin.file', 'certs/mx-2025.crt') }}"
    next: "{{ lookup('ansible.builtin.file', 'certs/mx-2026.pub') }}"
    provider: zonefile
    zone_file: /srv/dns/zones/{zone}.zone

- name: Rollover, last step - only the new key, refused while an MX still serves the old one
  mailsec.mta_sts.tlsa_record:
    hosts:
      - mx1.example.com
      - host: mx2.example.com
        records: ["3 1 1 {{ mx2_next_spki_sha256 }}"]
    current: "{{ lookup('ansible.builtin.file', 'certs/mx-2026.pub') }}"
    provider: cloudflare
    api_token: "{{ cloudflare_token }}"

- name: Records computed with the filter, published as ready data
  mailsec.mta_sts.tlsa_record:
    host: mx1.example.com
    records:
      - "{{ lookup('ansible.builtin.file', 'certs/mx1.crt') | mailsec.mta_sts.tlsa_data }}"
    provider: route53
'''

RETURN = r'''
results:
  description: One entry per host, in the order given.
  returned: success, or failure after reading (a refusal of the serving check, a partial change)
  type: list
  elements: dict
  contains:
    host:
      description: The MX host.
      type: str
      sample: mx1.example.com
    port:
      description: The SMTP port.
      type: int
      sample: 25
    name:
      description: The name managed.
      type: str
      sample: _25._tcp.mx1.example.com
    zone:
      description: The zone that holds it.
      type: str
      sample: example.com
    state:
      description: The state asked for.
      type: str
      sample: present
    changed:
      description: Whether this host's records changed (or would change, in check mode).
      type: bool
    before:
      description: The TLSA values at the name before the run, as V(usage selector matching-type hex).
      type: list
      elements: str
      sample: ["3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"]
    after:
      description: The TLSA values at the name after the run.
      type: list
      elements: str
    current:
      description: The value computed from O(current).
      type: str
      returned: when O(current) was given
    next:
      description: The value computed from O(next).
      type: str
      returned: when O(next) was given
    records:
      description: The values of O(records), in canonical form.
      type: list
      elements: str
      returned: when O(records) was given
    warnings:
      description: The warnings about this host (fragile parameters), also given as module warnings.
      type: list
      elements: str
    serving:
      description: What the serving check found, when the change removes a value and the check is enabled.
      type: dict
      returned: when the MX was probed
      contains:
        matched:
          description: The values, removed or kept, that match the served chain.
          type: list
          elements: str
        served_spki_sha256:
          description: The SHA-256 of the served leaf's public key (what a C(3 1 1) record holds).
          type: str
        error:
          description: Why the MX could not be probed, or null.
          type: str
    host_unicode:
      description: The host as given, when it was an internationalised name with U-labels.
      type: str
      returned: when the host was given with U-labels
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
    - On failure, whether it came from what the module read (a CNAME at the name, the MX serving a key whose record
      the change removes, a change by someone else between the read and the write) rather than from the input.
  returned: failure after reading
  type: bool
host:
  description: With O(host), the same as RV(results[0].host); likewise RV(name), RV(zone), RV(before), RV(after).
  returned: success, with O(host)
  type: str
  sample: mx1.example.com
name:
  description: With O(host), the name managed.
  returned: success, with O(host)
  type: str
  sample: _25._tcp.mx1.example.com
zone:
  description: With O(host), the zone.
  returned: success, with O(host)
  type: str
  sample: example.com
before:
  description: With O(host), the TLSA values before.
  returned: success, with O(host)
  type: list
  elements: str
after:
  description: With O(host), the TLSA values after.
  returned: success, with O(host)
  type: list
  elements: str
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._record_module import (
    SERVING_CHECK_OPTION, check_serving, check_serving_options, run_record_module,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import TLSA_RECORD

OPTIONS = dict(
    smtp_port=dict(type='int', default=25),
    # Not secret, but a private key given here by mistake must never reach a log.
    current=dict(type='str', no_log=True),
    next=dict(type='str', no_log=True),
    records=dict(type='list', elements='str'),
    # No choices: the core refuses other values itself, saying why (usages 0 and 1 are unusable for SMTP).
    usage=dict(type='int', default=3),
    selector=dict(type='int', default=1),
    matching_type=dict(type='int', default=1),
    **SERVING_CHECK_OPTION
)


def main():
    run_record_module(TLSA_RECORD, OPTIONS, check_options=check_serving_options, before_write=check_serving)


if __name__ == '__main__':
    main()
