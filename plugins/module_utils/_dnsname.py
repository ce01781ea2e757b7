# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Mail domain names: the hostname rules shared by domains and MX patterns. Pure code.

Internationalised domain names given as U-labels (``bücher.example``) become
A-labels (``xn--bcher-kva.example``) by IDNA 2008 (UTS #46 mapping,
non-transitional) with the ``idna`` package. Without that package the name is
refused with the A-label the standard library's IDNA 2003 codec computes, so
the user can give it after checking it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

try:
    import idna
    HAS_IDNA = True
except ImportError:  # pragma: no cover - depends on the managed host
    idna = None
    HAS_IDNA = False

MAX_NAME = 253

# Explicit ASCII ranges: str.lower() and re.IGNORECASE map some non-ASCII letters
# (the Kelvin sign, for one) onto ASCII ones, which would let them slip through.
_LABEL = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?')
_DIGITS = re.compile(r'[0-9]+')


def hostname_problem(host):
    """The rule ``host`` (a str, trailing dot already removed) breaks, or None."""
    if not host:
        return 'must not be empty'
    if len(host) > MAX_NAME:
        return 'must be at most %d characters' % MAX_NAME
    labels = host.split('.')
    if len(labels) < 2:
        return 'must have at least two labels'
    for label in labels:
        if not _LABEL.fullmatch(label):
            return ('labels must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen; '
                    'bad label %r' % label)
    if _DIGITS.fullmatch(labels[-1]):
        return 'the last label must not be all digits'
    return None


def strip_root(value):
    """Drop one trailing dot (the DNS root), so ``example.com.`` and ``example.com`` are the same name."""
    return value[:-1] if value.endswith('.') else value


def to_a_label(host, field='domain', value=None):
    """``host`` with every U-label turned into its A-label (IDNA 2008); ASCII names are returned unchanged."""
    value = host if value is None else value
    if host.isascii():
        return host
    if not HAS_IDNA:
        try:
            guess = host.encode('idna').decode('ascii')
        except UnicodeError as exc:
            raise ValidationError(field, value, 'is an internationalised name that cannot be converted to an A-label '
                                  '(%s); give the A-label (xn--...)' % exc)
        raise ValidationError(field, value, 'is an internationalised name and the Python package idna (IDNA 2008) is not '
                              'installed; give the A-label instead: %s (computed by the IDNA 2003 codec of '
                              'the standard library: check it)' % guess.lower())
    labels = []
    for label in host.split('.'):
        if label.isascii():
            labels.append(label)
            continue
        try:
            a_label = idna.encode(label, uts46=True, transitional=False).decode('ascii')
        except idna.IDNAError as exc:
            raise ValidationError(field, value, 'is not a valid internationalised name under IDNA 2008: %s' % exc)
        # UTS #46 maps look-alikes such as the Kelvin sign onto ASCII letters: a name that only looks
        # internationalised must be written in ASCII, not silently become another name.
        if not a_label.startswith('xn--'):
            raise ValidationError(field, value, 'label %r maps to the ASCII label %r: write it in ASCII' % (label, a_label))
        labels.append(a_label)
    return '.'.join(labels)


def normalize_domain(value, field='domain'):
    """A mail domain in canonical form: A-labels (IDNA 2008), lower case, no trailing dot."""
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be a string')
    host = to_a_label(strip_root(value), field, value)
    problem = hostname_problem(host)
    if problem:
        raise ValidationError(field, value, problem)
    return host.lower()
