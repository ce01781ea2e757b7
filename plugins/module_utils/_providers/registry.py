# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The providers a module can use, by the name of the ``provider`` option.

Imports are static on purpose: Ansible ships to the managed host only the
module_utils it finds imported, so a provider loaded by name at run time
would be missing there.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.cloudflare import CloudflareProvider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.rfc2136 import Rfc2136Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.route53 import Route53Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.zonefile import ZonefileProvider

PROVIDERS = {
    'cloudflare': CloudflareProvider,
    'rfc2136': Rfc2136Provider,
    'route53': Route53Provider,
    'zonefile': ZonefileProvider,
}


def provider_options():
    """All providers' options, merged into one argument spec (names are unique across providers)."""
    merged = {}
    for name in sorted(PROVIDERS):
        for option, spec in PROVIDERS[name].OPTIONS.items():
            if option in merged and merged[option] != spec:
                raise AssertionError('provider option %s is declared twice with different specs' % option)
            merged[option] = spec
    return merged
