# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A domain's whole MTA-STS record set in one run (module ``domain_records``): the ``domains`` option into items of
every kind, each validated by its own kind's ``build_items``, and the items' results back by domain."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import (
    HOST_RECORD, STS_RECORD, TLSA_RECORD, TLSRPT_RECORD, build_items,
)

# The keys of a ``domains`` item that name a kind, and the kinds, in the order results list them.
KINDS = (('sts', STS_RECORD), ('tlsrpt', TLSRPT_RECORD), ('host', HOST_RECORD), ('tlsa', TLSA_RECORD))
KIND_LABELS = tuple(label for label, kind in KINDS)
# The kinds a task may give defaults for: a TLSA item names its MX host, which no default can.
DEFAULTED = ('sts', 'tlsrpt', 'host')


def _kind_entry(kind, given, default, where):
    """One kind's dict for one domain: ``given`` over the task's ``default``. The kind's ``item_keys`` are taken
    together, as in the single-kind modules: a domain that gives any of them uses none of the task's."""
    if given is not None and not isinstance(given, dict):
        raise ValidationError(where.rstrip('.'), given, 'must be a dict of the %s options, or false to leave it alone'
                              % where.rstrip('.').rsplit('.', 1)[-1])
    entry = dict(default or {})
    if given and any(given.get(key) is not None for key in kind.item_keys):
        for key in kind.item_keys:
            entry.pop(key, None)
    entry.update(given or {})
    return entry


def _build(kind, entries, where, label, state):
    """``build_items`` of ``kind`` over ``entries`` (dicts), with the fields named ``<where><label>[i].`` (TLSA) or
    ``<where><label>.`` instead of the kind's own ``hosts[i].``/``domains[0].``."""
    if not entries:
        return []
    many = kind.subject + 's'
    ttls = [_ttl(entry.pop('ttl', None), _field(where, label, index) + 'ttl') for index, entry in enumerate(entries)]
    params = dict((key, None) for key in kind.item_keys + kind.place_keys + kind.setting_keys)
    params.update({kind.subject: None, many: entries, 'state': state})
    try:
        items = build_items(params, kind)
    except ValidationError as exc:
        field = str(exc.field)
        for index in range(len(entries)):
            prefix = '%s[%d].' % (many, index)
            if field.startswith(prefix):
                field = _field(where, label, index) + field[len(prefix):]
                break
        raise ValidationError(field, exc.value, exc.rule)
    for item, ttl in zip(items, ttls):
        item.ttl = ttl
    return items


def _field(where, label, index):
    return '%s%s[%d].' % (where, label, index) if label == 'tlsa' else '%s%s.' % (where, label)


def _ttl(ttl, field):
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2147483647:
        raise ValidationError(field, ttl, 'must be 0 to 2147483647 seconds')
    return ttl


class Domain(object):
    """One ``domains`` item: its name, and its items of each kind (``None``: the kind is not managed)."""

    def __init__(self, name, kinds):
        self.name = name
        self.kinds = kinds      # {'sts': Item or None, ..., 'tlsa': [Item, ...]}

    @property
    def items(self):
        found = []
        for label in KIND_LABELS:
            value = self.kinds.get(label)
            found.extend(value if isinstance(value, list) else [value] if value is not None else [])
        return found

    def result(self):
        result = dict(domain=self.name, changed=any(item.changed for item in self.items))
        for label in KIND_LABELS:
            value = self.kinds.get(label)
            if isinstance(value, list):
                result[label] = [item.result() for item in value]
            else:
                result[label] = value.result() if value is not None else None
        return result


def build_domains(params):
    """Validate every domain and every kind of it before any I/O; ValidationError names the field
    (``domains[3].tlsrpt.rua``, ``domains[0].tlsa[1].current``). Returns the Domain list."""
    entries = params.get('domains') or []
    if not entries:
        raise ValidationError('domains', entries, 'give at least one domain')
    defaults = {}
    for label in DEFAULTED:
        default = params.get(label)
        if default is not None and not isinstance(default, dict):
            raise ValidationError(label, default, 'must be a dict of the %s options' % label)
        defaults[label] = default
    # The state of every kind that does not give its own.
    state = params.get('state') or 'present'
    domains, seen_domains, owners = [], {}, {}
    allowed = ('domain',) + KIND_LABELS
    for index, entry in enumerate(entries):
        where = 'domains[%d].' % index
        if not isinstance(entry, dict):
            raise ValidationError(where.rstrip('.'), entry, 'must be a dict with domain and the kinds to manage')
        for key in entry:
            if key not in allowed:
                # AnsibleModule refuses these first; the core says the same to any other caller.
                raise ValidationError(where + str(key), entry[key], 'unknown key; allowed: %s' % ', '.join(allowed))
        name = normalize_domain(entry.get('domain'), where + 'domain')
        if name in seen_domains:
            raise ValidationError(where + 'domain', name, 'listed more than once (also domains[%d])' % seen_domains[name])
        seen_domains[name] = index
        kinds = {}
        for label, kind in KINDS:
            given = entry.get(label)
            if given is False:
                # Said so for this domain: the kind is left alone here, whatever the task's default.
                kinds[label] = [] if label == 'tlsa' else None
                continue
            if label == 'tlsa':
                if given is not None and not isinstance(given, list):
                    raise ValidationError(where + 'tlsa', given, 'must be a list of dicts, one per MX host and port')
                for position, tlsa_entry in enumerate(given or []):
                    if not isinstance(tlsa_entry, dict):
                        raise ValidationError('%stlsa[%d]' % (where, position), tlsa_entry, 'must be a dict with host')
                kinds[label] = _build(kind, [dict(tlsa_entry) for tlsa_entry in given or []], where, label, state)
                continue
            if given is None and defaults.get(label) is None:
                kinds[label] = None
                continue
            for source, field in ((given, where + label), (defaults.get(label), label)):
                if isinstance(source, dict) and 'domain' in source:
                    raise ValidationError(field + '.domain', source['domain'], 'unknown key: the domain is the domains item\'s own')
            merged = _kind_entry(kind, given, defaults.get(label), where + label + '.')
            merged['domain'] = entry['domain']
            kinds[label] = _build(kind, [merged], where, label, state)[0]
        domain = Domain(name, kinds)
        for item in domain.items:
            # One name, one owner: two items writing one name would plan against each other's reads.
            field = '%s%s' % (where, _item_label(domain, item))
            if item.name in owners:
                raise ValidationError(field, item.name, '%s is managed by %s too; list each name once'
                                      % (item.name, owners[item.name]))
            owners[item.name] = field
        domains.append(domain)
    return domains


def _item_label(domain, item):
    for label in KIND_LABELS:
        value = domain.kinds.get(label)
        if value is item:
            return label
        if isinstance(value, list) and item in value:
            return '%s[%d]' % (label, value.index(item))
    raise AssertionError('item not in its domain')
