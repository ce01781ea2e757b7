# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options shared by the record modules (mta_sts_record, tlsrpt_record).
    DOCUMENTATION = r'''
options:
  domain:
    description:
      - The mail domain whose record is managed, for example V(example.com).
      - Mutually exclusive with O(domains); one of them is required.
    type: str
  state:
    description:
      - V(present) publishes exactly one managed record at the name; V(absent) removes every managed record there.
      - Other TXT values at the name are never touched.
    type: str
    choices: [present, absent]
    default: present
  ttl:
    description:
      - TTL of the TXT RRset, in seconds, when the managed record is written.
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
  - Only TXT values that start with the record's version tag are managed; two or more of them are
    collapsed into one, because receivers ignore a domain that has several.
  - A value longer than 255 bytes is published as several character-strings.
  - A CNAME at the record's name (delegation, RFC 8461 section 8.2) is never written over; the module fails naming it.
  - All input is validated for every domain before anything is read or written.
  - With O(domains), the provider is read at most once per zone and written at most once per zone; a run that
    changes nothing writes nothing.
requirements:
  - dnspython (provider V(rfc2136))
  - boto3 (provider V(route53))
  - cloudflare >= 4 (provider V(cloudflare))
'''
