# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Errors shared by the core and the providers."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ValidationError(ValueError):
    """Bad input: names the field, the offending value and the rule it breaks.

    Raised by the pure core before anything is sent anywhere, so callers can
    validate a whole run first and fail without a partial change.
    """

    def __init__(self, field, value, rule):
        self.field = field
        self.value = value
        self.rule = rule
        super(ValidationError, self).__init__('%s %r: %s' % (field, value, rule))


class ProviderError(Exception):
    """A DNS provider could not read or apply a change.

    Messages must never contain secrets (TSIG keys, tokens).
    """


class ConflictError(Exception):
    """What was read at a name forbids the planned change.

    A CNAME where the record would go (a delegation, RFC 8461 §8.2), or an
    edit by someone else between our read and our write. Raised after reading,
    so nothing has been written; the message says what to check.
    """
