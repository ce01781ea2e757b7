# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Publishing one kind of record for many domains, on any provider.

``RecordKind`` says what the managed records are (the ``_mta-sts`` or
``_smtp._tls`` TXT record, the policy host's A/AAAA or CNAME); ``build_items``
validates every domain's input before anything is read or written; ``publish``
finds zones, reads once per zone, plans each name and applies one change per
zone through the provider.
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
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRset, decode, dns_target, encode, plan_rrset
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _tlsa as tlsa
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import join_value, plan_name, to_presentation


class RecordKind(object):
    """What one record module manages at one name per domain. Subclasses say what to read, want and plan."""

    label = None        # the name prefix, e.g. '_mta-sts'
    subject = 'domain'  # what each item is (its option, and ``<subject>s`` for many): a mail domain, or an MX 'host'
    item_keys = ()      # the options that say what to publish (per task or per domains item), taken together
    place_keys = ()     # the options that say where (per item, else the task's), each on its own
    setting_keys = ()   # the options that say how to publish (per item, else the task's), each on its own
    rtypes = None       # the types read at the name; None: every type there

    def name(self, domain, place):
        return '%s.%s' % (self.label, domain)

    def check_place(self, place, where):
        """Validate and normalise the item's ``place_keys`` values (a dict); ValidationError on a fault."""
        return place

    def identity(self, domain, place):
        """What may be listed only once per run: the domain."""
        return domain

    def place_extra(self, place):
        """The result fields that say where the item's records are."""
        return {}

    def wanted(self, values, where, place):
        """``(what to publish, extra result fields)`` from the validated ``values``."""
        raise NotImplementedError

    def advice(self, extra):
        """Warnings about what is valid but unwise to publish, from ``wanted``'s extra fields."""
        return []

    def needs_live_policy(self, item):
        """Whether the live policy host has something to say about ``item``'s change."""
        return False

    def plan_item(self, item, found, ttl):
        """Set ``item.changes`` (RRsetChange list) from ``found`` (``{rtype: RRset}`` at the name);
        ConflictError when what is there forbids the change."""
        raise NotImplementedError

    def result(self, item):
        raise NotImplementedError

    def diffs(self, item):
        raise NotImplementedError


class TxtRecord(RecordKind):
    """One managed TXT value, known by its version tag, among any others at the name."""

    version = None      # the version tag a managed value starts with
    rtypes = ('TXT',)

    def is_managed(self, text):
        # RFC 8461 §3.1 / RFC 8460 §3: a record is ours when it starts with the version tag as its first field.
        return has_version_tag(text, self.version)

    def parse(self, text):
        raise NotImplementedError

    def same(self, live, wanted):
        try:
            return self.parse(live) == self.parse(wanted)
        except ValidationError:
            return False

    def plan_item(self, item, found, ttl):
        # A CNAME here is a delegation (RFC 8461 §8.2): whoever owns the target publishes the record.
        refuse_cname(item, found, 'delegated, RFC 8461 section 8.2', 'change the record at the target instead')
        item.change = plan_name(found['TXT'], item.wanted, self.is_managed, self.same, ttl)
        item.changes = [item.change]

    def result(self, item):
        result = dict(domain=item.domain, name=item.name, zone=item.zone, state=item.state, changed=item.changed,
                      before=item.change.managed_before if item.change else None,
                      after=item.change.managed_after if item.change else None)
        result.update(item.extra)
        return result

    def diffs(self, item):
        """The TXT values at the name."""
        change = item.change
        return [dict(
            before_header='%s TXT (ttl %s)' % (item.name, change.before_ttl),
            after_header='%s TXT (ttl %s)' % (item.name, change.ttl),
            before=''.join(to_presentation(value) + '\n' for value in change.before),
            after=''.join(to_presentation(value) + '\n' for value in change.after),
        )]


def refuse_cname(item, found, reason, remedy):
    """ConflictError when ``found`` holds a CNAME at the item's name: the records belong at its target."""
    cname = found.get('CNAME')
    if cname:
        raise ConflictError('%s is a CNAME to %s (%s): nothing was written; %s, or remove the CNAME'
                            % (item.name, cname.values[0], reason, remedy))


class StsRecord(TxtRecord):
    label = '_mta-sts'
    version = 'v=STSv1'
    item_keys = ('id', 'policy')
    place_keys = ('delegate_to', 'record_name')

    def parse(self, text):
        return parse_sts_record(text)

    def name(self, domain, place):
        return place.get('record_name') or super(StsRecord, self).name(domain, place)

    def check_place(self, place, where):
        place = dict((key, value) for key, value in place.items() if value is not None)
        if len(place) > 1:
            raise ValidationError(where + 'record_name', place['record_name'],
                                  'give delegate_to (the customer side) or record_name (the hoster side), not both')
        for key, value in place.items():
            try:
                place[key] = dns_target(value, key)
            except ValueError as exc:
                raise ValidationError(where + key, value, str(exc).split(': ', 1)[1])
            if '.' not in place[key]:
                raise ValidationError(where + key, value, 'must be a name in a zone (at least two labels)')
        return place

    def place_extra(self, place):
        return {'delegated_to': place.get('delegate_to'), 'record_name': place.get('record_name')}

    def wanted(self, values, where, place):
        if place.get('delegate_to'):
            # The TXT record lives at the target, published there with record_name; here only the CNAME.
            return place['delegate_to'], {}
        return self._record(values, where)

    def _record(self, values, where):
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

    def plan_item(self, item, found, ttl):
        if not item.place.get('delegate_to'):
            return super(StsRecord, self).plan_item(item, found, ttl)
        target = item.place['delegate_to']
        txt, cname = found['TXT'], found.get('CNAME') or RRset(item.name, 'CNAME')
        unrelated = [value for value in txt.values if not self.is_managed(join_value(value))]
        if unrelated and item.state == 'present':
            raise ConflictError('%s: cannot delegate it to %s: a CNAME cannot share its name with other records, and %s '
                                'holds TXT %s that is not a v=STSv1 record; nothing was written; move or remove it first'
                                % (item.name, target, item.name, ', '.join(to_presentation(value) for value in unrelated)))
        if item.state == 'present':
            # The managed TXT goes in the same write: the CNAME cannot sit beside it, and the record at the target replaces it.
            item.change = plan_name(txt, None, self.is_managed, self.same, ttl)
            item.changes = [item.change, plan_rrset(cname, [target], ttl)]
        else:
            # Only our own delegation is undone: a CNAME to somewhere else is someone else's.
            item.change = plan_name(txt, None, lambda text: False, self.same, ttl)
            kept = [value for value in cname.values if value != target]
            # A CNAME kept is not ours: its TTL stays too.
            item.changes = [plan_rrset(cname, kept, cname.ttl if kept else ttl)]
        item.cname_change = item.changes[-1]

    def result(self, item):
        result = super(StsRecord, self).result(item)
        change = item.cname_change
        if change is not None:
            result['cname'] = {'before': list(change.before), 'after': list(change.after)}
        return result

    def diffs(self, item):
        """The CNAME of a delegation, the TXT values, then the policy behind the ids when it is given."""
        diffs = []
        change = item.cname_change
        if change is not None:
            diffs.append(dict(before_header='%s CNAME (ttl %s)' % (item.name, change.before_ttl),
                              after_header='%s CNAME (ttl %s)' % (item.name, change.ttl),
                              before=''.join(encode('CNAME', value) + '\n' for value in change.before),
                              after=''.join(encode('CNAME', value) + '\n' for value in change.after)))
        if item.change.changed:
            diffs.extend(super(StsRecord, self).diffs(item))
        if 'policy' in item.extra and item.old_ids() != [item.extra['id']]:
            before = item.extra.get('previous_policy') or item.previous_policy_note or ''
            diffs.append(dict(
                before_header='policy behind id %s' % (', '.join(item.old_ids()) or '(no record)'),
                after_header='policy behind id %s' % item.extra['id'],
                # CRLF as served would show as stray ^M in a terminal diff.
                before=before.replace('\r\n', '\n'),
                after=item.extra['policy'].replace('\r\n', '\n'),
            ))
        return diffs

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


class TlsrptRecord(TxtRecord):
    label = '_smtp._tls'
    version = 'v=TLSRPTv1'
    item_keys = ('rua',)

    def parse(self, text):
        return parse_tlsrpt_record(text)

    def wanted(self, values, where, place):
        if values.get('rua') is None:
            raise ValidationError(where + 'rua', None, 'rua is required with state=present')
        rua = validate_rua(values['rua'], where + 'rua')
        return render_tlsrpt_record(rua), {'rua': rua}


class HostRecord(RecordKind):
    """The policy host's name, ``mta-sts.<domain>``: its A and AAAA records, or a CNAME to the policy host.

    Those three types are ours at the name; any other type there is left alone,
    and forbids a CNAME (which may not share its name, RFC 1034 section 3.6.2).
    """

    label = 'mta-sts'
    item_keys = ('addresses', 'target')
    managed = ('A', 'AAAA', 'CNAME')

    def wanted(self, values, where, place):
        addresses, target = values.get('addresses'), values.get('target')
        if addresses is not None and target is not None:
            raise ValidationError(where + 'target', target, 'give addresses or target, not both')
        wanted = dict((rtype, []) for rtype in self.managed)
        if target is not None:
            try:
                wanted['CNAME'] = [dns_target(target)]
            except ValueError as exc:
                raise ValidationError(where + 'target', target, str(exc).split(': ', 1)[1])
            return wanted, {}
        if addresses is None:
            raise ValidationError(where + 'addresses', None, 'addresses or target is required with state=present')
        if isinstance(addresses, str) or not isinstance(addresses, (list, tuple)) or not addresses:
            raise ValidationError(where + 'addresses', addresses, 'must be a non-empty list of IPv4 and IPv6 addresses')
        for index, address in enumerate(addresses):
            rtype = 'AAAA' if isinstance(address, str) and ':' in address else 'A'
            try:
                value = decode(rtype, address)
            except ValueError:
                raise ValidationError('%saddresses[%d]' % (where, index), address, 'must be an IPv4 or IPv6 address')
            if value not in wanted[rtype]:
                wanted[rtype].append(value)
        return wanted, {}

    def plan_item(self, item, found, ttl):
        wanted = item.wanted or dict((rtype, []) for rtype in self.managed)
        others = sorted(rtype for rtype, rrset in found.items() if rrset and rtype not in self.managed)
        if wanted['CNAME'] and others:
            raise ConflictError('%s: a CNAME cannot share its name with other records (RFC 1034 section 3.6.2), and %s '
                                'holds %s; nothing was written; remove them, or publish addresses instead of target'
                                % (item.name, item.name, ', '.join(others)))
        item.changes = [plan_rrset(found.get(rtype) or RRset(item.name, rtype), wanted[rtype], ttl) for rtype in self.managed]

    def result(self, item):
        before = dict((change.rtype, list(change.before)) for change in item.changes) or None
        after = dict((change.rtype, list(change.after)) for change in item.changes) or None
        result = dict(domain=item.domain, name=item.name, zone=item.zone, state=item.state, changed=item.changed,
                      before=before, after=after)
        result.update(item.extra)
        return result

    def diffs(self, item):
        """The A, AAAA and CNAME records at the name, one per line as a zone file has them."""
        return [zone_file_diff(item, 'A/AAAA/CNAME')]


def zone_file_diff(item, types):
    """The Ansible diff of ``item``'s changes: its records before and after, one per line as a zone file has them."""
    def lines(side, ttl_side):
        return ''.join('%s %s IN %s %s\n' % (item.name, getattr(change, ttl_side), change.rtype, encode(change.rtype, value))
                       for change in item.changes for value in getattr(change, side))
    return dict(before_header='%s %s' % (item.name, types), after_header='%s %s' % (item.name, types),
                before=lines('before', 'before_ttl'), after=lines('after', 'ttl'))


def _templated_int(value):
    """A number of a ``hosts`` item as an int when it came as digits: an older Ansible templates ``"{{ 2 }}"`` inside
    a list to the string '2', where AnsibleModule would convert a top-level int option."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


class TlsaRecord(RecordKind):
    """The TLSA RRset of an MX host's SMTP service, ``_<port>._tcp.<host>`` (RFC 7672 section 2.2.3).

    The subject is an MX host, not a mail domain. Only the TLSA RRset at the name is ours; other types there are
    never touched. A CNAME there is refused: it points the TLSA look-up elsewhere (RFC 7671 section 7), and TLSA
    records beside it would make the name invalid.
    """

    subject = 'host'
    item_keys = ('current', 'next', 'records')
    # Not ``port``: the rfc2136 provider's option of that name is the DNS server's port.
    place_keys = ('smtp_port',)
    setting_keys = ('usage', 'selector', 'matching_type')
    rtypes = ('TLSA',)

    def name(self, domain, place):
        # ``domain`` is the item's subject: here the MX host.
        return '_%d._tcp.%s' % (place['smtp_port'], domain)

    def identity(self, domain, place):
        # An MX host may be listed again for another SMTP port.
        return self.name(domain, place)

    def check_place(self, place, where):
        port = _templated_int(place.get('smtp_port'))
        if port is None:
            port = 25
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValidationError(where + 'smtp_port', port, 'must be a TCP port number, 1 to 65535')
        return {'smtp_port': port}

    def place_extra(self, place):
        return {'port': place['smtp_port']}

    def wanted(self, values, where, place):
        given = [_templated_int(values.get(key)) for key in self.setting_keys]
        usage, selector, matching_type = tlsa.check_parameters(
            *[default if value is None else value for value, default in zip(given, tlsa.DEFAULT)], where=where)
        wanted, extra = [], {}
        for key in ('current', 'next'):
            if values.get(key) is None:
                continue
            material = tlsa.load_material(values[key], where + key)
            try:
                value = tlsa.tlsa_value(material, usage, selector, matching_type)
            except ValidationError as exc:
                raise ValidationError(where + key, '<public key>', exc.rule)
            extra[key] = encode('TLSA', value)
            wanted.append(value)
        records = values.get('records')
        if records is not None:
            if isinstance(records, (str, bytes)) or not isinstance(records, (list, tuple)):
                raise ValidationError(where + 'records', records, 'must be a list of TLSA data strings, like "3 1 1 <hex>"')
            extra['records'] = []
            for index, text in enumerate(records):
                field = '%srecords[%d]' % (where, index)
                try:
                    value = decode('TLSA', text)
                except ValueError as exc:
                    raise ValidationError(field, text, str(exc).split(': ', 1)[1])
                tlsa.check_parameters(value[0], value[1], value[2], field)
                extra['records'].append(encode('TLSA', value))
                wanted.append(value)
        if not wanted:
            raise ValidationError(where + 'current', None, 'current, next or records is required with state=present')
        # current and next on one key (a renewal that reused it) are one record.
        return [value for index, value in enumerate(wanted) if value not in wanted[:index]], extra

    def advice(self, extra):
        texts = []
        for text in [extra.get('current'), extra.get('next')] + list(extra.get('records') or []):
            if text:
                texts.extend(advice for advice in tlsa.parameter_advice(*decode('TLSA', text)[:3]) if advice not in texts)
        return texts

    def plan_item(self, item, found, ttl):
        refuse_cname(item, found, 'TLSA look-ups follow it, RFC 7671 section 7', 'change the records at the target instead')
        item.changes = [plan_rrset(found.get('TLSA') or RRset(item.name, 'TLSA'), item.wanted or [], ttl)]

    def removal(self, item):
        """``(values removed, values kept)`` by the item's planned change: what the serving check judges."""
        change = item.changes[0]
        return [value for value in change.before if value not in change.after], list(change.after)

    def result(self, item):
        change = item.changes[0] if item.changes else None
        result = dict(host=item.domain, name=item.name, zone=item.zone, state=item.state, changed=item.changed,
                      before=[encode('TLSA', value) for value in change.before] if change else None,
                      after=[encode('TLSA', value) for value in change.after] if change else None,
                      warnings=list(item.warnings))
        result.update(item.extra)
        return result

    def diffs(self, item):
        return [zone_file_diff(item, 'TLSA')]


STS_RECORD = StsRecord()
TLSRPT_RECORD = TlsrptRecord()
HOST_RECORD = HostRecord()
TLSA_RECORD = TlsaRecord()


class Item(object):
    """One domain of a run: what to publish there, and later what was found and planned."""

    def __init__(self, domain, name, state, wanted, extra, warnings=None, kind=None, place=None):
        self.domain = domain
        self.name = name
        self.state = state
        self.wanted = wanted
        self.extra = extra
        self.warnings = list(warnings or [])
        self.kind = kind
        self.place = place or {}
        self.ttl = None     # the item's own TTL, over the run's (domain_records: a domain's kind may set it)
        self.zone = None
        self.change = None      # a TXT kind's NameChange at the name
        self.changes = []       # every RRsetChange the item writes (the TXT one among them)
        self.cname_change = None    # a delegation's CNAME (mta_sts_record with delegate_to)
        self.applied = False
        # What the policy host serves, when it was looked up (see ``StsRecord.judge_live``).
        self.previous_policy_note = None

    @property
    def changed(self):
        return any(change.changed for change in self.changes)

    def result(self):
        return self.kind.result(self)

    def diff(self):
        """The Ansible diffs of this item."""
        return self.kind.diffs(self)

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
    """Validate every domain (every ``kind.subject``) and what to publish there; raise ValidationError on the first
    fault. Fields are named after the subject: ``domains[2].rua``, ``hosts[1].next``."""
    single, many = kind.subject, kind.subject + 's'
    if params.get(single) is not None:
        entries = [params[single]]
    else:
        entries = params.get(many) or []
        if not entries:
            raise ValidationError(many, entries, 'give at least one %s' % single)
    task_values = dict((key, params.get(key)) for key in kind.item_keys if params.get(key) is not None)
    task_place = dict((key, params.get(key)) for key in kind.place_keys + kind.setting_keys)
    items = []
    seen = set()
    for index, entry in enumerate(entries):
        where = '' if params.get(single) is not None else '%s[%d].' % (many, index)
        if isinstance(entry, dict):
            allowed = (single, 'state') + kind.item_keys + kind.place_keys + kind.setting_keys
            for key in entry:
                if key not in allowed:
                    raise ValidationError(where + str(key), entry[key], 'unknown key; allowed: %s' % ', '.join(allowed))
            own = dict((key, entry[key]) for key in kind.item_keys if entry.get(key) is not None)
            values = dict(own or task_values)
            place = dict((key, entry[key] if entry.get(key) is not None else task_place[key]) for key in kind.place_keys)
            values.update((key, entry[key] if entry.get(key) is not None else task_place[key]) for key in kind.setting_keys)
            state = entry.get('state', params.get('state'))
            domain = entry.get(single)
        else:
            values = dict(task_values)
            values.update((key, task_place[key]) for key in kind.setting_keys)
            place = dict((key, task_place[key]) for key in kind.place_keys)
            state, domain = params.get('state'), entry
        if state not in ('present', 'absent'):
            raise ValidationError(where + 'state', state, 'must be present or absent')
        given = domain
        domain = normalize_domain(domain, where + single)
        place = kind.check_place(place, where)
        if kind.identity(domain, place) in seen:
            raise ValidationError(where + single, domain, 'listed more than once')
        seen.add(kind.identity(domain, place))
        wanted, extra = None, {}
        if not given.isascii():
            extra[single + '_unicode'] = given
        extra.update(kind.place_extra(place))
        if state == 'present':
            try:
                wanted, own_extra = kind.wanted(values, where, place)
            except ValidationError as exc:
                # Core errors name their own field (``mx``); say which domains item it came from.
                if where and not str(exc.field).startswith(where):
                    raise ValidationError(where + str(exc.field), exc.value, exc.rule)
                raise
            extra.update(own_extra)
        warnings = ['%s: %s' % (domain, text) for text in kind.advice(extra)]
        items.append(Item(domain, kind.name(domain, place), state, wanted, extra, warnings, kind, place))
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


def plan(provider, items, kind=None, ttl=3600, zone=None):
    """Find zones, read once per zone and plan every item's name (``item.change``). Writes nothing.

    The items may be of several kinds (each item's ``kind``; ``kind`` is the one for items without their own):
    one read per zone covers all their names and the types any of them reads, and each item is planned by its own
    kind, from the types its kind reads, exactly as a run of that kind alone would plan it.

    Raises ConflictError when what a name holds forbids the change (a CNAME where a TXT record would go):
    found only by reading, so not a ValidationError.
    """
    if zone is not None:
        zone = normalize_zone(zone)
        for item in items:
            if not item.name.endswith('.' + zone):
                raise ValidationError('zone', zone, '%s is not inside it' % item.name)
    for item in items:
        item.zone = zone or provider.find_zone(item.name)
    for zone_name, zone_items in _by_zone(items).items():
        kinds = [item.kind or kind for item in zone_items]
        names = list(OrderedDict((item.name, None) for item in zone_items))
        found = provider.read_rrsets(zone_name, names, _union_rtypes(kinds))
        for item, item_kind in zip(zone_items, kinds):
            item_ttl = ttl if item.ttl is None else item.ttl
            item_kind.plan_item(item, _kind_view(found[item.name], item.name, item_kind.rtypes), item_ttl)


def _union_rtypes(kinds):
    """The types one read must cover for all ``kinds``: None (every type) when any of them reads every type."""
    if any(kind.rtypes is None for kind in kinds):
        return None
    return tuple(OrderedDict((rtype, None) for kind in kinds for rtype in kind.rtypes))


def _kind_view(found, name, rtypes):
    """What a kind reading ``rtypes`` (None: every type) would have been given at ``name``: its types, each present
    (maybe empty), and the CNAME; the other types a shared read brought are not its business."""
    if rtypes is None:
        return found
    view = dict((rtype, found[rtype] if rtype in found else RRset(name, rtype)) for rtype in rtypes)
    if 'CNAME' in found:
        view['CNAME'] = found['CNAME']
    return view


def apply_plan(provider, items):
    """Write once per zone that changes, in order; a failure raises PublishError naming what was applied."""
    by_zone = _by_zone(items)
    pending = [zone_name for zone_name, zone_items in by_zone.items() if any(item.changed for item in zone_items)]
    for position, zone_name in enumerate(pending):
        changes = [change for item in by_zone[zone_name] for change in item.changes if change.changed]
        try:
            provider.apply_rrsets(zone_name, changes)
        except (ProviderError, ConflictError) as exc:
            done = pending[:position]
            message = 'zone %s: %s' % (zone_name, exc)
            if done:
                message += ' (already applied to zones %s; not attempted: %s)' % (', '.join(done), ', '.join(pending[position + 1:]) or 'none')
            raise PublishError(message, items, exc)
        for item in by_zone[zone_name]:
            item.applied = item.changed
