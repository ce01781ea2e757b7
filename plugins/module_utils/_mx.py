# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""MX patterns of an MTA-STS policy (RFC 8461 §3.2, §4.1). Pure code."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import hostname_problem, strip_root
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

WILDCARD_RULE = 'a wildcard may only be the whole left-most label'


def normalize_pattern(value, field='mx'):
    """An mx pattern in canonical form (lower case, no trailing dot): a hostname or ``*.`` + hostname."""
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be a string')
    pattern = strip_root(value)
    host = pattern[2:] if pattern.startswith('*.') else pattern
    if '*' in host or pattern == '*':
        raise ValidationError(field, value, WILDCARD_RULE)
    problem = hostname_problem(host)
    if problem:
        raise ValidationError(field, value, problem)
    return pattern.lower()


def matches(pattern, host):
    """Whether MX host ``host`` is covered by ``pattern``.

    A wildcard stands for exactly one label (RFC 8461 §4.1): ``*.example.com``
    covers ``mx1.example.com`` but neither ``example.com`` nor
    ``a.b.example.com``. A host that is not a valid hostname (a null MX ``.``,
    say) matches nothing.
    """
    pattern = normalize_pattern(pattern)
    if not isinstance(host, str):
        raise ValidationError('host', host, 'must be a string')
    host = strip_root(host)
    if hostname_problem(host):
        return False
    host = host.lower()
    if pattern.startswith('*.'):
        first, _sep, rest = host.partition('.')
        return bool(first) and rest == pattern[2:]
    return host == pattern


def matches_any(patterns, host):
    """Whether ``host`` is covered by any of ``patterns`` (a list, or one pattern as a str).

    Every pattern is validated, not only those before the first match, so a bad
    list fails the same way whatever host is asked about.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)):
        raise ValidationError('mx', patterns, 'must be a list of patterns')
    normalized = [normalize_pattern(pattern) for pattern in patterns]
    return any(matches(pattern, host) for pattern in normalized)
