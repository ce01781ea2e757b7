# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cloudflare DNS through the official ``cloudflare`` SDK (API v4).

Cloudflare keeps each TXT value as a record of its own, with an id and a TTL.
A change to a zone is sent as one batch request, which Cloudflare applies all
or nothing, so a run that dies midway never leaves two policy records.
TLSA is written as a ``data`` object (usage, selector, matching_type,
certificate) and read from the ``content`` the API derives from it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import ZoneListingProvider, dns_name, stale_records
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retryable
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import collect, empty_rrsets
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtText

try:
    import cloudflare
    CLOUDFLARE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    CLOUDFLARE_IMPORT_ERROR = exc

ZONE_PAGE_SIZE = 50
RECORD_PAGE_SIZE = 5000
BATCH_LIMIT = 200  # items per batch request on Cloudflare's smallest plan
# Types the API takes as a structured ``data`` object instead of ``content`` (its fields in presentation order).
DATA_FIELDS = {'TLSA': ('usage', 'selector', 'matching_type', 'certificate')}


class CloudflareProvider(ZoneListingProvider):
    NAME = 'cloudflare'
    LIBRARY = ('cloudflare', CLOUDFLARE_IMPORT_ERROR)
    # Cloudflare returns TXT content as quoted character-strings, or as plain text when it was given so.
    TXT = TxtText(plain=True)
    OPTIONS = dict(ZoneListingProvider.OPTIONS, **{
        'api_token': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['CLOUDFLARE_API_TOKEN'])},
        'base_url': {'type': 'str', 'fallback': (env_fallback, ['CLOUDFLARE_BASE_URL'])},
    })
    REQUIRED = ('api_token',)
    # 1,200 requests per 5 minutes per user; past it, every request is refused for 5 minutes.
    BUDGET = (1200, 300.0, None)
    ZONE_KIND = 'zone visible to this API token'
    ZONE_HINT = '; check that the token has Zone:Read and DNS:Edit on that zone'

    def __init__(self, client, retrier):
        super(CloudflareProvider, self).__init__(retrier)
        self.client = client
        self._ids = {}          # {(name, type, value): record id}

    @classmethod
    def from_params(cls, params):
        cls.check_library()
        settings = cls.settings(params)
        if not settings['api_token']:
            raise ProviderError('api_token: required by provider cloudflare (or set CLOUDFLARE_API_TOKEN)')
        # The SDK retries on its own by default; ours is the only retry layer.
        client = cloudflare.Cloudflare(api_token=settings['api_token'], base_url=settings['base_url'] or None,
                                       max_retries=0, timeout=settings['timeout'])
        return cls(client, cls.retrier_from(settings))

    def close(self):
        self.client.close()

    def _pages(self, first, what, kind='read'):
        """Every item of a listing, asking for a next page only when there can be one."""
        page = self.call(first, what, kind)
        items = list(page.result or [])
        while _has_next_page(page):
            page = self.call(page.get_next_page, what, kind)
            items.extend(page.result or [])
        return items

    def list_zones(self):
        zones = self._pages(lambda: self.client.zones.list(per_page=ZONE_PAGE_SIZE), 'list zones', 'zones')
        return [(zone.name, zone.id) for zone in zones]

    def read_rrsets(self, zone, names, rtypes):
        zone_id = self.zone_id(zone)
        found = empty_rrsets(names, rtypes)
        # One listing for every name: the API's type filter takes one type, and a CNAME at a name must be seen
        # whatever the types wanted, so the listing narrows by name only (one page unless the names share
        # their part of the zone with thousands of records).
        name_filter = _name_filter(zone, names)

        def listing():
            return self.client.dns.records.list(zone_id=zone_id, per_page=RECORD_PAGE_SIZE, **name_filter)
        for record in self._pages(listing, 'list records of %s' % zone):
            name = dns_name(record.name)
            if name not in found:
                continue
            try:
                value = self.decode(record.type, _record_text(record))
            except ValueError as exc:
                raise ProviderError('cloudflare: %s record %s at %s cannot be read: %s' % (record.type, record.id, name, exc))
            self._ids[(name, record.type, value)] = record.id
            # The SDK's models give some types' TTL as a float.
            collect(found, name, record.type, rtypes, None if record.ttl is None else int(record.ttl), value)
        return found

    def apply_rrsets(self, zone, changes):
        zone_id = self.zone_id(zone)
        batch = {'deletes': [], 'puts': [], 'posts': []}
        for change in changes:
            items = self._batch_items(change)
            # A batch holds at most BATCH_LIMIT items; a name's items always travel together, so every
            # batch is a whole change for the names it carries.
            if sum(len(batch[key]) for key in batch) + sum(len(items[key]) for key in items) > BATCH_LIMIT:
                self._send_batch(zone, zone_id, batch)
                batch = {'deletes': [], 'puts': [], 'posts': []}
            for key in batch:
                batch[key].extend(items[key])
        self._send_batch(zone, zone_id, batch)

    def _batch_items(self, change):
        old_ids = [self._ids[(change.name, change.rtype, value)] for value in change.remove]
        new_records = [dict(self._record_data(change.rtype, value), type=change.rtype, name=change.name, ttl=change.ttl)
                       for value in change.add]
        # Overwrite in place where a value is replaced, so the record id (and its history) stays.
        return {
            'puts': [dict(record, id=record_id) for record_id, record in zip(old_ids, new_records)],
            'deletes': [{'id': record_id} for record_id in old_ids[len(new_records):]],
            'posts': new_records[len(old_ids):],
        }

    def _record_data(self, rtype, value):
        """The fields that carry ``value`` in a record sent to the API."""
        if rtype in DATA_FIELDS:
            # The API refuses TLSA as content: it takes the fields, and derives the content itself.
            return {'data': dict(zip(DATA_FIELDS[rtype], value))}
        # Cloudflare writes names without the final dot.
        return {'content': value if rtype == 'CNAME' else self.encode(rtype, value)}

    def _send_batch(self, zone, zone_id, batch):
        if any(batch.values()):
            self.call(lambda: self.client.dns.records.batch(zone_id=zone_id, **batch), 'batch change of %s' % zone, 'write')

    def classify(self, exc):
        if isinstance(exc, cloudflare.RateLimitError):
            raise Retryable('HTTP 429 rate limited', retry_after=_retry_after(exc), throttled=True)
        if isinstance(exc, cloudflare.InternalServerError):
            raise Retryable('HTTP %s' % exc.status_code, retry_after=_retry_after(exc))
        if isinstance(exc, cloudflare.APITimeoutError):
            raise Retryable('no answer from %s within %s s' % (self.client.base_url, self.client.timeout))
        if isinstance(exc, cloudflare.APIConnectionError):
            raise Retryable('cannot connect to %s: %s' % (self.client.base_url, _cause(exc)))

    def failure(self, exc, what):
        if isinstance(exc, (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError)):
            return ProviderError('%s: HTTP %s: %s: the API token was refused; check api_token (or CLOUDFLARE_API_TOKEN), '
                                 'and that the token has Zone:Read and DNS:Edit on the zone' % (what, exc.status_code, _errors(exc)))
        if isinstance(exc, cloudflare.NotFoundError) and exc.request.url.path.endswith('/batch'):
            # A record id we read is gone: someone deleted or replaced it since; the batch was refused whole.
            return stale_records(what, ' (HTTP 404: %s)' % _errors(exc))
        if isinstance(exc, cloudflare.APIStatusError):
            return ProviderError('%s: HTTP %s: %s' % (what, exc.status_code, _errors(exc)))
        if isinstance(exc, cloudflare.APIError):
            return ProviderError('%s: %s' % (what, exc))
        return None


def _name_filter(zone, names):
    """The list call's name filter: the name itself for one name; for several, their closest common parent
    below the zone (a domain's names, when the domain is not the zone's apex); none otherwise."""
    if len(names) == 1:
        return {'name': {'exact': names[0]}}
    parent = '.'.join(reversed(os.path.commonprefix([name.split('.')[::-1] for name in names])))
    if parent in names or not parent.endswith('.' + zone):
        return {}
    return {'name': {'endswith': '.' + parent}}


def _record_text(record):
    """A record's value as presentation text: its content, or for a type written through ``data`` the
    fields of that object when the content is missing (the API documents the content as derived)."""
    if record.content or record.type not in DATA_FIELDS:
        return record.content or ''
    data = getattr(record, 'data', None)
    if isinstance(data, dict):
        fields = [data.get(name) for name in DATA_FIELDS[record.type]]
    else:
        fields = [getattr(data, name, None) for name in DATA_FIELDS[record.type]]
    if None in fields:
        return ''
    # The SDK's models give the numbers as floats.
    return ' '.join(['%d' % number for number in fields[:-1]] + [fields[-1]])


def _has_next_page(page):
    # The SDK would ask for pages until one comes back empty: one request more than needed.
    info = page.result_info
    total_pages = getattr(info, 'total_pages', None)
    if total_pages is not None:
        return (info.page or 1) < total_pages
    return bool(page.result) and info is not None and bool(info.per_page) and len(page.result) >= info.per_page


def _errors(exc):
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get('errors') or []
    text = '; '.join('%s %s' % (error.get('code', ''), error.get('message', '')) for error in errors if isinstance(error, dict))
    return text or exc.message


def _cause(exc):
    """The transport's reason (connection refused, name not known) under the SDK's "Connection error."."""
    return str(exc.__cause__ or exc)


def _retry_after(exc):
    try:
        return float(exc.response.headers.get('retry-after'))
    except (TypeError, ValueError, AttributeError):
        return None
