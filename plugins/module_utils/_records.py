# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Publishing one kind of TXT record for many domains, on any provider.

``RecordKind`` says what the managed record is (``_mta-sts`` or
``_smtp._tls``); ``build_items`` validates every domain's input before
anything is read or written; ``publish`` finds zones, reads once per zone,
plans each name and applies one change per zone through the provider.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
from collections import OrderedDict

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    has_version_tag, parse_policy, parse_sts_record, policy_id, render_sts_record, validate_id,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt import (
    parse_tlsrpt_record, render_tlsrpt_record, validate_rua,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import plan_name, to_presentation


class RecordKind(object):
    """What one record module manages. Subclasses fill in the record's grammar."""

    label = None        # the name prefix, e.g. '_mta-sts'
    version = None      # the version tag a managed value starts with
    item_keys = ()      # the options that say what to publish (per task or per domains item)

    def name(self, domain):
        return '%s.%s' % (self.label, domain)

    def is_managed(self, text):
        # RFC 8461 §3.1 / RFC 8460 §3: a record is ours when it starts with the version tag as its first field.
        return has_version_tag(text, self.version)

    def wanted(self, values, where):
        """``(record text, extra result fields)`` from the validated ``values``."""
        raise NotImplementedError

    def parse(self, text):
        raise NotImplementedError

    def same(self, live, wanted):
        try:
            return self.parse(live) == self.parse(wanted)
        except ValidationError:
            return False


class StsRecord(RecordKind):
    label = '_mta-sts'
    version = 'v=STSv1'
    item_keys = ('id', 'policy')

    def parse(self, text):
        return parse_sts_record(text)

    def wanted(self, values, where):
        record_id = values.get('id')
        policy = values.get('policy')
        if record_id is not None and policy is not None:
            raise ValidationError(where + 'id', record_id, 'give id or policy, not both')
        if record_id is not None:
            record_id = validate_id(record_id, where + 'id')
        elif isinstance(policy, dict):
            record_id = policy_id(policy)
        elif isinstance(policy, str):
            parse_policy(policy)
            record_id = policy_id(policy)
        elif policy is not None:
            raise ValidationError(where + 'policy', policy, 'must be a dict or the policy text')
        else:
            raise ValidationError(where + 'id', None, 'id or policy is required with state=present')
        return render_sts_record(record_id), {'id': record_id}


class TlsrptRecord(RecordKind):
    label = '_smtp._tls'
    version = 'v=TLSRPTv1'
    item_keys = ('rua',)

    def parse(self, text):
        return parse_tlsrpt_record(text)

    def wanted(self, values, where):
        if values.get('rua') is None:
            raise ValidationError(where + 'rua', None, 'rua is required with state=present')
        rua = validate_rua(values['rua'], where + 'rua')
        return render_tlsrpt_record(rua), {'rua': rua}


STS_RECORD = StsRecord()
TLSRPT_RECORD = TlsrptRecord()


class Item(object):
    """One domain of a run: what to publish there, and later what was found and planned."""

    def __init__(self, domain, name, state, wanted, extra):
        self.domain = domain
        self.name = name
        self.state = state
        self.wanted = wanted
        self.extra = extra
        self.zone = None
        self.change = None
        self.applied = False

    def result(self):
        result = dict(domain=self.domain, name=self.name, zone=self.zone, state=self.state,
                      changed=bool(self.change and self.change.changed),
                      before=self.change.managed_before if self.change else None,
                      after=self.change.managed_after if self.change else None)
        result.update(self.extra)
        return result

    def diff(self):
        change = self.change
        return dict(
            before_header='%s TXT (ttl %s)' % (self.name, change.before_ttl),
            after_header='%s TXT (ttl %s)' % (self.name, change.ttl),
            before=''.join(to_presentation(value) + '\n' for value in change.before),
            after=''.join(to_presentation(value) + '\n' for value in change.after),
        )


def build_items(params, kind):
    """Validate every domain and what to publish there; raise ValidationError on the first fault."""
    if params.get('domain') is not None:
        entries = [params['domain']]
    else:
        entries = params.get('domains') or []
        if not entries:
            raise ValidationError('domains', entries, 'give at least one domain')
    task_values = dict((key, params.get(key)) for key in kind.item_keys if params.get(key) is not None)
    items = []
    seen = set()
    for index, entry in enumerate(entries):
        where = '' if params.get('domain') is not None else 'domains[%d].' % index
        if isinstance(entry, dict):
            allowed = ('domain', 'state') + kind.item_keys
            for key in entry:
                if key not in allowed:
                    raise ValidationError(where + str(key), entry[key], 'unknown key; allowed: %s' % ', '.join(allowed))
            own = dict((key, entry[key]) for key in kind.item_keys if entry.get(key) is not None)
            values = own or task_values
            state = entry.get('state', params.get('state'))
            domain = entry.get('domain')
        else:
            values, state, domain = task_values, params.get('state'), entry
        if state not in ('present', 'absent'):
            raise ValidationError(where + 'state', state, 'must be present or absent')
        domain = normalize_domain(domain, where + 'domain' if where else 'domain')
        if domain in seen:
            raise ValidationError(where + 'domain', domain, 'listed more than once')
        seen.add(domain)
        wanted, extra = None, {}
        if state == 'present':
            try:
                wanted, extra = kind.wanted(values, where)
            except ValidationError as exc:
                # Core errors name their own field (``mx``); say which domains item it came from.
                if where and not str(exc.field).startswith(where):
                    raise ValidationError(where + str(exc.field), exc.value, exc.rule)
                raise
        items.append(Item(domain, kind.name(domain), state, wanted, extra))
    return items


def normalize_zone(zone):
    zone = (zone or '').strip().rstrip('.').lower()
    if not zone or not re.match(r'^[a-z0-9_-]+(\.[a-z0-9_-]+)*$', zone):
        raise ValidationError('zone', zone, 'must be a DNS name')
    return zone


class PublishError(Exception):
    """A provider failed part-way; says which zones were applied and which were not."""

    def __init__(self, message, items):
        super(PublishError, self).__init__(message)
        self.items = items


def publish(provider, items, kind, ttl, zone=None, check_mode=False):
    """Find zones, read once per zone, plan every name, then write once per zone that changes."""
    if zone is not None:
        zone = normalize_zone(zone)
        for item in items:
            if not item.name.endswith('.' + zone):
                raise ValidationError('zone', zone, '%s is not inside it' % item.name)
    by_zone = OrderedDict()
    for item in items:
        item.zone = zone or provider.find_zone(item.name)
        by_zone.setdefault(item.zone, []).append(item)

    for zone_name, zone_items in by_zone.items():
        rrsets = provider.read(zone_name, [item.name for item in zone_items])
        for item in zone_items:
            rrset = rrsets[item.name]
            if rrset.cname:
                # A CNAME here is a delegation (RFC 8461 §8.2): whoever owns the target publishes the record.
                raise ValidationError(item.name, 'CNAME ' + rrset.cname,
                                      'the name is a CNAME (delegated); not writing over it, change the target instead')
            item.change = plan_name(rrset, item.wanted, kind.is_managed, kind.same, ttl)

    if check_mode:
        return items
    pending = [zone_name for zone_name, zone_items in by_zone.items() if any(item.change.changed for item in zone_items)]
    for position, zone_name in enumerate(pending):
        changes = [item.change for item in by_zone[zone_name] if item.change.changed]
        try:
            provider.apply(zone_name, changes)
        except ProviderError as exc:
            done = pending[:position]
            message = 'zone %s: %s' % (zone_name, exc)
            if done:
                message += ' (already applied to zones %s; not attempted: %s)' % (', '.join(done), ', '.join(pending[position + 1:]) or 'none')
            raise PublishError(message, items)
        for item in by_zone[zone_name]:
            item.applied = item.change.changed
    return items
