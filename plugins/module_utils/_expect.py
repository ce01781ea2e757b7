# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""EXPECT, the desired state a validator run compares the live state with. Pure code.

``normalize_expect`` validates an EXPECT with the same rules the policy file
and the records are published with (``_policy``, ``_mx``, ``_tlsrpt``) and
returns its canonical form; ``drift`` compares that form with what was found.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from collections.abc import Mapping

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._mx import normalize_pattern
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    _check_max_age, _check_mode, _require_mx, parse_policy, policy_id, render_policy, validate_id,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt import validate_rua

EXPECT_KEYS = ('mode', 'mx', 'max_age', 'id', 'policy', 'rua', 'state')
# The keys that ask for an MTA-STS policy (so a missing _mta-sts record is an error).
STS_EXPECT_KEYS = ('mode', 'mx', 'max_age', 'id', 'policy')
STATES = ('present', 'absent')


def _core(prefix, check, *args):
    """``check(*args)`` (a core validator), with the field of its ValidationError put under ``prefix``."""
    try:
        return check(*args)
    except ValidationError as exc:
        field = str(exc.field)
        # A policy's own fields go under expect.policy (expect.policy.mx); its lines already say "policy".
        if prefix == 'expect.policy' and field.startswith('policy'):
            prefix = 'expect'
        raise ValidationError('%s.%s' % (prefix, field), exc.value, exc.rule)


def _expect_mx(value):
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, (list, tuple)):
        raise ValidationError('expect.mx', value, 'must be a list of mx patterns')
    normalized = []
    for pattern in patterns:
        pattern = normalize_pattern(pattern, 'expect.mx')
        if pattern not in normalized:
            normalized.append(pattern)
    return normalized


def _expect_policy(value):
    """``(desired id, the parsed policy)`` for EXPECT's policy: a dict as render_policy takes, or the file's text."""
    if isinstance(value, Mapping):
        return _core('expect.policy', policy_id, value), _core('expect.policy', lambda: parse_policy(render_policy(value)))
    if isinstance(value, (str, bytes)):
        return _core('expect.policy', policy_id, value), _core('expect.policy', parse_policy, value)
    raise ValidationError('expect.policy', value, 'must be a dict (as render_policy takes) or the policy text')


class Expected(dict):
    """A normalized EXPECT. Its ``policy`` is already an id, so it must not be normalized again."""


def normalize_expect(expect):
    """EXPECT validated and in canonical form: ``{field: desired value}`` for the drift fields.

    Keys with a None value count as not given. ``id`` and ``policy`` exclude each
    other; with ``policy`` the desired ``id`` and ``policy`` are both its
    policy_id, and mode, mx and max_age default to the policy's own (given
    separately they must agree with it, or the domain could never be in sync).
    ``mx`` and ``rua`` become lists without duplicates. ``state: absent`` asks
    for no record at either name, and then the other keys are not used (as the
    record modules ignore them). Raises ValidationError. An ``Expected`` is
    returned unchanged, so a caller may validate every EXPECT before any lookup.
    """
    if isinstance(expect, Expected):
        return expect
    if expect is None:
        return Expected()
    if not isinstance(expect, Mapping):
        raise ValidationError('expect', expect, 'must be a mapping with any of %s' % ', '.join(EXPECT_KEYS))
    for key in expect:
        if key not in EXPECT_KEYS:
            raise ValidationError('expect', key, 'unknown key; allowed: %s' % ', '.join(EXPECT_KEYS))
    given = dict((key, value) for key, value in expect.items() if value is not None)
    state = given.pop('state', 'present')
    if state not in STATES:
        raise ValidationError('expect.state', state, 'must be present or absent')
    if state == 'absent':
        return Expected(state='absent')
    if 'id' in given and 'policy' in given:
        raise ValidationError('expect.id', given['id'], 'give id or policy, not both (the id of a policy is derived from it)')

    desired = {}
    if 'mode' in given:
        desired['mode'] = _core('expect', _check_mode, given['mode'])
    if 'mx' in given:
        desired['mx'] = _expect_mx(given['mx'])
    if 'max_age' in given:
        desired['max_age'] = _core('expect', _check_max_age, given['max_age'])
    if 'policy' in given:
        wanted_id, policy = _expect_policy(given['policy'])
        for key in ('mode', 'mx', 'max_age'):
            if key not in desired:
                desired[key] = policy[key]
            elif differs(key, desired[key], policy[key]):
                raise ValidationError('expect.' + key, desired[key], 'contradicts expect.policy, which has %r' % (policy[key],))
        desired['id'] = wanted_id
        desired['policy'] = wanted_id
    if 'id' in given:
        desired['id'] = validate_id(given['id'], 'expect.id')
    if 'mx' in desired:
        _core('expect', _require_mx, desired.get('mode', 'none'), desired['mx'])
    if 'rua' in given:
        desired['rua'] = validate_rua(given['rua'], 'expect.rua')
    return Expected((key, desired[key]) for key in EXPECT_KEYS if key in desired)


def wants_policy(desired):
    return any(key in desired for key in STS_EXPECT_KEYS)


def differs(field, desired, live):
    """Whether a live value differs from the desired one. mx and rua are sets: order and duplicates do not matter."""
    if live is None:
        return True
    if field in ('mx', 'rua'):
        return set(desired) != set(live)
    return desired != live


def drift(desired, live):
    """``[{field, desired, live}]`` for each desired field whose live value (``live[field]``) differs."""
    return [{'field': field, 'desired': value, 'live': live.get(field)}
            for field, value in desired.items() if differs(field, value, live.get(field))]
