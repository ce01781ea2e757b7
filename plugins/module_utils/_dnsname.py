# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Mail domain names: the hostname rules shared by domains and MX patterns. Pure code."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

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


def normalize_domain(value, field='domain'):
    """A mail domain in canonical form: lower case, no trailing dot."""
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be a string')
    host = strip_root(value)
    problem = hostname_problem(host)
    if problem:
        raise ValidationError(field, value, problem)
    return host.lower()
