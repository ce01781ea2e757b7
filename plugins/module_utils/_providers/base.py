# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The provider interface: read the TXT values at names in a zone, apply a planned change.

A provider knows nothing about MTA-STS or TLS-RPT grammar and does no
planning: it is given names and ``NameChange`` objects (see ``_txt``).
Names are absolute, lower-case, without a trailing dot.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class Provider(object):
    """Base class of the DNS providers.

    ``OPTIONS`` is the provider's part of the module argument spec; the
    module passes all its parameters to ``from_params``.
    """

    OPTIONS = {}

    @classmethod
    def from_params(cls, params):
        raise NotImplementedError

    def find_zone(self, name):
        """The zone that holds ``name`` (longest match), or raise ProviderError."""
        raise NotImplementedError

    def read(self, zone, names):
        """``{name: TxtRRset}`` for every name in ``names`` (an empty TxtRRset where there is nothing).

        At most one read request for the zone where the backend allows it.
        """
        raise NotImplementedError

    def apply(self, zone, changes):
        """Apply ``changes`` (a list of NameChange with ``changed`` true) to ``zone`` in one write.

        The write must fail, not overwrite, when the RRsets changed since
        ``read`` (a concurrent edit), and must not leave a partial change.
        """
        raise NotImplementedError

    def close(self):
        """Release connections; called once at the end of a module run."""


def parent_names(name):
    """``a.b.c`` -> ``['a.b.c', 'b.c', 'c']``: candidate zones, longest first."""
    labels = name.split('.')
    return ['.'.join(labels[i:]) for i in range(len(labels))]
