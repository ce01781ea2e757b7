# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The providers a module can use, by the name of the ``provider`` option, and the rules of their options.

Imports are static on purpose: Ansible ships to the managed host only the
module_utils it finds imported, so a provider loaded by name at run time
would be missing there.

Every module that takes a ``provider`` builds its argument spec here
(``provider_options``, ``provider_rules``) and warns about options the
chosen provider does not use (``warn_unused_options``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils import basic

from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import SHARED_OPTIONS
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
    """All providers' options and the shared ones, merged into one argument spec (names are unique across providers)."""
    merged = dict(SHARED_OPTIONS)
    for name in sorted(PROVIDERS):
        for option, spec in PROVIDERS[name].OPTIONS.items():
            if option in merged and merged[option] != spec:
                raise AssertionError('provider option %s is declared twice with different specs' % option)
            merged[option] = spec
    return merged


def provider_rules():
    """``required_if`` and ``required_together`` for AnsibleModule.

    Ansible applies environment fallbacks before it checks these, so an
    option set only in the environment counts as present.
    """
    required_if = [['provider', name, list(PROVIDERS[name].REQUIRED)] for name in sorted(PROVIDERS) if PROVIDERS[name].REQUIRED]
    required_together = [list(group) for name in sorted(PROVIDERS) for group in getattr(PROVIDERS[name], 'REQUIRED_TOGETHER', ())]
    return {'required_if': required_if, 'required_together': required_together}


def option_users():
    """``{option: [providers that use it]}`` for the options that not every provider uses."""
    users = {}
    for name in sorted(PROVIDERS):
        for option in PROVIDERS[name].OPTIONS:
            users.setdefault(option, []).append(name)
    return dict((option, names) for option, names in users.items() if len(names) < len(PROVIDERS))


def given_options(raw_params, argument_spec):
    """The options a task set to a value, by name or alias.

    ``raw_params`` are the module arguments as sent (task arguments and
    ``module_defaults``), before Ansible adds defaults and environment
    fallbacks, so neither counts as given.
    """
    canonical = {}
    for option, spec in argument_spec.items():
        canonical[option] = option
        for alias in spec.get('aliases') or ():
            canonical[alias] = option
    return set(canonical[key] for key, value in raw_params.items() if key in canonical and value is not None)


def unused_option_warnings(provider, given):
    """Warnings, one per option in ``given`` that ``provider`` does not use, naming the providers that do."""
    users = option_users()
    warnings = []
    for option in sorted(given):
        owners = users.get(option)
        if owners and provider not in owners:
            warnings.append('%s is an option of provider%s %s; provider %s ignores it'
                            % (option, 's' if len(owners) > 1 else '', ' and '.join(owners), provider))
    return warnings


def warn_unused_options(module):
    """``module.warn`` for each provider option the task gave that its ``provider`` ignores."""
    # The module's own params already hold defaults and fallbacks; the arguments as sent do not.
    raw_params = basic._load_params()  # pylint: disable=protected-access
    for warning in unused_option_warnings(module.params['provider'], given_options(raw_params, module.argument_spec)):
        module.warn(warning)
