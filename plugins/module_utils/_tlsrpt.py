# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``_smtp._tls`` TXT record of SMTP TLS Reporting (RFC 8460 §3). Pure code."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import hostname_problem
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    add_txt_extension, has_version_tag, record_fields, record_text, txt_extensions,
)

VERSION = 'TLSRPTv1'

# RFC 3986 characters minus those RFC 8460 makes senders percent-encode ("," "!")
# and ";" which would end the rua field; anything else is not a URI at all.
_URI_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@$&'()*+=%-]+")
_BAD_PERCENT = re.compile(r'%(?![0-9A-Fa-f]{2})')
_LOCAL_PART = re.compile(r"[A-Za-z0-9$%&'*+/=_~-]+(?:\.[A-Za-z0-9$%&'*+/=_~-]+)*")
_PORT = re.compile(r'[0-9]{1,5}')
_RUA_DELIM = re.compile(r'[ \t]*,[ \t]*')


def _check_uri(uri, field):
    if not isinstance(uri, str):
        raise ValidationError(field, uri, 'must be a string')
    lower = uri.lower()
    if not (lower.startswith('mailto:') or lower.startswith('https:')):
        raise ValidationError(field, uri, 'must start with mailto: or https:')
    if not _URI_CHARS.fullmatch(uri):
        raise ValidationError(field, uri, 'may contain only URI characters; spaces, ",", ";" and "!" must be percent-encoded')
    if _BAD_PERCENT.search(uri):
        raise ValidationError(field, uri, '"%" must start a percent-encoding (%XX)')
    if lower.startswith('mailto:'):
        # RFC 6068 allows ?headers after the address; senders only need the address.
        address = uri[len('mailto:'):].partition('?')[0]
        local, at, domain = address.rpartition('@')
        if not at or not _LOCAL_PART.fullmatch(local):
            raise ValidationError(field, uri, 'mailto: must be followed by an address local-part@domain')
        problem = hostname_problem(domain)
        if problem:
            raise ValidationError(field, uri, 'mail domain ' + problem)
        return uri
    if not lower.startswith('https://'):
        raise ValidationError(field, uri, 'https: must be followed by // and a host name')
    rest = uri[len('https://'):]
    authority = re.split(r'[/?#]', rest, maxsplit=1)[0]
    if '@' in authority:
        raise ValidationError(field, uri, 'https: URI must not contain user information')
    host, colon, port = authority.partition(':')
    if colon and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise ValidationError(field, uri, 'port must be a number from 1 to 65535')
    problem = hostname_problem(host)
    if problem:
        raise ValidationError(field, uri, 'host name ' + problem)
    return uri


COMMA_RULE = ('must not contain a comma: a comma separates URIs in the record, so give several URIs as a list, '
              'and percent-encode a comma inside a URI as %2C')


def validate_rua(uris, field='rua'):
    """Report destinations: a non-empty list of ``mailto:`` or ``https:`` URIs (one str is a list of one).

    A comma is refused, never split on: in the record it separates URIs (RFC 8460 §3),
    so ``a?x=1,2`` would publish a second "URI" ``2``. Returned as given, in order,
    without duplicates.
    """
    if isinstance(uris, str):
        uris = [uris]
    if not isinstance(uris, (list, tuple)) or not uris:
        raise ValidationError(field, uris, 'must be one or more mailto: or https: URIs')
    checked = []
    for uri in uris:
        if isinstance(uri, str) and ',' in uri:
            raise ValidationError(field, uri, COMMA_RULE)
        _check_uri(uri, field)
        if uri not in checked:
            checked.append(uri)
    return checked


def is_tlsrpt_record(text):
    return has_version_tag(text, 'v=' + VERSION)


def parse_tlsrpt_record(value):
    """Parse a ``_smtp._tls`` TXT record (a str, or its character-strings)."""
    text = record_text(value, 'tlsrpt record')
    rua = None
    extensions = {}
    for name, field_value in record_fields(text, VERSION, 'tlsrpt record'):
        if name == 'rua':
            if rua is not None:
                raise ValidationError('tlsrpt record', text, 'must have exactly one rua= field')
            rua = validate_rua(_RUA_DELIM.split(field_value))
        else:
            add_txt_extension(extensions, name, field_value)
    if rua is None:
        raise ValidationError('tlsrpt record', text, 'must have a rua= field')
    return {'version': VERSION, 'rua': rua, 'extensions': extensions}


def render_tlsrpt_record(rua, extensions=None):
    """``v=TLSRPTv1; rua=<uri>[,<uri>...]`` then ``; name=value`` per extension, sorted by name."""
    fields = ['v=' + VERSION, 'rua=' + ','.join(validate_rua(rua))]
    fields.extend('%s=%s' % pair for pair in txt_extensions(extensions, ('rua',)))
    return '; '.join(fields)
