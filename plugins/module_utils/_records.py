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
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    has_version_tag, max_age_advice, parse_policy, parse_sts_record, policy_id, policy_text, render_sts_record, validate_id,
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

    def advice(self, extra):
        """Warnings about what is valid but unwise to publish, from ``wanted``'s extra fields."""
        return []

    def needs_live_policy(self, item):
        """Whether the live policy host has something to say about ``item``'s change."""
        return False

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
            return render_sts_record(record_id), {'id': record_id}
        if policy is None:
            raise ValidationError(where + 'id', None, 'id or policy is required with state=present')
        text = policy_text(policy, where + 'policy')
        record_id = policy_id(text)
        return render_sts_record(record_id), {'id': record_id, 'policy': text}

    def advice(self, extra):
        if 'policy' not in extra:
            return []
        policy = parse_policy(extra['policy'])
        found = max_age_advice(policy['mode'], policy['max_age'])
        return [found[1]] if found else []

    def needs_live_policy(self, item):
        """Whether the run should ask the policy host: before it removes a record, or to show the
        policy that a new id replaces (when the task gives the new policy)."""
        old_ids = item.old_ids()
        if not (item.change and item.change.changed and old_ids):
            return False
        return item.state == 'absent' or ('policy' in item.extra and old_ids != [item.extra['id']])

    def judge_live(self, item, facts):
        """Warnings and the previous policy of ``item`` from the policy host's answer (``_live.fetch_policy`` facts)."""
        text, why = served_policy(facts)
        if item.state == 'absent':
            advice = ('RFC 8461 section 8.3: publish mode: none with a new id first, keep it for the old max_age, '
                      'then remove the record')
            if why:
                item.warnings.append('%s: removing %s, but the live policy could not be confirmed to be mode none '
                                     '(%s). %s' % (item.domain, item.name, why, advice))
                return
            policy = parse_policy(text)
            if policy['mode'] != 'none':
                item.warnings.append(
                    '%s: removing %s while %s serves mode %s (max_age %d): senders that cached it keep applying it '
                    'for up to max_age seconds, and stop refreshing it once the record is gone. %s'
                    % (item.domain, item.name, facts['url'], policy['mode'], policy['max_age'], advice))
            return
        old = ', '.join(item.old_ids())
        if why:
            item.previous_policy_note = '# policy behind id %s: not known (%s)\n' % (old, why)
        elif policy_id(text) in item.old_ids():
            item.extra['previous_policy'] = text
        elif policy_id(text) == item.extra['id']:
            # The usual case (RFC 8461 section 8.1): the new policy is served before its id is published.
            item.previous_policy_note = ('# policy behind id %s: not known (the policy host already serves '
                                         'the new policy, id %s)\n' % (old, item.extra['id']))
        else:
            item.previous_policy_note = ('# policy behind id %s: not known (the policy host serves id %s)\n'
                                         % (old, policy_id(text)))

    def skip_live(self, item, reason):
        """Say in the diff why the previous policy was not looked up."""
        if item.state == 'present':
            item.previous_policy_note = '# policy behind id %s: not looked up (%s)\n' % (', '.join(item.old_ids()), reason)


def served_policy(facts):
    """``(policy text, None)`` when the host served a valid policy as a strict sender fetches it, else ``(None, why)``."""
    if facts.get('error'):
        return None, '%s: %s' % (facts['url'], facts['error']['message'])
    if facts.get('status') != 200:
        return None, '%s answered HTTP %s' % (facts['url'], facts.get('status'))
    if facts.get('truncated'):
        return None, '%s serves more than 64 KiB' % facts['url']
    try:
        parse_policy(facts['body'])
    except ValidationError as exc:
        return None, '%s serves an invalid policy: %s' % (facts['url'], exc)
    return facts['body'].decode('utf-8'), None


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

    def __init__(self, domain, name, state, wanted, extra, warnings=None):
        self.domain = domain
        self.name = name
        self.state = state
        self.wanted = wanted
        self.extra = extra
        self.warnings = list(warnings or [])
        self.zone = None
        self.change = None
        self.applied = False
        # What the policy host serves, when it was looked up (see ``StsRecord.judge_live``).
        self.previous_policy_note = None

    def result(self):
        result = dict(domain=self.domain, name=self.name, zone=self.zone, state=self.state,
                      changed=bool(self.change and self.change.changed),
                      before=self.change.managed_before if self.change else None,
                      after=self.change.managed_after if self.change else None)
        result.update(self.extra)
        return result

    def diff(self):
        """The Ansible diffs of this item: the TXT values, then the policy behind the ids when it is given."""
        change = self.change
        diffs = [dict(
            before_header='%s TXT (ttl %s)' % (self.name, change.before_ttl),
            after_header='%s TXT (ttl %s)' % (self.name, change.ttl),
            before=''.join(to_presentation(value) + '\n' for value in change.before),
            after=''.join(to_presentation(value) + '\n' for value in change.after),
        )]
        if 'policy' in self.extra and self.old_ids() != [self.extra['id']]:
            before = self.extra.get('previous_policy') or self.previous_policy_note or ''
            diffs.append(dict(
                before_header='policy behind id %s' % (', '.join(self.old_ids()) or '(no record)'),
                after_header='policy behind id %s' % self.extra['id'],
                # CRLF as served would show as stray ^M in a terminal diff.
                before=before.replace('\r\n', '\n'),
                after=self.extra['policy'].replace('\r\n', '\n'),
            ))
        return diffs

    def old_ids(self):
        """The ids of the managed values read at the name (values that do not parse have none)."""
        ids = []
        for text in self.change.managed_before if self.change else []:
            try:
                ids.append(parse_sts_record(text)['id'])
            except ValidationError:
                pass
        return ids


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
        given = domain
        domain = normalize_domain(domain, where + 'domain' if where else 'domain')
        if domain in seen:
            raise ValidationError(where + 'domain', domain, 'listed more than once')
        seen.add(domain)
        wanted, extra = None, {}
        if not given.isascii():
            extra['domain_unicode'] = given
        if state == 'present':
            try:
                wanted, own_extra = kind.wanted(values, where)
            except ValidationError as exc:
                # Core errors name their own field (``mx``); say which domains item it came from.
                if where and not str(exc.field).startswith(where):
                    raise ValidationError(where + str(exc.field), exc.value, exc.rule)
                raise
            extra.update(own_extra)
        warnings = ['%s: %s' % (domain, text) for text in kind.advice(extra)]
        items.append(Item(domain, kind.name(domain), state, wanted, extra, warnings))
    return items


def normalize_zone(zone):
    zone = (zone or '').strip().rstrip('.').lower()
    if not zone or not re.match(r'^[a-z0-9_-]+(\.[a-z0-9_-]+)*$', zone):
        raise ValidationError('zone', zone, 'must be a DNS name')
    return zone


class PublishError(Exception):
    """A provider failed part-way; says which zones were applied and which were not.

    ``cause`` is the provider's error: a ProviderError, or a ConflictError when
    the zone changed between our read and our write.
    """

    def __init__(self, message, items, cause=None):
        super(PublishError, self).__init__(message)
        self.items = items
        self.cause = cause


def publish(provider, items, kind, ttl, zone=None, check_mode=False):
    """Find zones, read once per zone, plan every name, then write once per zone that changes."""
    plan(provider, items, kind, ttl, zone)
    if not check_mode:
        apply_plan(provider, items)
    return items


def _by_zone(items):
    by_zone = OrderedDict()
    for item in items:
        by_zone.setdefault(item.zone, []).append(item)
    return by_zone


def plan(provider, items, kind, ttl, zone=None):
    """Find zones, read once per zone and plan every item's name (``item.change``). Writes nothing.

    Raises ConflictError when a name holds a CNAME: found only by reading, so not a ValidationError.
    """
    if zone is not None:
        zone = normalize_zone(zone)
        for item in items:
            if not item.name.endswith('.' + zone):
                raise ValidationError('zone', zone, '%s is not inside it' % item.name)
    for item in items:
        item.zone = zone or provider.find_zone(item.name)
    for zone_name, zone_items in _by_zone(items).items():
        rrsets = provider.read(zone_name, [item.name for item in zone_items])
        for item in zone_items:
            rrset = rrsets[item.name]
            if rrset.cname:
                # A CNAME here is a delegation (RFC 8461 §8.2): whoever owns the target publishes the record.
                raise ConflictError('%s is a CNAME to %s (delegated, RFC 8461 section 8.2): nothing was written; '
                                    'change the record at the target instead, or remove the CNAME'
                                    % (item.name, rrset.cname))
            item.change = plan_name(rrset, item.wanted, kind.is_managed, kind.same, ttl)


def apply_plan(provider, items):
    """Write once per zone that changes, in order; a failure raises PublishError naming what was applied."""
    by_zone = _by_zone(items)
    pending = [zone_name for zone_name, zone_items in by_zone.items() if any(item.change.changed for item in zone_items)]
    for position, zone_name in enumerate(pending):
        changes = [item.change for item in by_zone[zone_name] if item.change.changed]
        try:
            provider.apply(zone_name, changes)
        except (ProviderError, ConflictError) as exc:
            done = pending[:position]
            message = 'zone %s: %s' % (zone_name, exc)
            if done:
                message += ' (already applied to zones %s; not attempted: %s)' % (', '.join(done), ', '.join(pending[position + 1:]) or 'none')
            raise PublishError(message, items, exc)
        for item in by_zone[zone_name]:
            item.applied = item.change.changed
