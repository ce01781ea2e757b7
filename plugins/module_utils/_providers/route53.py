# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Amazon Route 53 through boto3."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import re
import time

from ansible_collections.mailsec.mta_sts.plugins.module_utils._aws import (
    BOTO3_IMPORT_ERROR, CLIENT_OPTIONS, CREDENTIAL_CODES, aws_client, classify, error_code, error_message, is_client_error,
    no_credentials,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import ZoneListingProvider, dns_name, stale_records
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import collect, empty_rrsets
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtText

# What Route 53 says when a change meets an RRset other than the one it names: someone changed it since we read.
STALE_CHANGE = re.compile(r'Tried to (delete|create) resource record set .* but (the values provided do not match|'
                          r'it was not found|it already exists)')
PAGE_SIZE = 300
WAIT_TIMEOUT = 300
WAIT_INTERVAL = 5
# What each API operation is, for the request counts of the result's ``api``.
REQUEST_KINDS = {
    'list_hosted_zones': 'zones',
    'get_hosted_zone': 'zones',
    'list_resource_record_sets': 'read',
    'change_resource_record_sets': 'write',
}


def listing_key(name):
    """Where ``name`` comes in a ListResourceRecordSets listing: Route 53 sorts by the name with its labels
    reversed and a final dot (``com.example.www.``), as text, so ``-`` and other characters before ``.`` sort
    a label ahead of its own prefix (``mx-2`` before ``mx``)."""
    return '.'.join(reversed(name.split('.'))) + '.'


def _record_name(name):
    # Route 53 writes '*' as \052.
    return dns_name(name.replace('\\052', '*'))


class Route53Provider(ZoneListingProvider):
    NAME = 'route53'
    LIBRARY = ('boto3', BOTO3_IMPORT_ERROR)
    # Route 53 reads and writes three-digit escapes as octal.
    TXT = TxtText(octal=True)
    OPTIONS = dict(ZoneListingProvider.OPTIONS, **CLIENT_OPTIONS)
    OPTIONS.update({
        'hosted_zone_id': {'type': 'str'},
        'private_zone': {'type': 'bool', 'default': False},
        'wait': {'type': 'bool', 'default': False},
        'wait_timeout': {'type': 'int', 'default': WAIT_TIMEOUT},
    })
    # 10 requests per second per account, with a burst of 50 (5 per second before July 2026).
    BUDGET = (10, 1.0, 50)
    ZONE_HINT = ('; check that the credentials belong to the account that has the zone, private_zone, '
                 'or give hosted_zone_id')

    def __init__(self, client, retrier, hosted_zone_id=None, private_zone=False, wait=False, wait_timeout=WAIT_TIMEOUT):
        super(Route53Provider, self).__init__(retrier)
        self.client = client
        self.hosted_zone_id = hosted_zone_id
        self.private_zone = private_zone
        self.ZONE_KIND = '%s hosted zone' % ('private' if private_zone else 'public')
        self.wait = wait
        self.wait_timeout = wait_timeout
        self._raw = {}              # {(name, type, value): the Value string Route 53 returned}
        self._written = ('TXT',)    # the types of the change being sent, for the message of a stale one

    @classmethod
    def from_params(cls, params):
        cls.check_library()
        settings = cls.settings(params)
        client = aws_client('route53', settings, default_region='us-east-1')
        return cls(client, cls.retrier_from(settings), settings['hosted_zone_id'], settings['private_zone'],
                   settings['wait'], settings['wait_timeout'])

    def _api(self, operation, what='', **kwargs):
        return self.call(functools.partial(getattr(self.client, operation), **kwargs), ('%s %s' % (operation, what)).rstrip(),
                         REQUEST_KINDS.get(operation, 'other'))

    def list_zones(self):
        if self.hosted_zone_id:
            zone = self._api('get_hosted_zone', self.hosted_zone_id, Id=self.hosted_zone_id)['HostedZone']
            return [(zone['Name'], zone['Id'])]
        zones = []
        kwargs = {'MaxItems': '100'}
        while True:
            page = self._api('list_hosted_zones', **kwargs)
            zones.extend((zone['Name'], zone['Id']) for zone in page['HostedZones']
                         if bool(zone.get('Config', {}).get('PrivateZone')) == self.private_zone)
            if not page.get('IsTruncated'):
                return zones
            kwargs['Marker'] = page['NextMarker']

    def read_rrsets(self, zone, names, rtypes):
        zone_id = self.zone_id(zone)
        found = empty_rrsets(names, rtypes)
        # The listing is in Route 53's name order: it starts at the first of the names, skips ahead to the next
        # one wanted when a page ends before it, and stops once past the last. A domain's names, near each
        # other, take one page; names far apart in a big zone, one page each.
        ordered = sorted(names, key=listing_key)
        last = listing_key(ordered[-1])
        start = {'StartRecordName': ordered[0]}
        while True:
            page = self._api('list_resource_record_sets', zone, HostedZoneId=zone_id, MaxItems=str(PAGE_SIZE), **start)
            past = False
            for record_set in page['ResourceRecordSets']:
                name = _record_name(record_set['Name'])
                if listing_key(name) > last:
                    past = True
                    break
                if name in found and 'SetIdentifier' not in record_set:
                    self._collect(found, name, rtypes, record_set)
            if past or not page.get('IsTruncated'):
                break
            following = listing_key(_record_name(page['NextRecordName']))
            ahead = [name for name in ordered if listing_key(name) >= following]
            if not ahead:
                break
            if listing_key(ahead[0]) > following:
                start = {'StartRecordName': ahead[0]}
            else:
                start = {'StartRecordName': page['NextRecordName'], 'StartRecordType': page['NextRecordType']}
                if 'NextRecordIdentifier' in page:
                    start['StartRecordIdentifier'] = page['NextRecordIdentifier']
        return found

    def _collect(self, found, name, rtypes, record_set):
        rtype = record_set['Type']
        for record in record_set.get('ResourceRecords', []):
            raw = record['Value']
            try:
                value = self.decode(rtype, raw)
            except ValueError as exc:
                raise ProviderError('route53: %s value at %s cannot be read: %s' % (rtype, name, exc))
            self._raw[(name, rtype, value)] = raw
            collect(found, name, rtype, rtypes, record_set.get('TTL'), value)

    def _record_set(self, name, rtype, ttl, values):
        # Values read from Route 53 go back exactly as it wrote them, so a DELETE matches.
        records = [{'Value': self._raw.get((name, rtype, value)) or self.encode(rtype, value)} for value in values]
        return {'Name': name + '.', 'Type': rtype, 'TTL': ttl, 'ResourceRecords': records}

    def apply_rrsets(self, zone, changes):
        self._written = [change.rtype for change in changes]
        batch = []
        for change in changes:
            # DELETE of the exact RRset read, then CREATE: if anyone changed it since, Route 53
            # rejects the whole batch instead of us overwriting their change.
            if change.before:
                batch.append({'Action': 'DELETE', 'ResourceRecordSet': self._record_set(change.name, change.rtype, change.before_ttl, change.before)})
        for change in changes:
            # Every DELETE first: a CNAME may only be created once the other RRsets at its name are gone.
            if change.after:
                batch.append({'Action': 'CREATE', 'ResourceRecordSet': self._record_set(change.name, change.rtype, change.ttl, change.after)})
        answer = self._api('change_resource_record_sets', zone, HostedZoneId=self.zone_id(zone),
                           ChangeBatch={'Comment': 'mailsec.mta_sts', 'Changes': batch})
        if self.wait:
            self._wait_insync(zone, answer['ChangeInfo']['Id'])

    def _wait_insync(self, zone, change_id):
        deadline = time.monotonic() + self.wait_timeout
        while self._api('get_change', change_id, Id=change_id)['ChangeInfo']['Status'] != 'INSYNC':
            if time.monotonic() > deadline:
                raise ProviderError('route53: zone %s: change %s applied but not INSYNC within %d s' % (zone, change_id, self.wait_timeout))
            time.sleep(WAIT_INTERVAL)

    def classify(self, exc):
        classify(exc, self.client)

    def failure(self, exc, what):
        if is_client_error(exc):
            code = error_code(exc)
            if code == 'InvalidChangeBatch' and STALE_CHANGE.search(error_message(exc)):
                return stale_records(what, ' (%s)' % error_message(exc), self._written)
            if code in CREDENTIAL_CODES:
                return ProviderError('%s: AWS refused the credentials (%s); check aws_access_key_id, aws_secret_access_key, '
                                     'aws_session_token or profile, and that they may use Route 53' % (what, error_message(exc)))
            return ProviderError('%s: %s' % (what, error_message(exc)))
        return no_credentials(exc, what)
