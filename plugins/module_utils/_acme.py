# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which ``mta-sts.<domain>`` names share an ACME certificate. Pure code.

A CA limits the names per certificate (Let's Encrypt: 100) and the orders per
week, so names are grouped into SAN certificates. The grouping is stable: it
starts from the previous plan, so adding or removing a domain re-issues one
certificate, not every certificate after it in sorted order.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

# Let's Encrypt's limit of names per certificate, the strictest common one.
MAX_NAMES = 100
GROUP_NAME = re.compile(r'^group-([0-9]{4,})$')


def _group_name(number):
    return 'group-%04d' % number


def plan_certificate_groups(domains, limit, previous=None):
    """Group the policy host names of ``domains`` into certificates of at most ``limit`` names.

    ``previous`` is the ``groups`` of the last plan (``{group: [host, ...]}``); groups whose
    names are not ``group-NNNN`` are ignored. The rule:

    1. every previous group keeps the names it had that are still wanted (if ``limit`` went
       down, its first ``limit`` in sorted order);
    2. the other names, in sorted order, fill the groups that have room, lowest group first,
       then new groups numbered after the highest one;
    3. groups left empty are dropped.

    Returns ``{'groups': {group: [host, ...] sorted}, 'domains': {domain as given: {'host': host,
    'group': group}}}``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_NAMES:
        raise ValidationError('limit', limit, 'must be a whole number from 1 to %d' % MAX_NAMES)
    if not isinstance(domains, list):
        raise ValidationError('domains', domains, 'must be a list of domain names')
    hosts = {}
    for domain in domains:
        host = 'mta-sts.' + normalize_domain(domain)
        if host in hosts.values():
            raise ValidationError('domain', domain, 'is listed twice')
        hosts[domain] = host
    wanted = set(hosts.values())

    groups = {}
    for name, members in sorted((previous or {}).items()):
        if GROUP_NAME.match(name) and isinstance(members, list):
            groups[name] = sorted(set(members) & wanted)[:limit]
    placed = set(host for members in groups.values() for host in members)
    unplaced = sorted(wanted - placed)
    for name in sorted(groups):
        room = limit - len(groups[name])
        if room > 0 and unplaced:
            groups[name] = sorted(groups[name] + unplaced[:room])
            unplaced = unplaced[room:]
    groups = dict((name, members) for name, members in groups.items() if members)
    number = max([int(GROUP_NAME.match(name).group(1)) for name in (previous or {}) if GROUP_NAME.match(name)] + [0])
    while unplaced:
        number += 1
        groups[_group_name(number)] = unplaced[:limit]
        unplaced = unplaced[limit:]

    group_of = dict((host, name) for name, members in groups.items() for host in members)
    return {
        'groups': groups,
        'domains': dict((domain, {'host': host, 'group': group_of[host]}) for domain, host in hosts.items()),
    }
