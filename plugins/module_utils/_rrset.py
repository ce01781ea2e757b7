# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Typed RRsets: what a provider reads at a name, per type, and the change it writes. Pure code.

Values are canonical and hashable, so two spellings of one record compare
equal and a re-run plans nothing:

- TXT: a tuple of ``bytes`` character-strings, exactly as the DNS holds them (``_txt``);
- A, AAAA: the address as text, AAAA in its compressed form (RFC 5952);
- CNAME: the target, lower-case, without the final dot;
- TLSA: ``(usage, selector, matching type, data as lower-case hex)`` (RFC 6698).

``encode`` writes a value in zone-file presentation format (absolute names end
with a dot); ``decode`` reads one, and raises ValueError naming the rule broken.
Types without a codec (MX, NS, ...) are only ever read, as their text.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import parse_presentation, to_presentation

# The types this collection writes; every other type at a name is read as text and never touched.
TYPES = ('TXT', 'A', 'AAAA', 'CNAME', 'TLSA')
MAX_NAME = 253
# DNS names as targets may hold underscores (``_mta-sts.hoster.example``): not only hostnames.
_DNS_NAME = re.compile(r'^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$')
_HEX = re.compile(r'^[0-9a-f]+$')


def _text(rtype, text):
    if not isinstance(text, str):
        raise ValueError('%s value %r: must be a string' % (rtype, text))
    return text.strip()


def _address(rtype, text, version):
    text = _text(rtype, text)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise ValueError('%s value %r: must be an IPv%d address' % (rtype, text, version))
    return str(address)


def dns_target(text, rtype='CNAME'):
    """A DNS name as a record target: lower-case, no final dot; ValueError when it is not a DNS name."""
    name = _text(rtype, text).lower()
    if name.endswith('.'):
        name = name[:-1]
    if not _DNS_NAME.match(name):
        raise ValueError('%s value %r: must be a DNS name (labels of letters, digits, "-" and "_", '
                         'at most 63 characters each, %d in all)' % (rtype, text, MAX_NAME))
    return name


def _tlsa(text):
    fields = _text('TLSA', text).split()
    if len(fields) < 4:
        raise ValueError('TLSA value %r: must be "usage selector matching-type data"' % text)
    numbers = []
    for field in fields[:3]:
        if not field.isdigit() or int(field) > 255:
            raise ValueError('TLSA value %r: usage, selector and matching type must be numbers 0 to 255' % text)
        numbers.append(int(field))
    data = ''.join(fields[3:]).lower()
    if not _HEX.match(data) or len(data) % 2:
        raise ValueError('TLSA value %r: the data must be hexadecimal, an even number of digits' % text)
    lengths = {1: 64, 2: 128}
    if numbers[2] in lengths and len(data) != lengths[numbers[2]]:
        raise ValueError('TLSA value %r: matching type %d needs %d hex digits, found %d'
                         % (text, numbers[2], lengths[numbers[2]], len(data)))
    return (numbers[0], numbers[1], numbers[2], data)


def decode(rtype, text):
    """Presentation text of one record to its canonical value; ValueError naming the rule when it is not valid."""
    if rtype == 'TXT':
        return parse_presentation(_text(rtype, text))
    if rtype == 'A':
        return _address(rtype, text, 4)
    if rtype == 'AAAA':
        return _address(rtype, text, 6)
    if rtype == 'CNAME':
        return dns_target(text)
    if rtype == 'TLSA':
        return _tlsa(text)
    raise ValueError('record type %r: not one of %s' % (rtype, ', '.join(TYPES)))


def encode(rtype, value):
    """A canonical value to presentation text, as a zone file writes it."""
    if rtype == 'TXT':
        return to_presentation(value)
    if rtype in ('A', 'AAAA'):
        return value
    if rtype == 'CNAME':
        return value + '.'
    if rtype == 'TLSA':
        return '%d %d %d %s' % value
    raise ValueError('record type %r: not one of %s' % (rtype, ', '.join(TYPES)))


def read_value(rtype, text):
    """A value as a backend returned it: decoded for the types we write, the text itself for the others."""
    return decode(rtype, text) if rtype in TYPES else ' '.join(text.split())


class RRset(object):
    """The records of one type at one name: ``values`` in the backend's order, and their TTL.

    A backend that keeps a TTL per value (Cloudflare) fills ``ttls``; DNS has one per RRset.
    """

    def __init__(self, name, rtype, ttl=None, values=()):
        self.name = name
        self.rtype = rtype
        self.ttl = ttl
        self.values = list(values)
        self.ttls = {}

    def add(self, value, ttl=None):
        """Take one value read from the backend (a duplicate only once)."""
        if value not in self.values:
            self.values.append(value)
        if ttl is not None:
            self.ttls[value] = ttl
            self.ttl = ttl

    def ttl_of(self, value):
        """The TTL ``value`` is served with."""
        return self.ttls.get(value, self.ttl)

    def __bool__(self):
        return bool(self.values)

    __nonzero__ = __bool__

    def __repr__(self):
        return 'RRset(%r, %r, ttl=%r, values=%r)' % (self.name, self.rtype, self.ttl, self.values)


def empty_rrsets(names, rtypes):
    """``{name: {rtype: empty RRset}}``: what ``read_rrsets`` fills; ``rtypes`` None means none up front."""
    return dict((name, dict((rtype, RRset(name, rtype)) for rtype in rtypes or ())) for name in names)


def collect(found, name, rtype, rtypes, ttl, value):
    """File one value read at ``name`` into ``found`` when it is wanted: a type of ``rtypes``
    (all types when None), or the CNAME that hides any other type there."""
    at_name = found.get(name)
    if at_name is None or (rtypes is not None and rtype not in rtypes and rtype != 'CNAME'):
        return
    at_name.setdefault(rtype, RRset(name, rtype)).add(value, ttl)


class RRsetChange(object):
    """The planned change of one RRset: all its values ``before`` (with ``before_ttl``) and ``after`` (with ``ttl``).

    ``remove``/``add`` are what a provider deletes and adds: the values that go
    and come, or all of them when the TTL changes (DNS has one TTL per RRset).
    """

    def __init__(self, name, rtype, before_ttl, before, ttl, after):
        self.name = name
        self.rtype = rtype
        self.before_ttl = before_ttl
        self.before = list(before)
        self.ttl = ttl
        self.after = list(after)

    @property
    def rewritten(self):
        return bool(self.before and self.after and self.before_ttl != self.ttl)

    @property
    def remove(self):
        return list(self.before) if self.rewritten else [value for value in self.before if value not in self.after]

    @property
    def add(self):
        return list(self.after) if self.rewritten else [value for value in self.after if value not in self.before]

    @property
    def changed(self):
        return bool(self.remove or self.add)

    def __repr__(self):
        return 'RRsetChange(%r, %r, %r, %r, %r, %r)' % (self.name, self.rtype, self.before_ttl, self.before, self.ttl, self.after)


def plan_rrset(rrset, wanted, ttl):
    """The change that leaves exactly the values ``wanted`` (canonical, any order) at ``rrset`` with ``ttl``."""
    before = list(rrset.values)
    after = [value for value in before if value in wanted]
    after.extend(value for value in wanted if value not in after)
    if set(before) == set(after):
        after = before
    before_ttl = rrset.ttl_of(before[0]) if before else rrset.ttl
    if before and any(rrset.ttl_of(value) != before_ttl for value in before):
        before_ttl = None   # values disagree (a backend with a TTL per value): rewrite them all with one
    return RRsetChange(rrset.name, rrset.rtype, before_ttl, before, ttl, after)
