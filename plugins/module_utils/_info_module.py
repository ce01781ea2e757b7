# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The body of the read-only live-check modules (policy_info, mx_tls_info)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import LiveError


def run_check_module(items_option, items_spec, options, check, verdict=None):
    """Run ``check(items, **options)`` on the module's parameters and exit with its ``results``; never changes anything.

    With ``verdict`` (a return value's name), ``check`` returns ``(results, verdict)``, as a wait does.
    """
    module = AnsibleModule(argument_spec=dict(options, **{items_option: items_spec}), supports_check_mode=True)
    values = dict((name, module.params[name]) for name in options)
    try:
        outcome = check(module.params[items_option], **values)
    except (ValidationError, LiveError) as exc:
        module.fail_json(msg=str(exc))
    if verdict is None:
        module.exit_json(changed=False, results=outcome)
    module.exit_json(changed=False, results=outcome[0], **{verdict: outcome[1]})
