# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options of the validate lookup and the policy_info module (with PROBE).
    DOCUMENTATION = r'''
options:
  expect:
    description:
      - The desired state, for drift. Any of C(mode), C(mx) (patterns), C(max_age), C(id) or C(policy) (a dict or
        the policy text; the desired id is then derived from it as the P(mailsec.mta_sts.policy_id#filter) filter
        does), C(rua) (report URIs), and C(state) (V(absent) asks for no C(v=STSv1) and no C(v=TLSRPTv1) record;
        the other keys are then not used).
      - Applies to every domain that does not carry its own C(expect) or record keys.
    type: dict
  check_mx_tls:
    description:
      - Probe every MX host on port 25 for STARTTLS, the TLS version, and a certificate that is trusted, unexpired and names the
        host. Each distinct host is probed once per run.
    type: bool
    default: false
  check_dane:
    description:
      - Check DANE (RFC 7672) for every MX host - look up C(_25._tcp.<host>) TLSA with the DNSSEC OK bit, read the resolver's AD
        bit, and match the records against the certificate chain the host serves over STARTTLS (also when PKIX verification
        fails). Implies O(check_mx_tls). Each distinct host is looked up and probed once per run.
      - The resolvers of the run are first asked whether they validate DNSSEC (O(dane_dnssec_probe), O(dane_bogus_name)).
        With O(authoritative) they are not, and the answers are judged by their signatures alone, since authoritative
        servers never set the AD bit.
      - Findings C(dane-*) (docs/findings.md) and a C(dane) dict in each C(mx) entry.
    type: bool
    default: false
  dane_dnssec_probe:
    description:
      - With O(check_dane), a DNSSEC-signed name the resolvers must answer with the AD bit, in Postfix's C(dnssec_probe) form
        C(type:name).
    type: str
    default: 'ns:.'
  dane_bogus_name:
    description:
      - With O(check_dane), a name whose DNSSEC signatures are broken, which a validating resolver answers with SERVFAIL.
    type: str
    default: dnssec-failed.org
'''

    # Options of every live check: the validator above and the mx_tls_info module.
    PROBE = r'''
options:
  nameservers:
    description:
      - Resolve every name (both TXT records, the MX records, C(mta-sts.<domain>), the MX hosts) through these
        servers, given as C(ip), C(ip:port) or C([ipv6]:port). CNAMEs are followed by the validator itself.
      - When not given, the system's resolvers are used.
    type: list
    elements: str
  authoritative:
    description:
      - Ask each zone's own authoritative nameservers (found through the resolvers, on port 53) instead of caches,
        to see a change as soon as it is published.
    type: bool
    default: false
  timeout:
    description:
      - Seconds for each domain as a whole (all its DNS questions, CNAME hops and the policy fetch), and for each MX
        probe. Within it, an unanswered DNS question is sent again, after 0.2 s and then at growing intervals up to
        1 s, to each of O(nameservers) in turn.
    type: float
    default: 10.0
  ca_path:
    description:
      - A CA bundle file to trust instead of the system's, for private CAs (the policy host and the MX certificates).
    type: path
  concurrency:
    description:
      - How many domains (and MX hosts) are looked at in parallel.
    type: int
    default: 32
  expiry_warning_days:
    description:
      - Warn about a certificate (of the policy host, and of the MX hosts when they are probed) that expires in less
        than this many days from the time of the run (C(policy-certificate-expiring), C(mx-certificate-expiring)).
        An expired certificate is always invalid.
      - V(0) turns these warnings off. At most V(365).
    type: int
    default: 14
'''
