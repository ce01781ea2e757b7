# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options shared by the record modules (mta_sts_record, tlsrpt_record, mta_sts_host_record, tlsa_record).
    DOCUMENTATION = r'''
options:
  state:
    description:
      - V(present) publishes the managed records at the name; V(absent) removes every managed record there.
      - Other records at the name are never touched.
    type: str
    choices: [present, absent]
    default: present
  ttl:
    description:
      - TTL of the managed RRsets, in seconds, when the managed records are written.
      - A different live TTL counts as a change.
    type: int
    default: 3600
  zone:
    description:
      - The zone that holds the records of every domain of the task, for example V(example.com).
      - When not given, each domain's zone is found at the provider (the longest matching zone).
    type: str
  provider:
    description:
      - The DNS provider that holds the zone. Each provider has its own options, documented below.
      - V(zonefile) edits RFC 1035 zone files on disk, V(rfc2136) sends dynamic updates to an authoritative server,
        V(route53) uses Amazon Route 53 through boto3, V(cloudflare) uses the Cloudflare API through its official SDK.
    type: str
    required: true
    choices: [cloudflare, rfc2136, route53, zonefile]
  timeout:
    description:
      - Seconds to wait for each answer from the provider.
    type: float
    default: 10.0
notes:
  - A change made by someone else between the module's read and its write fails the module with RV(conflict=true)
    (RV(results) then say which zones were already applied).
  - All input is validated for every domain (or MX host) before anything is read or written.
  - With many domains (or MX hosts) in one run, the provider is read at most once per zone and written at most once
    per zone; a run that changes nothing writes nothing.
requirements:
  - dnspython (provider V(rfc2136))
  - boto3 (provider V(route53))
  - cloudflare >= 4 (provider V(cloudflare))
  - idna (internationalised domain names given as U-labels)
'''

    # The record modules whose items are mail domains (all but tlsa_record, whose items are MX hosts).
    DOMAIN = r'''
options:
  domain:
    description:
      - The mail domain whose record is managed, for example V(example.com).
      - An internationalised name may be given with U-labels (V(bücher.example)); it is converted to A-labels
        (V(xn--bcher-kva.example)) by IDNA 2008 (UTS 46 mapping, non-transitional) with the Python C(idna) package.
        Without that package the module fails and names the A-label to give instead. Results show the A-label
        (RV(results[].domain)) and the name as given (RV(results[].domain_unicode)). The same applies to O(domains).
      - Mutually exclusive with O(domains); one of them is required.
    type: str
'''

    # The TXT record modules (mta_sts_record, tlsrpt_record).
    TXT = r'''
options: {}
notes:
  - Only TXT values that start with the record's version tag are managed; two or more of them are
    collapsed into one, because receivers ignore a domain that has several. Other TXT values at the name are kept.
  - A value longer than 255 bytes is published as several character-strings.
  - A CNAME at the record's name (delegation, RFC 8461 section 8.2) is never written over; the module fails naming it,
    with RV(conflict=true), before anything is written.
'''

    # The live policy look-up of mta_sts_record (and of domain_records' sts), before a removal or an id change.
    POLICY_CHECK = r'''
options:
  policy_check:
    description:
      - How the module looks at the live policy, C(https://mta-sts.<domain>/.well-known/mta-sts.txt), fetched as a
        strict sender fetches it (HTTPS with certificate validation, no redirects).
      - It is fetched only when a run is about to remove an existing C(v=STSv1) record (O(state=absent)), to warn
        when the live policy is not C(mode) V(none); and when a run changes the id of an existing record with
        C(policy) given, to show the policy the new id replaces in the diff and in the result's C(previous_policy).
      - A failed fetch never fails the task; the warning or the diff says why the live policy is not known.
    type: dict
    suboptions:
      enabled:
        description:
          - Set to V(false) to never fetch the live policy.
        type: bool
        default: true
      nameservers:
        description:
          - Resolvers to ask for the address of C(mta-sts.<domain>), as V(ip), V(ip:port) or V([ipv6]:port).
          - Default is the managed host's resolvers.
        type: list
        elements: str
      ca_path:
        description:
          - A PEM file of the certificate authorities to trust, instead of the system's (a private or lab CA).
        type: path
      timeout:
        description:
          - Seconds for the whole fetch of one domain's policy (DNS, connection, answer), at most 300.
        type: float
        default: 5.0
'''
