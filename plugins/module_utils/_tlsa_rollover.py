# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""TLSA key rollover, "current + next" (RFC 7671 §8.1): which step is safe now, judged from what was seen live.

Pure code: the state file's entry for one MX host, the wanted records, what ``tlsa_info`` observed and the moment
to judge at all come in as data; nothing here reads a clock, a file or the network. The state file is documented in
docs/dane-rollover.md.

A sender that looked up the TLSA RRset before ``next`` was published may use that answer for up to its TTL, so the
MX may only move to the next key once ``next`` has been visible at every authoritative server for two TTLs (one for
the caches, one for the secondaries and resolvers that looked just before). DNS does not remember when that began,
so the entry keeps ``next_visible_since``; a wait that outlives a run resumes from it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping
from datetime import timedelta

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _rrset
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import format_utc, utc_datetime
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_summary import parse_time

STEPS = ('publish-next', 'wait', 'switch', 'retire-old', 'done')
ENTRY_KEYS = ('current', 'next', 'ttl', 'next_visible_since', 'switched_at')
STATE_FIELD = 'tlsa_rollover_state'
# Senders may hold the RRset without ``next`` for one TTL after it appeared; the second covers a resolver that asked
# a lagging server just before it caught up (RFC 7671 §8.1 waits "long enough"; two TTLs is the usual reading).
TTL_FACTOR = 2
TIME_RULE = "must be an RFC 3339 date-time such as 2026-12-01T10:00:00Z; in a playbook: now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ')"


def tlsa_text(value, field):
    """A TLSA value ("u s m hex") in canonical form; ValidationError naming ``field`` when it is not one."""
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be TLSA data "usage selector matching-type hex", such as "3 1 1 <sha-256>"')
    try:
        return _rrset.encode('TLSA', _rrset.decode('TLSA', value))
    except ValueError as exc:
        raise ValidationError(field, value, str(exc).split(': ', 1)[-1])


def _optional_moment(value, field):
    if value is None:
        return None
    moment = utc_datetime(value) if isinstance(value, str) else None
    if moment is None:
        raise ValidationError(field, value, TIME_RULE)
    return moment


def _ttl(value, field):
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(field, value, 'must be a TTL in seconds (an integer, 0 or more), or null')
    return value


def load_entry(entry, where):
    """The state entry of one host, checked: None for no entry yet (None or {}); errors name ``where.<key>``."""
    if entry is None or (isinstance(entry, Mapping) and not entry):
        return None
    if not isinstance(entry, Mapping):
        raise ValidationError(where, entry, 'must be a mapping with the keys %s' % ', '.join(ENTRY_KEYS))
    for key in entry:
        if key not in ENTRY_KEYS:
            raise ValidationError(where, key, 'unknown key; allowed: %s' % ', '.join(ENTRY_KEYS))
    if entry.get('current') is None:
        raise ValidationError(where + '.current', None, 'is required: the TLSA data of the key the rollover starts from')
    checked = {'current': tlsa_text(entry['current'], where + '.current'),
               'next': tlsa_text(entry['next'], where + '.next') if entry.get('next') is not None else None,
               'ttl': _ttl(entry.get('ttl'), where + '.ttl')}
    if checked['next'] == checked['current']:
        raise ValidationError(where + '.next', entry['next'], 'must differ from current (the same key needs no rollover)')
    for key in ('next_visible_since', 'switched_at'):
        moment = _optional_moment(entry.get(key), '%s.%s' % (where, key))
        checked[key] = format_utc(moment) if moment else None
    if checked['next_visible_since'] and checked['next'] is None:
        raise ValidationError(where + '.next_visible_since', entry['next_visible_since'],
                              'must be null when next is null (it says since when next is visible everywhere)')
    return checked


def _wanted(wanted):
    if not isinstance(wanted, Mapping):
        raise ValidationError('wanted', wanted, 'must be a mapping {current, next}: the TLSA data of the certificates')
    for key in wanted:
        if key not in ('current', 'next'):
            raise ValidationError('wanted', key, 'unknown key; allowed: current, next')
    if wanted.get('current') is None:
        raise ValidationError('wanted.current', None, 'is required: the TLSA data of the certificate the MX serves now')
    current = tlsa_text(wanted['current'], 'wanted.current')
    following = tlsa_text(wanted['next'], 'wanted.next') if wanted.get('next') is not None else None
    # The same key in both (a renewal that reused the key): nothing to roll over.
    return current, (None if following == current else following)


class Observed(object):
    """What ``tlsa_info`` saw for one host: each authoritative server's records (None where it failed), the highest
    TTL, and the published values the MX's chain matches (None when that is not known, with ``unknown_why``)."""

    def __init__(self, observed):
        if not isinstance(observed, Mapping):
            raise ValidationError('observed', observed, "must be the host's tlsa_info result (a mapping with servers)")
        servers = observed.get('servers')
        if not isinstance(servers, Mapping):
            raise ValidationError('observed.servers', servers, 'must be a mapping of server address to {records, ttl, error}')
        self.host = observed.get('host')
        self.servers = {}
        ttls = [_ttl(observed.get('ttl'), 'observed.ttl')]
        for address, answer in servers.items():
            where = 'observed.servers["%s"]' % address
            if not isinstance(answer, Mapping):
                raise ValidationError(where, answer, 'must be a mapping {records, ttl, error}')
            ttls.append(_ttl(answer.get('ttl'), where + '.ttl'))
            records = answer.get('records')
            if answer.get('error') or records is None:
                self.servers[address] = None
                continue
            if not isinstance(records, list):
                raise ValidationError(where + '.records', records, 'must be a list of TLSA data')
            self.servers[address] = set(tlsa_text(value, '%s.records[%d]' % (where, index))
                                        for index, value in enumerate(records))
        known = [ttl for ttl in ttls if ttl is not None]
        self.ttl = max(known) if known else None
        self.served, self.unknown_why, self.served_spki = self._served(observed.get('serving'))

    @staticmethod
    def _served(serving):
        if serving is None:
            return None, 'no serving facts (run tlsa_info with probe_mx: true)', None
        if not isinstance(serving, Mapping):
            raise ValidationError('observed.serving', serving, 'must be a mapping {matched, served_spki_sha256, error}')
        if serving.get('error'):
            return None, 'the MX probe failed: %s' % serving['error'], None
        matched = serving.get('matched') or []
        if not isinstance(matched, list):
            raise ValidationError('observed.serving.matched', matched, 'must be a list of TLSA data')
        served = set(tlsa_text(value, 'observed.serving.matched[%d]' % index) for index, value in enumerate(matched))
        spki = serving.get('served_spki_sha256')
        return served, None, spki.lower() if isinstance(spki, str) else None

    def serves(self, value):
        """Whether the MX's chain matches ``value``: True, False, or None when not known.

        A 3 1 1 value that no server publishes yet is matched by the SPKI digest, so a key can be known to be the
        served one before its record exists (the first publication)."""
        if self.served is None:
            return None
        if value in self.served:
            return True
        fields = value.split()
        return fields[:3] == ['3', '1', '1'] and fields[3] == self.served_spki

    def everywhere(self, value):
        return bool(self.servers) and all(records is not None and value in records for records in self.servers.values())

    def lacking(self, value):
        """The servers that do not answer ``value`` (failed ones included), sorted."""
        return sorted(address for address, records in self.servers.items() if records is None or value not in records)

    def holds_exactly(self, values):
        return bool(self.servers) and all(records == set(values) for records in self.servers.values())

    def published(self):
        """Every value some server answers, sorted."""
        return sorted(set().union(*[records for records in self.servers.values() if records is not None]))


def _short(value):
    fields = value.split()
    return '%s %s…' % (' '.join(fields[:3]), fields[3][:12]) if len(fields[3]) > 12 else value


def _missing_text(look, value):
    if not look.servers:
        return 'no authoritative server answered'
    return 'missing at %s' % ', '.join(look.lacking(value))


def _result(step, reason, records, entry, wait_until=None, blocked=False, host=None):
    return {'host': host, 'step': step, 'wait_until': wait_until, 'reason': reason, 'records': records,
            'entry': entry, 'blocked': blocked}


def _with(values, extra):
    return values + [value for value in sorted(extra) if value not in values]


def _steady(current, entry, look, ttl, host):
    """No next key: the DNS should hold the current key's record (and any other the MX is seen to serve)."""
    switched_at = entry['switched_at'] if entry else None
    settled = {'current': current, 'next': None, 'ttl': ttl, 'next_visible_since': None, 'switched_at': switched_at}
    serves = look.serves(current)
    if serves is False:
        held = look.published()
        return _result('wait', 'the MX serves %s, not current (%s): give the served certificate as current, or roll over '
                       'to current by giving it as next; nothing is published or removed'
                       % (', '.join(_short(value) for value in sorted(look.served)) or
                          'a key no published record matches (SPKI SHA-256 %s)' % look.served_spki, _short(current)),
                       held, settled, blocked=True, host=host)
    records = _with([current], look.served or ())
    if not look.everywhere(current):
        unverified = '' if serves else '; not verified that the MX serves it: %s' % look.unknown_why
        return _result('publish-next', 'publish current (%s), no next key wanted: %s%s'
                       % (_short(current), _missing_text(look, current), unverified),
                       _with(records, look.published()), settled, host=host)
    if look.holds_exactly(records):
        return _result('done', 'only current (%s) is published at every authoritative server%s'
                       % (_short(current), '' if serves else '; not verified that the MX serves it: %s' % look.unknown_why),
                       records, settled, host=host)
    if serves is None:
        return _result('wait', 'other records beside current (%s) stay until the MX is seen serving current: %s'
                       % (_short(current), look.unknown_why), look.published(), settled, blocked=True, host=host)
    return _result('retire-old', 'the MX serves current (%s); the other records go: %s'
                   % (_short(current), ', '.join(_short(value) for value in look.published() if value not in records)),
                   records, settled, host=host)


def _rollover(old, new, entry, look, ttl, now, host):
    """From ``old`` to ``new``: publish new beside old, wait two TTLs, switch the MTA, retire old, done."""
    same_next = entry is not None and entry['next'] == new
    since = entry['next_visible_since'] if same_next else None
    switched_at = entry['switched_at'] if entry is not None and new in (entry['next'], entry['current']) else None
    served_new = look.serves(new)
    # Never drop a key the MX is seen to serve, whatever the inventory says now.
    keep = set(look.served or ()) - {old, new}

    def progress(step, reason, records, visible_since=since, wait_until=None, switched=switched_at):
        return _result(step, reason, records, {'current': old, 'next': new, 'ttl': ttl,
                                               'next_visible_since': visible_since, 'switched_at': switched},
                       wait_until=wait_until, host=host)

    both = _with([old, new], keep)
    if not look.everywhere(new):
        urgent = ('; the MX already serves next, so DANE senders that ask a server without it defer mail now'
                  if served_new else '')
        return progress('publish-next', 'publish next (%s) beside current (%s): next is %s%s'
                        % (_short(new), _short(old), _missing_text(look, new), urgent), both, visible_since=None)
    if since is None:
        since = format_utc(now)
    if served_new:
        switched_at = switched_at or format_utc(now)
        final = _with([new], keep - {old})
        if look.holds_exactly(final):
            return _result('done', 'the MX serves next (%s) and only its record is published at every authoritative '
                           'server: next is now current' % _short(new), final,
                           {'current': new, 'next': None, 'ttl': ttl, 'next_visible_since': None,
                            'switched_at': switched_at}, host=host)
        return progress('retire-old', 'the MX serves next (%s): the record of current (%s) goes'
                        % (_short(new), _short(old)), final, switched=switched_at)
    if not look.everywhere(old) and look.serves(old) is not False:
        return progress('publish-next', 'publish current (%s) beside next again: current is %s'
                        % (_short(old), _missing_text(look, old)), both)
    if ttl is None:
        return progress('wait', 'no TTL is known for the TLSA RRset: look again with tlsa_info', both)
    switch_after = utc_datetime(since) + timedelta(seconds=TTL_FACTOR * ttl)
    if now < utc_datetime(since):
        raise ValidationError('now', format_utc(now), 'must not be before next_visible_since (%s)' % since)
    if now < switch_after:
        return progress('wait', 'next (%s) is visible at every authoritative server since %s; senders may still hold '
                        'the RRset without it: switch after %d x TTL %d s' % (_short(new), since, TTL_FACTOR, ttl),
                        both, visible_since=since, wait_until=format_utc(switch_after))
    if served_new is None:
        return progress('switch', 'next (%s) has been visible at every authoritative server since %s (%d x TTL %d s): '
                        'switch the MTA to the next certificate; the old record stays until the MX is seen serving '
                        'next (%s)' % (_short(new), since, TTL_FACTOR, ttl, look.unknown_why), both, visible_since=since)
    serving_now = ('current' if look.serves(old) else
                   ', '.join(_short(value) for value in sorted(look.served)) or 'a key no published record matches')
    return progress('switch', 'next (%s) has been visible at every authoritative server since %s (%d x TTL %d s): '
                    'switch the MTA to the next certificate (it serves %s now)'
                    % (_short(new), since, TTL_FACTOR, ttl, serving_now), both, visible_since=since)


def rollover_step(entry, wanted, observed, now, host=None):
    """The next safe step of one MX host's TLSA rollover.

    ``entry``: the host's state entry (None or {} at first); ``wanted``: ``{current, next}`` TLSA data from the
    inventory's certificates; ``observed``: the host's ``tlsa_info`` result; ``now``: the moment to judge at.
    Returns ``{host, step, wait_until, reason, records, entry, blocked}``: ``records`` is what the DNS should hold
    for this step, ``entry`` the state entry to store. ``blocked`` is true when nothing may change until what the
    reason names is fixed. Errors in the entry name their path in the state file
    (``tlsa_rollover_state.mx1.example.com.next_visible_since``).
    """
    look = Observed(observed)
    host = host or look.host
    where = '%s.%s' % (STATE_FIELD, host) if host else STATE_FIELD
    checked = load_entry(entry, where)
    current, following = _wanted(wanted)
    try:
        moment = parse_time(now, 'now')
    except ValidationError:
        raise ValidationError('now', now, TIME_RULE)
    known = [ttl for ttl in (look.ttl, checked['ttl'] if checked else None) if ttl is not None]
    # The highest TTL ever seen: a resolver may still hold the RRset with a TTL lowered since.
    ttl = max(known) if known else None
    old = current
    if following is None and checked is not None and checked['next'] == current:
        # The inventory made next current before the rollover finished: finish it from the entry's current.
        old, following = checked['current'], current
    if following is None:
        return _steady(current, checked, look, ttl, host)
    return _rollover(old, following, checked, look, ttl, moment, host)
