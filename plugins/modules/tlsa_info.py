#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tlsa_info
short_description: The TLSA records of MX hosts as every authoritative server answers them, and which the MX serves
version_added: 0.1.0
description:
  - For each MX host, asks every authoritative server of the zone for the TLSA records at C(_<port>._tcp.<host>)
    (RFC 7672 section 2.2), each server on its own, directly and without recursion. A DANE sender's resolver may
    ask any of them, so a key rollover may only move on once every server answers the new record
    (P(mailsec.mta_sts.tlsa_rollover#filter) decides the steps from this module's results).
  - The servers are O(nameservers) when given; otherwise the zone's NS records and their addresses, found through
    O(resolvers) (the zone's servers are then asked on port 53).
  - A host is visible everywhere when at least one server was asked and every server answers each record of
    O(expect) (without O(expect), each record any server answers). A server that fails, answers without the AA bit
    (it is not authoritative for the name) or has a CNAME there counts as lacking the records.
  - With O(wait_timeout), asks again every O(interval) seconds until every host is visible everywhere or the time is
    up. Never fails because a record is not visible; the playbook decides (see RV(all_visible) and
    RV(results[].reason)).
  - With O(probe_mx=true), connects to each host on O(port), says EHLO and STARTTLS, and matches the certificate
    chain it serves against the published records and O(expect) as a DANE sender does (RFC 7672 section 3.1, usage 3
    the leaf's key or certificate, names and expiry ignored; usage 2 a certificate above the leaf). The chain is taken
    also when it does not verify under the web PKI, as DANE certificates often do not.
  - Never changes anything.
requirements:
  - dnspython (on the host the task runs on)
extends_documentation_fragment:
  - mailsec.mta_sts.attributes.info_module
  - mailsec.mta_sts.attributes.validate_group
options:
  hosts:
    description:
      - The MX host names (not mail domains). A name listed twice is refused.
    required: true
    type: list
    elements: str
  port:
    description:
      - The SMTP port. The records are at C(_<port>._tcp.<host>), and O(probe_mx) connects there.
    type: int
    default: 25
  expect:
    description:
      - TLSA data that must be visible at every server, as C("usage selector matching-type hex") (for example the
        current and next keys of a rollover, from P(mailsec.mta_sts.tlsa_data#filter)). Other records may be there too.
    type: list
    elements: str
  nameservers:
    description:
      - The authoritative servers to ask, as C(ip), C(ip:port) or C([ipv6]:port), instead of the zone's NS. Every
        server is asked about every host.
    type: list
    elements: str
  resolvers:
    description:
      - The resolvers through which the zone's NS and their addresses are found (when O(nameservers) is not given),
        and the MX host's addresses (for O(probe_mx) without O(address)). The system's resolvers when not given.
    type: list
    elements: str
  wait_timeout:
    description:
      - Seconds to keep asking about the hosts that are not visible everywhere yet, counted from the first look. The
        last look starts by then, so the task ends within O(wait_timeout) plus one look (O(timeout)) and the probes.
      - V(0) looks once. At most V(3600).
    type: float
    default: 0
  interval:
    description:
      - Seconds between two looks at a host that is not visible everywhere yet. More than V(0), at most V(600).
    type: float
    default: 5
  probe_mx:
    description:
      - Probe each host over STARTTLS after the last look and report which records its chain matches
        (RV(results[].serving)).
    type: bool
    default: false
  address:
    description:
      - Probe at this IP address instead of the addresses the host name resolves to (one host only). Needs
        O(probe_mx=true).
    type: str
  timeout:
    description:
      - Seconds for each look at a host (finding its servers and asking all of them; an unanswered question is sent
        again, after 0.2 s and then at growing intervals up to 1 s), and for each probe.
    type: float
    default: 10.0
  ca_path:
    description:
      - A CA bundle file to trust instead of the system's in the probe. DANE does not need it; it only decides whether
        the handshake is first tried with web PKI verification.
    type: path
notes:
  - Each server is asked once per look; a lost UDP question is sent again to the same server within O(timeout).
  - An answer is taken as the server holds it now. A zone signed with DNSSEC is not validated here; the
    P(mailsec.mta_sts.validate#lookup) lookup with C(check_dane=true) checks that through a validating resolver.
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.tlsa_record
  - plugin: mailsec.mta_sts.tlsa_rollover
    plugin_type: filter
  - module: mailsec.mta_sts.served_policy_info
'''

EXAMPLES = r'''
- name: Wait until every authoritative server answers the current and next records of mx1 (at most 10 minutes)
  mailsec.mta_sts.tlsa_info:
    hosts: [mx1.example.com]
    expect:
      - "{{ lookup('ansible.builtin.file', 'certs/mx1-current.pem') | mailsec.mta_sts.tlsa_data }}"
      - "{{ lookup('ansible.builtin.file', 'certs/mx1-next.pem') | mailsec.mta_sts.tlsa_data }}"
    wait_timeout: 600
    interval: 15
    probe_mx: true
  register: tlsa

- name: Stop here, naming each server that lacks a record
  ansible.builtin.fail:
    msg: "{{ tlsa.results | rejectattr('visible_everywhere') | map(attribute='reason') }}"
  when: not tlsa.all_visible

- name: Ask two given servers (a hidden primary and a secondary) about a host
  mailsec.mta_sts.tlsa_info:
    hosts: [mx2.example.com]
    nameservers: [192.0.2.53, '[2001:db8::53]:5353']
'''

RETURN = r'''
all_visible:
  description: Whether every host is visible everywhere (RV(results[].visible_everywhere)).
  returned: always
  type: bool
results:
  description: One result per host, in order, from its last look.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The MX host, lower case, without a final dot.
      type: str
    name:
      description: Where the records are, C(_<port>._tcp.<host>).
      type: str
      sample: _25._tcp.mx1.example.com
    zone:
      description: The zone holding the name (from the servers' SOA); null when no server said.
      type: str
    servers:
      description: What each server answered, by its address (with C(:port) when not 53).
      type: dict
      contains:
        records:
          description: The TLSA data it answers, C("usage selector matching-type hex"), sorted; empty for none.
          type: list
          elements: str
        ttl:
          description: The TTL it gives the TLSA RRset; null when it has none.
          type: int
        error:
          description: Why there is no usable answer from it (no answer, not authoritative, a CNAME); null otherwise.
          type: str
    records:
      description: Every TLSA data any server answers, sorted.
      type: list
      elements: str
    expected:
      description: O(expect), canonical.
      type: list
      elements: str
    ttl:
      description: The highest TTL a server gives the RRset; null when none has it. A rollover waits twice this.
      type: int
    visible_everywhere:
      description: Whether every server answers every record of O(expect) (without it, every record any server answers).
      type: bool
    missing:
      description: By server, the records it lacks (all of them for a server that failed); empty when visible everywhere.
      type: dict
      sample: {"192.0.2.54": ["3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"]}
    reason:
      description: Why the host is not visible everywhere, naming each server; null when it is.
      type: str
      sample: "_25._tcp.mx1.example.com: 192.0.2.54 lacks 3 1 1 0c72...; 192.0.2.55 no answer from 192.0.2.55:53 within the 10 s timeout (9 sends)"
    attempts:
      description: How many times the host's servers were asked.
      type: int
    serving:
      description: With O(probe_mx=true), what the MX serves.
      returned: when O(probe_mx=true)
      type: dict
      contains:
        matched:
          description: The records (published or expected) the served chain matches.
          type: list
          elements: str
        served_spki_sha256:
          description: The SHA-256 of the served leaf certificate's public key (what a C(3 1 1) record holds).
          type: str
        error:
          description: Why the chain could not be matched (no connection, no STARTTLS, no handshake); null otherwise.
          type: str
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._info_module import run_check_module
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa_info import look

OPTIONS = dict(
    port=dict(type='int', default=25),
    expect=dict(type='list', elements='str'),
    nameservers=dict(type='list', elements='str'),
    resolvers=dict(type='list', elements='str'),
    wait_timeout=dict(type='float', default=0),
    interval=dict(type='float', default=5),
    probe_mx=dict(type='bool', default=False),
    address=dict(type='str'),
    timeout=dict(type='float', default=10.0),
    ca_path=dict(type='path'),
)


def main():
    run_check_module('hosts', dict(type='list', elements='str', required=True), OPTIONS, look, verdict='all_visible')


if __name__ == '__main__':
    main()
