# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""RFC 1035 master files as text: read the records at names, edit their lines, bump the SOA serial.

Pure code: no file I/O. Zone files are hand-kept, often in git, so an edit
touches only the managed record lines and the SOA serial; every other byte
stays as it was. The text is a ``str``; callers decode the file as UTF-8 with
``surrogateescape`` so bytes that are not UTF-8 survive the round trip.

What is parsed: ``$ORIGIN``, ``$TTL``, ``@``, relative and absolute owners,
blank owners, TTL (with units) and class in either order, parentheses,
comments and quoted strings. ``$INCLUDE`` and other directives are kept but
not followed. Records inherit a left-out TTL as BIND does: ``$TTL``, else the
previous record's TTL (RFC 1035), else the SOA minimum for a leading SOA.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import copy
import datetime
import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import dns_name
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import TYPES, collect, decode, empty_rrsets, encode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import parse_presentation

_CLASSES = ('IN', 'CH', 'HS', 'CS')
_TTL_RE = re.compile(r'^[0-9]+(?:[smhdw][0-9]*)*$', re.IGNORECASE)
_TTL_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_SPACE = ' \t\r\n'
_Token = collections.namedtuple('_Token', 'text line start end')


class ZoneFileError(ValueError):
    """The text is not a zone file this module can read or edit; ``line`` is 1-based, or None."""

    def __init__(self, line, message, no_origin=False):
        self.line = line
        self.message = message
        self.no_origin = no_origin
        super(ZoneFileError, self).__init__('line %d: %s' % (line, message) if line else message)


class _Entry(object):
    """One directive or record: the lines ``first..last`` (0-based, inclusive) and what they mean."""

    def __init__(self, first, last):
        self.first = first
        self.last = last
        self.directive = None
        self.owner = None
        self.owner_explicit = False
        self.owner_end = None
        self.ttl = None
        self.ttl_explicit = False
        self.klass = None
        self.rtype = None
        self.rdata = []
        self.origin = None
        self.soa_minimum = None
        self.value = None
        self.target = None

    def key(self):
        """What the record means, to prove that an edit changed nothing it should not."""
        if self.value is not None:
            data = self.value
        else:
            data = (self.origin,) + tuple(token.text for token in self.rdata if token is not self._serial())
        return (self.owner, self.ttl, self.klass or 'IN', self.rtype, data)

    def _serial(self):
        return self.rdata[2] if self.rtype == 'SOA' else None


class _Added(object):
    """A record line this module writes."""

    def __init__(self, name, ttl, rtype, value):
        self.name = name
        self.ttl = ttl
        self.rtype = rtype
        self.value = value

    def text(self):
        return '%s %d IN %s %s' % (_fqdn(self.name), self.ttl, self.rtype, encode(self.rtype, self.value))

    def key(self):
        return (self.name, self.ttl, 'IN', self.rtype, self.value)


class _Inherited(object):
    """The owner and TTL a record takes when its line leaves them out."""

    def __init__(self):
        self.owner = None
        self.last_ttl = None
        self.default_ttl = None

    def take(self, owner, ttl, soa_minimum):
        if owner is None:
            owner = self.owner
        if ttl is None:
            ttl = self.default_ttl if self.default_ttl is not None else self.last_ttl
        if ttl is None and soa_minimum is not None:
            # BIND: a leading SOA without a TTL, and no $TTL, makes its minimum the default.
            ttl = self.default_ttl = soa_minimum
        self.owner = owner
        self.last_ttl = ttl
        return owner, ttl


class Zone(object):
    """A parsed zone file: ``name`` is the SOA owner, ``entries`` the directives and records in order."""

    def __init__(self, text, origin, lines, entries, soa):
        self.text = text
        self.origin = origin
        self.lines = lines
        self.entries = entries
        self.soa = soa
        self.name = soa.owner
        self.newline = '\r\n' if lines and lines[0].endswith('\r\n') else '\n'

    def records(self):
        return [entry for entry in self.entries if entry.rtype]


def _split_lines(text):
    parts = text.split('\n')
    lines = [part + '\n' for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _scan(lines):
    """Yield ``(first, last, blank_owner, tokens)`` per entry; parentheses join lines into one entry."""
    depth = 0
    tokens = []
    first = None
    blank_owner = False
    for index, line in enumerate(lines):
        i = 0
        n = len(line)
        while i < n:
            ch = line[i]
            if ch in _SPACE:
                i += 1
                continue
            if ch == ';':
                break
            if first is None:
                first = index
                blank_owner = i > 0
            if ch in '()':
                depth += 1 if ch == '(' else -1
                if depth < 0:
                    raise ZoneFileError(index + 1, 'unbalanced ")"')
                i += 1
                continue
            start = i
            if ch == '"':
                i += 1
                while i < n and line[i] != '"':
                    i += 2 if line[i] == '\\' else 1
                if i >= n:
                    raise ZoneFileError(index + 1, 'unterminated quoted string')
                i += 1
            else:
                while i < n and line[i] not in _SPACE + ';()"':
                    i += 2 if line[i] == '\\' else 1
                i = min(i, n)
            tokens.append(_Token(line[start:i], index, start, i))
        if first is not None and depth == 0:
            yield first, index, blank_owner, tokens
            first = None
            tokens = []
    if first is not None:
        raise ZoneFileError(first + 1, 'unbalanced "(": no closing ")"')


def _fqdn(name):
    return name + '.'


def _absolute(text, origin, lineno):
    """A name as written to an absolute, lower-case name without the trailing dot."""
    if text.endswith('.'):
        body = text[:-1]
        if (len(body) - len(body.rstrip('\\'))) % 2 == 0:
            return body.lower()
    if origin is None:
        raise ZoneFileError(lineno, 'name %r is relative and there is no $ORIGIN' % text, no_origin=True)
    if text == '@':
        return origin
    return text.lower() + ('.' + origin if origin else '')


def _ttl(text, lineno):
    if not _TTL_RE.match(text):
        raise ZoneFileError(lineno, 'bad TTL %r' % text)
    return sum(int(number) * _TTL_UNITS[unit.lower()] for number, unit in re.findall(r'([0-9]+)([smhdwSMHDW]?)', text))


def parse(text, origin=None):
    """Parse zone-file text; ``origin`` is the initial origin (the zone name), if known."""
    lines = _split_lines(text)
    origin = initial = None if origin is None else dns_name(origin)
    inherited = _Inherited()
    entries = []
    soa = None
    for first, last, blank_owner, tokens in _scan(lines):
        lineno = first + 1
        entry = _Entry(first, last)
        head = tokens[0].text
        if not blank_owner and head.startswith('$'):
            entry.directive = head.upper()
            if entry.directive in ('$ORIGIN', '$TTL'):
                if len(tokens) != 2:
                    raise ZoneFileError(lineno, '%s needs one argument' % entry.directive)
                if entry.directive == '$ORIGIN':
                    origin = _absolute(tokens[1].text, origin, lineno)
                else:
                    entry.ttl = inherited.default_ttl = _ttl(tokens[1].text, lineno)
            entries.append(entry)
            continue
        rest = list(tokens)
        owner = None
        if not blank_owner:
            token = rest.pop(0)
            owner = _absolute(token.text, origin, lineno)
            entry.owner_explicit = True
            entry.owner_end = token.end
        ttl = None
        while rest:
            word = rest[0].text
            if entry.klass is None and word.upper() in _CLASSES:
                entry.klass = word.upper()
            elif ttl is None and _TTL_RE.match(word):
                ttl = _ttl(word, lineno)
            else:
                break
            rest.pop(0)
        if not rest:
            raise ZoneFileError(lineno, 'record has no type')
        entry.rtype = rest.pop(0).text.upper()
        entry.rdata = rest
        entry.origin = origin
        entry.ttl_explicit = ttl is not None
        if entry.rtype == 'SOA':
            if soa is not None:
                raise ZoneFileError(lineno, 'second SOA record (the first is on line %d)' % (soa.first + 1))
            if len(rest) != 7:
                raise ZoneFileError(lineno, 'SOA record needs 7 fields, found %d' % len(rest))
            if not re.match(r'^[0-9]+$', rest[2].text) or int(rest[2].text) >= 2 ** 32:
                raise ZoneFileError(rest[2].line + 1, 'SOA serial %r is not a number below 2**32' % rest[2].text)
            entry.soa_minimum = _ttl(rest[6].text, rest[6].line + 1)
            soa = entry
        entry.owner, entry.ttl = inherited.take(owner, ttl, entry.soa_minimum)
        if entry.owner is None:
            raise ZoneFileError(lineno, 'record has a blank owner and no record before it')
        if entry.ttl is None:
            raise ZoneFileError(lineno, 'record has no TTL and there is no $TTL before it')
        if entry.rtype == 'TXT':
            try:
                entry.value = parse_presentation(' '.join(token.text for token in rest))
            except ValueError as exc:
                raise ZoneFileError(lineno, 'bad TXT data: %s' % exc)
            if not entry.value:
                raise ZoneFileError(lineno, 'TXT record has no data')
        elif entry.rtype == 'CNAME':
            if len(rest) != 1:
                raise ZoneFileError(lineno, 'CNAME record needs one target')
            entry.target = entry.value = _absolute(rest[0].text, origin, lineno)
        elif entry.rtype in TYPES:
            try:
                entry.value = decode(entry.rtype, ' '.join(token.text for token in rest))
            except ValueError:
                pass    # kept as written; read as text, never matched for removal
        entries.append(entry)
    if soa is None:
        raise ZoneFileError(None, 'no SOA record')
    return Zone(text, initial, lines, entries, soa)


def read_rrsets(zone, names, rtypes):
    """``{name: {rtype: RRset}}`` (``_rrset``) of the IN-class records at ``names``: duplicates once, file order.

    Types this collection does not write are read as their text.
    """
    found = empty_rrsets(names, rtypes)
    for entry in zone.records():
        name = entry.owner
        if name in found and entry.klass in (None, 'IN'):
            value = entry.value
            if value is None:
                value = ' '.join(token.text for token in entry.rdata)
            collect(found, name, entry.rtype, rtypes, None, value)
            rrset = found[name].get(entry.rtype)
            if rrset is not None and rrset.ttl is None:
                rrset.ttl = entry.ttl
    return found


def next_serial(serial, today):
    """RFC 1982 increment; a YYYYMMDDnn serial also moves up to today's date."""
    new = serial + 1
    text = str(serial)
    if len(text) == 10:
        try:
            plausible = 1970 <= datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8])).year <= 2199
        except ValueError:
            plausible = False
        if plausible:
            new = max(new, int(today.strftime('%Y%m%d')) * 100)
    return new % 2 ** 32


def apply_changes(zone, changes, today):
    """The text of ``zone`` with ``changes`` (RRsetChange list) applied and the serial bumped; the same text if nothing changes.

    A replaced value takes the line of the first value removed at its name;
    other new values follow the last record at their name, or end the file.
    """
    entries = zone.entries
    deleted = set()
    before = collections.defaultdict(list)
    after = collections.defaultdict(list)
    at_end = []
    for change in changes:
        name = dns_name(change.name)
        remove = set(change.remove)
        at_name = [i for i, entry in enumerate(entries) if entry.rtype and entry.owner == name]
        removed = [i for i in at_name if entries[i].rtype == change.rtype and entries[i].klass in (None, 'IN')
                   and entries[i].value in remove]
        missing = remove - set(entries[i].value for i in removed)
        if missing:
            raise ZoneFileError(None, '%s value %s is not at %s' % (change.rtype, encode(change.rtype, sorted(missing)[0]), name))
        deleted.update(removed)
        added = [_Added(name, change.ttl, change.rtype, value) for value in change.add]
        if removed:
            before[removed[0]].extend(added)
        elif at_name:
            after[at_name[-1]].extend(added)
        else:
            at_end.extend(added)
    if not deleted and not any(change.add for change in changes):
        return zone.text

    items = []
    pos = 0
    for index, entry in enumerate(entries):
        items.extend(zone.lines[pos:entry.first])
        items.extend(before[index])
        if index not in deleted:
            items.append(entry)
        items.extend(after[index])
        pos = entry.last + 1
    items.extend(zone.lines[pos:])
    items.extend(at_end)
    text = _render(zone, items, next_serial(int(zone.soa.rdata[2].text), today))

    expected = collections.Counter(entry.key() for i, entry in enumerate(entries) if entry.rtype and i not in deleted)
    expected.update(item.key() for item in items if isinstance(item, _Added))
    if collections.Counter(entry.key() for entry in parse(text, zone.origin).records()) != expected:
        raise ZoneFileError(None, 'the edit would change records it does not manage; no change written')
    return text


def _render(zone, items, serial):
    """Join ``items`` (kept lines, entries, added records) into text.

    A kept record whose line leaves out its owner or TTL gets them written
    in when the record now before it would give it a different one.
    """
    inherited = _Inherited()
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
            continue
        if isinstance(item, _Added):
            if out and not out[-1].endswith('\n'):
                out[-1] += zone.newline
            out.append(item.text() + zone.newline)
            inherited.take(item.name, item.ttl, None)
            continue
        chunk = zone.lines[item.first:item.last + 1]
        if item.directive == '$TTL':
            inherited.default_ttl = item.ttl
        elif item.rtype:
            if item is zone.soa:
                token = item.rdata[2]
                k = token.line - item.first
                chunk[k] = chunk[k][:token.start] + str(serial) + chunk[k][token.end:]
            owner, ttl = copy.copy(inherited).take(item.owner if item.owner_explicit else None,
                                                   item.ttl if item.ttl_explicit else None, item.soa_minimum)
            fix_owner = owner != item.owner
            fix_ttl = ttl != item.ttl
            if fix_owner:
                chunk[0] = _fqdn(item.owner) + (' %d' % item.ttl if fix_ttl else '') + chunk[0]
            elif fix_ttl:
                at = item.owner_end or 0
                chunk[0] = chunk[0][:at] + ' %d' % item.ttl + chunk[0][at:]
            inherited.take(item.owner if item.owner_explicit or fix_owner else None,
                           item.ttl if item.ttl_explicit or fix_ttl else None, item.soa_minimum)
        out.extend(chunk)
    return ''.join(out)
