# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``zonefile`` provider: RFC 1035 zone files on disk, one per zone.

The text work is in ``_zonefile``; this class finds the file, reads it once,
refuses to write when the file changed since then, and replaces it
atomically so a server or a git checkout never sees half a file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._files import replace_file
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider, parent_names
from ansible_collections.mailsec.mta_sts.plugins.module_utils._zonefile import ZoneFileError, apply_changes, parse, read_rrsets

TEMPLATE = '{zone}'


class ZonefileProvider(Provider):
    """``zone_file`` is one file, or a path with ``{zone}`` standing for the zone name."""

    NAME = 'zonefile'

    OPTIONS = {'zone_file': {'type': 'path'}}
    REQUIRED = ('zone_file',)

    def __init__(self, zone_file, today=None):
        self.zone_file = zone_file
        self.templated = TEMPLATE in zone_file
        self.today = today
        self._loaded = {}

    @classmethod
    def from_params(cls, params):
        zone_file = cls.settings(params)['zone_file']
        if not zone_file:
            raise ProviderError('zone_file: required by provider zonefile')
        return cls(zone_file)

    def _path(self, zone):
        return self.zone_file.replace(TEMPLATE, zone) if self.templated else self.zone_file

    def _load(self, path, origin):
        data = _read_bytes(path)
        try:
            return data, parse(data.decode('utf-8', 'surrogateescape'), origin)
        except ZoneFileError as exc:
            hint = ' (start the file with $ORIGIN, or put {zone} in zone_file)' if exc.no_origin else ''
            raise ProviderError('zone file %s: %s%s' % (path, exc, hint))

    def find_zone(self, name):
        if not self.templated:
            if not self._loaded:
                data, zone = self._load(self.zone_file, None)
                self._loaded[zone.name] = (self.zone_file, data, zone)
            zone = next(iter(self._loaded))
            if name != zone and not name.endswith('.' + zone):
                raise ProviderError('%s is not in zone %s (zone file %s); check zone_file, or put {zone} in it for '
                                    'several zones' % (name, zone, self.zone_file))
            return zone
        for candidate in parent_names(name):
            if candidate in self._loaded:
                return candidate
            path = self._path(candidate)
            if not os.path.isfile(path):
                continue
            data, zone = self._load(path, candidate)
            if zone.name == candidate:
                self._loaded[candidate] = (path, data, zone)
                return candidate
        raise ProviderError('no zone file for %s: no %s file whose SOA is its zone; check zone_file, or give zone'
                            % (name, self.zone_file))

    def _get(self, zone):
        if zone not in self._loaded:
            path = self._path(zone)
            data, parsed = self._load(path, zone if self.templated else None)
            if parsed.name != zone:
                raise ProviderError('zone file %s holds zone %s, not %s' % (path, parsed.name, zone))
            self._loaded[zone] = (path, data, parsed)
        return self._loaded[zone]

    def read_rrsets(self, zone, names, rtypes):
        return read_rrsets(self._get(zone)[2], names, rtypes)

    def apply_rrsets(self, zone, changes):
        path, data, parsed = self._get(zone)
        if _read_bytes(path) != data:
            raise ConflictError('zone file %s changed since it was read; nothing was written, re-run' % path)
        try:
            text = apply_changes(parsed, changes, self.today or datetime.date.today())
        except ZoneFileError as exc:
            raise ProviderError('zone file %s: %s' % (path, exc))
        del self._loaded[zone]
        if text != parsed.text:
            _replace(path, text.encode('utf-8', 'surrogateescape'))


def _read_bytes(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ProviderError('cannot read zone file %s: %s' % (path, exc.strerror or exc))


def _replace(path, data):
    """Write ``data`` over ``path`` in one step, keeping its mode (and owner when root)."""
    try:
        replace_file(path, data)
    except OSError as exc:
        raise ProviderError('cannot write zone file %s: %s' % (path, exc.strerror or exc))
