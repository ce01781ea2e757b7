# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``main()`` shared by the record modules: options in, ``publish`` through a provider, results out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import LiveError, Resolver, fetch_policy, parse_nameserver, probe_mx
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.registry import (
    PROVIDERS, provider_options, provider_rules, warn_unused_options,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import TLSA_RECORD, PublishError, apply_plan, build_items, plan
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import judge_removal

# Policy hosts asked at once by one run.
LIVE_CONCURRENCY = 8
# The look-up of the live policy before a removal or an id change (mta_sts_record's ``policy_check``).
POLICY_CHECK_OPTION = dict(policy_check=dict(type='dict', apply_defaults=True, options=dict(
    enabled=dict(type='bool', default=True),
    nameservers=dict(type='list', elements='str'),
    ca_path=dict(type='path'),
    timeout=dict(type='float', default=5.0),
)))

# The look at an MX before a change that removes TLSA values (tlsa_record's and domain_records' ``serving_check``).
SERVING_CHECK_OPTION = dict(serving_check=dict(type='dict', apply_defaults=True, options=dict(
    enabled=dict(type='bool', default=True),
    address=dict(type='str'),
    timeout=dict(type='float', default=10.0),
    ca_path=dict(type='path'),
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

    def build(params):
        items = build_items(params, kind)
        if check_options is not None:
            check_options(params)
        return items

    def results_of(items):
        return [item.result() for item in items]

    items, api = publish_items(module, build, results_of, before_write)
    warn_all(module, items)
    results = results_of(items)
    output = dict(changed=any(result['changed'] for result in results), results=results, api=api)
    if params[single] is not None:
        output.update((key, results[0][key]) for key in (single, 'name', 'zone', 'before', 'after'))
        output.update(items[0].extra)
    if module._diff:
        output['diff'] = item_diffs(items)
    module.exit_json(**output)


def publish_items(module, build, results_of, before_write=None):
    """The run of a record module after its options are parsed: ``build(params)`` validates every item (no I/O),
    then one plan over all items (one read per zone), the live look-ups their changes call for, ``before_write``,
    and the writes unless in check mode. Returns ``(items, api)`` (``api``: the provider's request report, or None);
    on a fault fails the module, with ``results_of(items)`` once anything was read."""
    params = module.params
    provider = None
    try:
        if not 0 <= params['ttl'] <= 2147483647:
            raise ValidationError('ttl', params['ttl'], 'must be 0 to 2147483647 seconds')
        items = build(params)
        check_policy_check_options(params.get('policy_check'))
        provider = PROVIDERS[params['provider']].from_params(params)
        plan(provider, items, None, params['ttl'], zone=params['zone'])
        for kind in OrderedDict((item.kind, None) for item in items):
            look_up_live_policies([item for item in items if item.kind is kind], kind, params.get('policy_check'))
        if before_write is not None:
            before_write(module, items)
        if not module.check_mode:
            apply_plan(provider, items)
        for warning in provider.api_warnings():
            module.warn(warning)
        return items, api_report(provider)
    except ValidationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    except PublishError as exc:
        warn_all(module, exc.items)
        module.fail_json(msg=str(exc), changed=any(item.applied for item in exc.items), results=results_of(exc.items),
                         conflict=isinstance(exc.cause, ConflictError), api=api_report(provider))
    except ConflictError as exc:
        module.fail_json(msg=str(exc), conflict=True, api=api_report(provider))
    except ProviderError as exc:
        module.fail_json(msg=str(exc), api=api_report(provider))
    finally:
        if provider is not None:
            provider.close()
    return None, None   # not reached: fail_json exits


def api_report(provider):
    """What the provider's requests cost (``Retrier.report()``), or None for a provider without a retrier."""
    return provider.api_report() if provider is not None else None


def item_diffs(items):
    """The Ansible diffs of the items that change."""
    return [diff for item in items if item.changed for diff in item.diff()]


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


def check_serving_options(params):
    """Refuse a bad O(serving_check) with the other input, before any I/O (AnsibleModule cannot bound a float)."""
    options = params['serving_check']
    if not 0 < options['timeout'] <= 300:
        raise ValidationError('serving_check.timeout', options['timeout'], 'must be more than 0 and at most 300 seconds')


def probe(resolver, failure, item, options):
    """``_live.probe_mx`` facts of the item's MX, on the item's port."""
    if resolver is None:
        return {'error': failure, 'chain_der': None}
    addresses = [options['address']] if options['address'] else None
    return probe_mx(resolver, item.domain, ca_path=options['ca_path'], timeout=options['timeout'],
                    addresses=addresses, port=item.place['smtp_port'])


def check_serving(module, items):
    """Refuse, before any write, a change that drops the record of the key an MX serves now."""
    options = module.params['serving_check']
    concerned = [item for item in items if item.kind is TLSA_RECORD and TLSA_RECORD.removal(item)[0]]
    if not concerned:
        return
    if not options['enabled']:
        for item in concerned:
            item.warnings.append('%s: removing TLSA values without looking at the key the MX serves '
                                 '(serving_check.enabled is false)' % item.domain)
        return
    resolver, failure = None, None
    try:
        resolver = Resolver(timeout=options['timeout'])
    except LiveError as exc:
        failure = {'kind': 'dns', 'message': str(exc)}
    with ThreadPoolExecutor(max_workers=min(LIVE_CONCURRENCY, len(concerned))) as pool:
        facts = list(pool.map(lambda item: probe(resolver, failure, item, options), concerned))
    refusals = []
    for item, probed in zip(concerned, facts):
        removed, kept = TLSA_RECORD.removal(item)
        item.extra['serving'], refusal = judge_removal(removed, kept, probed)
        if refusal:
            refusals.append('%s: %s' % (item.name, refusal))
        elif not item.extra['serving']['matched']:
            item.warnings.append('%s: the MX serves a key (SPKI SHA-256 %s) that no TLSA record here matches, before or '
                                 'after this change: DANE senders defer mail to it' % (item.domain, item.extra['serving']['served_spki_sha256']))
    if refusals:
        message = ('nothing was written: %s. Set serving_check.enabled=false to remove anyway'
                   % '; '.join(refusals))
        raise PublishError(message, items, ConflictError(message))
