# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``main()`` shared by the record modules: options in, ``publish`` through a provider, results out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import LiveError, Resolver, fetch_policy, parse_nameserver
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.registry import (
    PROVIDERS, provider_options, provider_rules, warn_unused_options,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import PublishError, apply_plan, build_items, plan

# Policy hosts asked at once by one run.
LIVE_CONCURRENCY = 8
# The look-up of the live policy before a removal or an id change (mta_sts_record's ``policy_check``).
POLICY_CHECK_OPTION = dict(policy_check=dict(type='dict', apply_defaults=True, options=dict(
    enabled=dict(type='bool', default=True),
    nameservers=dict(type='list', elements='str'),
    ca_path=dict(type='path'),
    timeout=dict(type='float', default=5.0),
)))

COMMON_OPTIONS = dict(
    domain=dict(type='str'),
    domains=dict(type='list', elements='raw'),
    state=dict(type='str', default='present', choices=['present', 'absent']),
    ttl=dict(type='int', default=3600),
    zone=dict(type='str'),
    provider=dict(type='str', required=True, choices=sorted(PROVIDERS)),
)


def run_record_module(kind, kind_options, mutually_exclusive=None, check_options=None, before_write=None):
    """``check_options(params)``, when given, validates the kind's own options with the rest of the input, before
    any I/O. ``before_write(module, items)``, when given, looks at the live state of the planned change and raises
    PublishError to refuse it before anything is written (also in check mode, which predicts that refusal)."""
    single, many = kind.subject, kind.subject + 's'
    argument_spec = dict(COMMON_OPTIONS)
    # The items' option is named after what they are: domain/domains, or host/hosts for an MX host's records.
    argument_spec[single] = argument_spec.pop('domain')
    argument_spec[many] = argument_spec.pop('domains')
    argument_spec.update(kind_options)
    argument_spec.update(provider_options())
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[(single, many)] + list(mutually_exclusive or []),
        required_one_of=[(single, many)],
        supports_check_mode=True,
        **provider_rules()
    )
    warn_unused_options(module)
    params = module.params
    provider = None
    try:
        if not 0 <= params['ttl'] <= 2147483647:
            raise ValidationError('ttl', params['ttl'], 'must be 0 to 2147483647 seconds')
        items = build_items(params, kind)
        check_policy_check_options(params.get('policy_check'))
        if check_options is not None:
            check_options(params)
        provider = PROVIDERS[params['provider']].from_params(params)
        plan(provider, items, kind, params['ttl'], zone=params['zone'])
        look_up_live_policies(items, kind, params.get('policy_check'))
        if before_write is not None:
            before_write(module, items)
        if not module.check_mode:
            apply_plan(provider, items)
    except ValidationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    except PublishError as exc:
        warn_all(module, exc.items)
        results = [item.result() for item in exc.items]
        module.fail_json(msg=str(exc), changed=any(item.applied for item in exc.items), results=results,
                         conflict=isinstance(exc.cause, ConflictError))
    except ConflictError as exc:
        module.fail_json(msg=str(exc), conflict=True)
    except ProviderError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if provider is not None:
            provider.close()

    warn_all(module, items)
    results = [item.result() for item in items]
    output = dict(changed=any(result['changed'] for result in results), results=results)
    if params[single] is not None:
        output.update((key, results[0][key]) for key in (single, 'name', 'zone', 'before', 'after'))
        output.update(items[0].extra)
    if module._diff:
        output['diff'] = [diff for item in items if item.changed for diff in item.diff()]
    module.exit_json(**output)


def warn_all(module, items):
    for item in items:
        for warning in item.warnings:
            module.warn(warning)


def check_policy_check_options(options):
    """Refuse a bad ``policy_check`` before any I/O (the look-up itself happens only when needed)."""
    if not options:
        return
    for server in options['nameservers'] or []:
        try:
            parse_nameserver(server)
        except LiveError:
            raise ValidationError('policy_check.nameservers', server, 'must be an IP address, ip:port or [ipv6]:port')
    if not 0 < options['timeout'] <= 300:
        raise ValidationError('policy_check.timeout', options['timeout'], 'must be more than 0 and at most 300 seconds')


def look_up_live_policies(items, kind, options):
    """Fetch the live policy, as a strict sender does, of the items whose change it bears on."""
    concerned = [item for item in items if kind.needs_live_policy(item)]
    if not concerned:
        return
    if not options['enabled']:
        for item in concerned:
            kind.skip_live(item, 'policy_check.enabled is false')
        return
    resolver, failure = None, None
    try:
        resolver = Resolver(nameservers=options['nameservers'], timeout=options['timeout'])
    except LiveError as exc:
        # dnspython missing: every look-up fails the same way, and each item says why.
        failure = {'kind': 'dns', 'message': str(exc)}

    def fetch(item):
        if resolver is None:
            return {'url': 'https://mta-sts.%s/.well-known/mta-sts.txt' % item.domain, 'error': failure}
        return fetch_policy(resolver, item.domain, ca_path=options['ca_path'], timeout=options['timeout'])

    # Side by side, so removing many domains costs about one timeout, not one per domain.
    with ThreadPoolExecutor(max_workers=min(LIVE_CONCURRENCY, len(concerned))) as pool:
        for item, facts in zip(concerned, pool.map(fetch, concerned)):
            kind.judge_live(item, facts)
