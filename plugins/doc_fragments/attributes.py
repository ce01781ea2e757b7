# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Modules that change things: full check mode and diff mode.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
'''

    # Modules that only read: they run the same in check mode and have nothing to diff.
    INFO_MODULE = r'''
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: This module only reads; it does the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: This module only reads.
'''

    # Members of the dns action group (meta/runtime.yml).
    DNS_GROUP = r'''
attributes:
  action_group:
    description: Use C(group/mailsec.mta_sts.dns) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - mailsec.mta_sts.dns
'''

    # Members of the validate action group (meta/runtime.yml).
    VALIDATE_GROUP = r'''
attributes:
  action_group:
    description: Use C(group/mailsec.mta_sts.validate) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - mailsec.mta_sts.validate
'''

    # Members of the postfix action group (meta/runtime.yml).
    POSTFIX_GROUP = r'''
attributes:
  action_group:
    description: Use C(group/mailsec.mta_sts.postfix) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - mailsec.mta_sts.postfix
'''
