# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""TXT character-strings and the plan for one TXT name.

This is the one place that knows how a TXT value is split into
character-strings, how it is written in presentation format, and how the
values at a name change when one managed record is published or removed.
Pure code: no I/O.

A TXT *value* is kept as a tuple of ``bytes`` character-strings exactly as the
DNS holds it, so records this collection does not manage are written back
byte for byte. Managed records are compared by their joined text.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

MAX_STRING = 255


def split_value(text):
    """Text to a tuple of character-strings of at most 255 bytes each."""
    data = text.encode('utf-8')
    if not data:
        return (b'',)
    return tuple(data[i:i + MAX_STRING] for i in range(0, len(data), MAX_STRING))


def join_value(strings):
    """Character-strings to the text a receiver parses (RFC 8461 §3.1: concatenated)."""
    return b''.join(strings).decode('utf-8', 'replace')


def to_presentation(strings, octal=False):
    """Character-strings to zone-file presentation: ``"a" "b"``.

    ``octal``: write three-digit escapes in octal, as Route 53 reads them, not decimal as RFC 1035 says.
    """
    escape = '\\%03o' if octal else '\\%03d'
    out = []
    for string in strings:
        chars = []
        for byte in bytearray(string):
            if byte in (0x22, 0x5c):
                chars.append('\\' + chr(byte))
            elif 0x20 <= byte < 0x7f:
                chars.append(chr(byte))
            else:
                chars.append(escape % byte)
        out.append('"%s"' % ''.join(chars))
    return ' '.join(out)


def parse_presentation(text, octal=False):
    """Zone-file TXT rdata (quoted or bare strings, ``\\X`` and ``\\DDD`` escapes) to character-strings.

    ``octal``: three-digit escapes are octal, as Route 53 writes them, not decimal as RFC 1035 says.
    """
    strings = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in ' \t\r\n':
            i += 1
            continue
        quoted = ch == '"'
        if quoted:
            i += 1
        buf = bytearray()
        while i < n:
            ch = text[i]
            if quoted and ch == '"':
                i += 1
                break
            if not quoted and ch in ' \t\r\n':
                break
            if ch == '\\':
                digits = text[i + 1:i + 4]
                if len(digits) == 3 and digits.isdigit():
                    value = int(digits, 8 if octal else 10)
                    if value > 255:
                        raise ValueError('TXT escape \\%s is over 255' % digits)
                    buf.append(value)
                    i += 4
                    continue
                if i + 1 >= n:
                    raise ValueError('TXT data ends inside an escape')
                buf.extend(text[i + 1].encode('utf-8'))
                i += 2
                continue
            buf.extend(ch.encode('utf-8'))
            i += 1
        else:
            if quoted:
                raise ValueError('TXT data has an unterminated quoted string')
        if len(buf) > MAX_STRING:
            raise ValueError('TXT character-string longer than 255 bytes')
        strings.append(bytes(buf))
    return tuple(strings)


class TxtText(object):
    """How one backend writes a TXT value as text; each provider that talks text declares one.

    ``octal``: three-digit escapes are octal (Route 53), not decimal (RFC 1035).
    ``plain``: a value may also come as bare text, taken whole (an API that returns
    what it was given); quoted text that does not parse is taken whole too.
    """

    def __init__(self, octal=False, plain=False):
        self.octal = octal
        self.plain = plain

    def encode(self, strings):
        return to_presentation(strings, octal=self.octal)

    def decode(self, text):
        """Text to character-strings; ValueError when it is not valid presentation format."""
        if self.plain:
            if text.startswith('"'):
                try:
                    return parse_presentation(text, octal=self.octal)
                except ValueError:
                    pass
            return split_value(text)
        return parse_presentation(text, octal=self.octal)


RFC1035_TXT = TxtText()


class TxtRRset(object):
    """What a provider found at one name: TXT values (tuples of bytes), their TTL, or a CNAME."""

    def __init__(self, name, ttl=None, values=None, cname=None):
        self.name = name
        self.ttl = ttl
        self.values = list(values or [])
        self.cname = cname
        # A backend that keeps a TTL per value (Cloudflare) fills this; DNS has one per RRset.
        self.ttls = {}

    def ttl_of(self, value):
        """The TTL ``value`` is served with."""
        return self.ttls.get(value, self.ttl)

    def __repr__(self):
        return '%s(%r, ttl=%r, values=%r, cname=%r)' % (type(self).__name__, self.name, self.ttl, self.values, self.cname)


def txt_view(found, names):
    """``{name: TxtRRset}`` from typed RRsets (``{name: {rtype: _rrset.RRset}}`` with 'TXT', and 'CNAME' where there is one)."""
    result = {}
    for name in names:
        txt, cname = found[name]['TXT'], found[name].get('CNAME')
        rrset = TxtRRset(name, txt.ttl, txt.values, cname.values[0] if cname else None)
        rrset.ttls = dict(txt.ttls)
        result[name] = rrset
    return result


class NameChange(object):
    """The planned change of the TXT RRset at one name (an ``_rrset.RRsetChange`` of type TXT).

    ``before``/``after`` are all TXT values at the name (managed or not);
    ``remove``/``add`` are what a provider deletes and adds, which differ from
    the set difference when only the TTL changes (the managed value is
    rewritten with the new TTL).
    """

    rtype = 'TXT'

    def __init__(self, name, before_ttl, ttl, before, after, remove, add, managed_before, managed_after):
        self.name = name
        self.before_ttl = before_ttl
        self.ttl = ttl
        self.before = before
        self.after = after
        self.remove = remove
        self.add = add
        self.managed_before = managed_before
        self.managed_after = managed_after

    @property
    def changed(self):
        return bool(self.remove or self.add)


def plan_name(rrset, wanted, is_managed, same, ttl):
    """Plan the values at ``rrset.name`` so exactly one managed value ``wanted`` remains (or none).

    ``wanted``: the text of the managed record, or None to remove it.
    ``is_managed(text)``: whether a value is a record of the kind we manage
    (for example starts with ``v=STSv1``); every such value is ours to keep or drop.
    ``same(live_text, wanted_text)``: whether a live value already says what
    ``wanted`` says (providers and people rewrite spacing; a value that means
    the same is left alone so runs stay idempotent).
    """
    before = list(rrset.values)
    managed = [value for value in before if is_managed(join_value(value))]
    others = [value for value in before if value not in managed]
    remove = []
    add = []
    if wanted is None:
        remove = managed
        kept = []
    elif len(managed) == 1 and same(join_value(managed[0]), wanted):
        kept = managed
        if rrset.ttl_of(managed[0]) != ttl:
            remove = managed
            add = managed
    else:
        remove = managed
        kept = [split_value(wanted)]
        add = kept
    after = others + kept
    return NameChange(
        name=rrset.name,
        before_ttl=rrset.ttl_of(managed[0]) if managed else rrset.ttl,
        ttl=ttl,
        before=before,
        after=after,
        remove=list(remove),
        add=list(add),
        managed_before=[join_value(value) for value in managed],
        managed_after=[join_value(value) for value in kept],
    )
