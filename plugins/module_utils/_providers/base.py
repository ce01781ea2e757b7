# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The provider interface: read the RRsets at names in a zone, apply a planned change.

A provider knows nothing about MTA-STS or TLS-RPT grammar and does no
planning: it is given names and ``RRsetChange`` objects (see ``_rrset``).
Names are absolute, lower-case, without a trailing dot (``dns_name``).
The TXT interface (``read``/``apply`` with ``TxtRRset``/``NameChange``,
see ``_txt``) is a view of the typed one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import BUDGET_OPTIONS, RETRY_OPTIONS, Retrier, budget_from
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import encode, read_value
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import RFC1035_TXT, txt_view

# Seconds to wait for each answer from a provider's server or API (the module's ``timeout`` option).
DEFAULT_TIMEOUT = 10.0
# Options every provider uses; part of each module's argument spec.
SHARED_OPTIONS = {
    'timeout': {'type': 'float', 'default': DEFAULT_TIMEOUT},
}


def dns_name(text):
    """A name as a backend writes it (any case, with or without the final dot) to the form providers use."""
    return text.rstrip('.').lower()


def stale_records(what, detail='', rtypes=('TXT',)):
    """The error of a write refused because the RRsets changed since they were read (a concurrent edit)."""
    return ConflictError('%s: the %s records changed since they were read%s; nothing was applied, re-run'
                         % (what, '/'.join(sorted(set(rtypes))), detail))


def parent_names(name):
    """``a.b.c`` -> ``['a.b.c', 'b.c', 'c']``: candidate zones, longest first."""
    labels = name.split('.')
    return ['.'.join(labels[i:]) for i in range(len(labels))]


class Provider(object):
    """Base class of the DNS providers.

    ``OPTIONS`` is the provider's own part of the module argument spec (the
    registry merges them); ``REQUIRED`` names the options without which it
    cannot work (enforced at argument validation); ``TXT`` is how the backend
    writes a TXT value as text. ``from_params`` gets all module parameters.
    """

    NAME = None
    OPTIONS = {}
    REQUIRED = ()
    TXT = RFC1035_TXT
    # The third-party Python library the provider needs: (its name, the ImportError, or None when it imported).
    LIBRARY = None

    def encode(self, rtype, value):
        """A value as this backend's text: TXT in its own way (``TXT``), other types in presentation format."""
        return self.TXT.encode(value) if rtype == 'TXT' else encode(rtype, value)

    def decode(self, rtype, text):
        """Text from this backend to a value (``_rrset.read_value``); ValueError when it cannot be read."""
        return self.TXT.decode(text) if rtype == 'TXT' else read_value(rtype, text)

    @classmethod
    def check_library(cls):
        """Fail with the library to install, before anything is sent."""
        if cls.LIBRARY is not None and cls.LIBRARY[1] is not None:
            raise ProviderError('the %s provider needs the %s Python library: %s' % (cls.NAME, cls.LIBRARY[0], cls.LIBRARY[1]))

    @classmethod
    def settings(cls, params):
        """``params`` with every option of this provider present: the spec default where a value is missing."""
        settings = {}
        for option, spec in dict(SHARED_OPTIONS, **cls.OPTIONS).items():
            value = params.get(option)
            settings[option] = spec.get('default') if value is None else value
        return settings

    @classmethod
    def from_params(cls, params):
        raise NotImplementedError

    def find_zone(self, name):
        """The zone that holds ``name`` (longest match), or raise ProviderError."""
        raise NotImplementedError

    def read_rrsets(self, zone, names, rtypes):
        """``{name: {rtype: RRset}}`` for every name in ``names``: an RRset (maybe empty) per type of ``rtypes``
        (every type found at the name when None), and the CNAME under 'CNAME' where the name has one.

        At most one read request for the zone where the backend allows it.
        """
        raise NotImplementedError

    def apply_rrsets(self, zone, changes):
        """Apply ``changes`` (RRsetChange objects with ``changed`` true) to ``zone`` in one write.

        The write must fail with ConflictError, not overwrite, when the RRsets
        changed since they were read (a concurrent edit), and must not leave a partial change.
        """
        raise NotImplementedError

    def read(self, zone, names):
        """``{name: TxtRRset}`` for every name in ``names`` (an empty TxtRRset where there is nothing)."""
        return txt_view(self.read_rrsets(zone, names, ('TXT',)), names)

    def apply(self, zone, changes):
        """Apply ``changes`` (NameChange objects, TXT RRset changes with their own remove/add) in one write."""
        self.apply_rrsets(zone, changes)

    def close(self):
        """Release connections; called once at the end of a module run."""

    def api_report(self):
        """The requests made to the provider's API (``Retrier.report``), or None for a provider without one."""
        return None

    def api_warnings(self):
        """Warnings about the API's quota for the module to show."""
        return []


class ZoneListingProvider(Provider):
    """An API that lists its zones (name -> id): Route 53, Cloudflare.

    Zones are listed once per run; every request goes through one Retrier,
    so throttling is handled, and counted, in one place. A subclass says
    how to list zones (``list_zones``), which failures are worth another
    attempt (``classify``) and what a failure means (``failure``).
    """

    OPTIONS = dict(RETRY_OPTIONS, **BUDGET_OPTIONS)
    # The API's documented quota per account or token, ``(requests, seconds, burst)`` (see RequestBudget),
    # the default of the ``api_budget`` option.
    BUDGET = None
    # What the zones seen are, for messages: 'zone visible to this API token'.
    ZONE_KIND = 'zone'
    # What to check when a zone is not among them.
    ZONE_HINT = ''

    def __init__(self, retrier):
        self.retrier = retrier
        self._zones = None      # {zone name: zone id}

    @classmethod
    def retrier_from(cls, settings):
        """The run's one Retrier, pacing at the ``api_budget`` (validated here, before any request)."""
        return Retrier.from_params(settings, budget=budget_from(settings.get('api_budget'), cls.BUDGET))

    def api_report(self):
        return self.retrier.report()

    def api_warnings(self):
        budget = self.retrier.budget
        report = self.retrier.report()
        if budget is None or report['quota_wait_seconds'] < 0.05:
            return []
        return ['waited %.1f s for the %s API quota (%s); made %s requests'
                % (report['quota_wait_seconds'], self.NAME, budget.describe(), '{0:,}'.format(report['requests']))]

    def list_zones(self):
        """Every zone the credentials see, as ``(name, id)`` pairs."""
        raise NotImplementedError

    def classify(self, exc):
        """Raise Retryable when ``exc`` is worth another attempt; return otherwise."""
        raise NotImplementedError

    def failure(self, exc, what):
        """The ProviderError (or ConflictError) that says what ``exc`` means for ``what``, or None to let it through."""
        raise NotImplementedError

    def call(self, request, what, kind='other'):
        """``request()`` through the Retrier, counted as ``kind`` (zones, read, write, other); SDK failures become
        errors that say what to check."""
        what = '%s %s' % (self.NAME, what)
        try:
            return self.retrier.call(request, self.classify, what, kind)
        except ProviderError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            error = self.failure(exc, what)
            if error is None:
                raise
            raise error

    def zones(self):
        if self._zones is None:
            self._zones = dict((dns_name(name), zone_id) for name, zone_id in self.list_zones())
        return self._zones

    def _unknown(self, what):
        seen = sorted(self.zones())
        listed = ', '.join(seen[:5]) + (', ...' if len(seen) > 5 else '') if seen else 'none'
        return ProviderError('%s: no %s %s (zones seen: %s)%s' % (self.NAME, self.ZONE_KIND, what, listed, self.ZONE_HINT))

    def zone_id(self, zone):
        zone_id = self.zones().get(zone)
        if zone_id is None:
            raise self._unknown('is named %s' % zone)
        return zone_id

    def find_zone(self, name):
        zones = self.zones()
        for candidate in parent_names(name):
            if candidate in zones:
                return candidate
        raise self._unknown('holds %s' % name)
