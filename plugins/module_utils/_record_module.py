# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``main()`` shared by the record modules: options in, ``publish`` through a provider, results out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.registry import PROVIDERS, provider_options
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import PublishError, build_items, publish

COMMON_OPTIONS = dict(
    domain=dict(type='str'),
    domains=dict(type='list', elements='raw'),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    ttl=dict(type='int', default=3600),
    zone=dict(type='str'),
    provider=dict(type='str', required=True, choices=sorted(PROVIDERS)),
    timeout=dict(type='float', default=10.0),
)


def run_record_module(kind, kind_options, mutually_exclusive=None):
    argument_spec = dict(COMMON_OPTIONS)
    argument_spec.update(kind_options)
    argument_spec.update(provider_options())
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('domain', 'domains')] + list(mutually_exclusive or []),
        required_one_of=[('domain', 'domains')],
        supports_check_mode=True,
    )
    params = module.params
    provider = None
    try:
        if not 0 <= params['ttl'] <= 2147483647:
            raise ValidationError('ttl', params['ttl'], 'must be 0 to 2147483647 seconds')
        items = build_items(params, kind)
        provider = PROVIDERS[params['provider']].from_params(params)
        publish(provider, items, kind, params['ttl'], zone=params['zone'], check_mode=module.check_mode)
    except ValidationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    except PublishError as exc:
        results = [item.result() for item in exc.items]
        module.fail_json(msg=str(exc), changed=any(item.applied for item in exc.items), results=results)
    except ProviderError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if provider is not None:
            provider.close()

    results = [item.result() for item in items]
    output = dict(changed=any(result['changed'] for result in results), results=results)
    if params['domain'] is not None:
        output.update((key, results[0][key]) for key in ('domain', 'name', 'zone', 'before', 'after'))
        output.update(items[0].extra)
    if module._diff:
        output['diff'] = [item.diff() for item in items if item.change.changed]
    module.exit_json(**output)
