# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Cloudflare DNS through the official ``cloudflare`` SDK (API v4).

Cloudflare keeps each TXT value as a record of its own, with an id and a TTL.
A change to a zone is sent as one batch request, which Cloudflare applies all
or nothing, so a run that dies midway never leaves two policy records.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import env_fallback

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider, parent_names
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import RETRY_OPTIONS, Retrier, Retryable
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset, parse_presentation, split_value, to_presentation

try:
    import cloudflare
    HAS_CLOUDFLARE = True
    CLOUDFLARE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_CLOUDFLARE = False
    CLOUDFLARE_IMPORT_ERROR = exc

ZONE_PAGE_SIZE = 50
RECORD_PAGE_SIZE = 5000
BATCH_LIMIT = 200  # items per batch request on Cloudflare's smallest plan


class CloudflareProvider(Provider):
    OPTIONS = dict(RETRY_OPTIONS, **{
        'api_token': {'type': 'str', 'no_log': True, 'fallback': (env_fallback, ['CLOUDFLARE_API_TOKEN'])},
        'base_url': {'type': 'str', 'fallback': (env_fallback, ['CLOUDFLARE_BASE_URL'])},
    })

    def __init__(self, client, retrier):
        self.client = client
        self.retrier = retrier
        self._zones = None      # {zone name: zone id}
        self._ids = {}          # {(name, value tuple): record id}

    @classmethod
    def from_params(cls, params):
        if not HAS_CLOUDFLARE:
            raise ProviderError('the cloudflare provider needs the cloudflare Python library: %s' % CLOUDFLARE_IMPORT_ERROR)
        if not params.get('api_token'):
            raise ProviderError('api_token: required by provider cloudflare (or set CLOUDFLARE_API_TOKEN)')
        # The SDK retries on its own by default; ours is the only retry layer.
        client = cloudflare.Cloudflare(api_token=params['api_token'], base_url=params.get('base_url') or None,
                                       max_retries=0, timeout=params.get('timeout') or 10.0)
        return cls(client, Retrier.from_params(params))

    def close(self):
        self.client.close()

    def _call(self, request, what):
        what = 'cloudflare ' + what
        try:
            return self.retrier.call(request, _classify, what)
        except cloudflare.APIStatusError as exc:
            raise ProviderError('%s: HTTP %s: %s' % (what, exc.status_code, _errors(exc)))
        except cloudflare.APIError as exc:
            raise ProviderError('%s: %s' % (what, exc))

    def _pages(self, first, what):
        """Every item of a listing, asking for a next page only when there can be one."""
        page = self._call(first, what)
        items = list(page.result or [])
        while _has_next_page(page):
            page = self._call(page.get_next_page, what)
            items.extend(page.result or [])
        return items

    def _load_zones(self):
        if self._zones is None:
            zones = self._pages(lambda: self.client.zones.list(per_page=ZONE_PAGE_SIZE), 'list zones')
            self._zones = dict((zone.name.rstrip('.').lower(), zone.id) for zone in zones)
        return self._zones

    def _zone_id(self, zone):
        zone_id = self._load_zones().get(zone)
        if zone_id is None:
            raise ProviderError('cloudflare: no zone %s is visible to this API token' % zone)
        return zone_id

    def find_zone(self, name):
        zones = self._load_zones()
        for candidate in parent_names(name):
            if candidate in zones:
                return candidate
        raise ProviderError('cloudflare: no zone visible to this API token holds %s' % name)

    def read(self, zone, names):
        zone_id = self._zone_id(zone)
        found = dict((name, TxtRRset(name)) for name in names)
        if len(names) == 1:
            def listing():
                return self.client.dns.records.list(zone_id=zone_id, name={'exact': names[0]}, per_page=RECORD_PAGE_SIZE)
        else:
            def listing():
                return self.client.dns.records.list(zone_id=zone_id, per_page=RECORD_PAGE_SIZE)
        for record in self._pages(listing, 'list records of %s' % zone):
            rrset = found.get(record.name.rstrip('.').lower())
            if rrset is None:
                continue
            if record.type == 'CNAME':
                rrset.cname = (record.content or '').rstrip('.').lower()
            elif record.type == 'TXT':
                value = _value(record.content or '')
                self._ids[(rrset.name, value)] = record.id
                rrset.values.append(value)
                rrset.value_ttls[value] = record.ttl
                rrset.ttl = record.ttl
        return found

    def apply(self, zone, changes):
        zone_id = self._zone_id(zone)
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
        old_ids = [self._ids[(change.name, value)] for value in change.remove]
        new_records = [{'type': 'TXT', 'name': change.name, 'content': to_presentation(value), 'ttl': change.ttl}
                       for value in change.add]
        # Overwrite in place where a value is replaced, so the record id (and its history) stays.
        return {
            'puts': [dict(record, id=record_id) for record_id, record in zip(old_ids, new_records)],
            'deletes': [{'id': record_id} for record_id in old_ids[len(new_records):]],
            'posts': new_records[len(old_ids):],
        }

    def _send_batch(self, zone, zone_id, batch):
        if any(batch.values()):
            self._call(lambda: self.client.dns.records.batch(zone_id=zone_id, **batch), 'batch change of %s' % zone)


def _has_next_page(page):
    # The SDK would ask for pages until one comes back empty: one request more than needed.
    info = page.result_info
    total_pages = getattr(info, 'total_pages', None)
    if total_pages is not None:
        return (info.page or 1) < total_pages
    return bool(page.result) and info is not None and bool(info.per_page) and len(page.result) >= info.per_page


def _value(content):
    """Cloudflare returns TXT content as quoted character-strings, or as plain text when it was given so."""
    if content.startswith('"'):
        try:
            return parse_presentation(content)
        except ValueError:
            pass
    return split_value(content)


def _errors(exc):
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get('errors') or []
    text = '; '.join('%s %s' % (error.get('code', ''), error.get('message', '')) for error in errors if isinstance(error, dict))
    return text or exc.message


def _classify(exc):
    if isinstance(exc, cloudflare.RateLimitError):
        raise Retryable('HTTP 429 rate limited', retry_after=_retry_after(exc))
    if isinstance(exc, cloudflare.InternalServerError):
        raise Retryable('HTTP %s' % exc.status_code, retry_after=_retry_after(exc))
    if isinstance(exc, cloudflare.APIConnectionError):
        raise Retryable(str(exc) or type(exc).__name__)


def _retry_after(exc):
    try:
        return float(exc.response.headers.get('retry-after'))
    except (TypeError, ValueError, AttributeError):
        return None
