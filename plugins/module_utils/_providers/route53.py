# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Amazon Route 53 through boto3."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider, parent_names
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import RETRY_OPTIONS, Retrier, Retryable
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset, parse_presentation, to_presentation

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

RETRYABLE_CODES = frozenset([
    'Throttling', 'ThrottlingException', 'PriorRequestNotComplete', 'RequestLimitExceeded',
    'ServiceUnavailable', 'InternalError', 'InternalFailure',
])
PAGE_SIZE = 300


def _zone_name(name):
    # Route 53 writes names with a final dot and '*' as \052.
    return name.replace('\\052', '*').rstrip('.').lower()


class Route53Provider(Provider):
    OPTIONS = dict(RETRY_OPTIONS, **{
        'aws_access_key_id': {'type': 'str', 'aliases': ['access_key']},
        'aws_secret_access_key': {'type': 'str', 'no_log': True, 'aliases': ['secret_key']},
        'aws_session_token': {'type': 'str', 'no_log': True, 'aliases': ['session_token']},
        'profile': {'type': 'str'},
        'region': {'type': 'str'},
        'endpoint_url': {'type': 'str'},
        'hosted_zone_id': {'type': 'str'},
        'private_zone': {'type': 'bool', 'default': False},
        'wait': {'type': 'bool', 'default': False},
        'wait_timeout': {'type': 'int', 'default': 300},
    })

    def __init__(self, client, retrier, hosted_zone_id=None, private_zone=False, wait=False, wait_timeout=300):
        self.client = client
        self.retrier = retrier
        self.hosted_zone_id = hosted_zone_id
        self.private_zone = private_zone
        self.wait = wait
        self.wait_timeout = wait_timeout
        self._zones = None          # {zone name: hosted zone id}
        self._raw = {}              # {(name, value tuple): the Value string Route 53 returned}

    @classmethod
    def from_params(cls, params):
        if not HAS_BOTO3:
            raise ProviderError('the route53 provider needs the boto3 Python library: %s' % BOTO3_IMPORT_ERROR)
        timeout = params.get('timeout') or 10.0
        try:
            session = boto3.session.Session(
                aws_access_key_id=params.get('aws_access_key_id'),
                aws_secret_access_key=params.get('aws_secret_access_key'),
                aws_session_token=params.get('aws_session_token'),
                profile_name=params.get('profile'),
                region_name=params.get('region') or 'us-east-1',
            )
            # botocore retries on its own by default; ours is the only retry layer.
            config = botocore.config.Config(retries={'total_max_attempts': 1, 'mode': 'standard'},
                                            connect_timeout=timeout, read_timeout=timeout)
            client = session.client('route53', endpoint_url=params.get('endpoint_url'), config=config)
        except botocore.exceptions.BotoCoreError as exc:
            raise ProviderError('route53: %s' % exc)
        return cls(client, Retrier.from_params(params), params.get('hosted_zone_id'), params.get('private_zone', False),
                   params.get('wait', False), params.get('wait_timeout', 300))

    def _call(self, operation, what, **kwargs):
        method = getattr(self.client, operation)
        what = ('route53 %s %s' % (operation, what)).rstrip()
        try:
            return self.retrier.call(lambda: method(**kwargs), _classify, what)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == 'InvalidChangeBatch':
                raise ProviderError('%s: the TXT records changed since they were read, nothing was applied; re-run (%s)'
                                    % (what, _message(exc)))
            raise ProviderError('%s: %s' % (what, _message(exc)))
        except botocore.exceptions.NoCredentialsError:
            raise ProviderError('%s: no AWS credentials: set aws_access_key_id and aws_secret_access_key, profile, '
                                'or the usual AWS environment variables' % what)
        except botocore.exceptions.BotoCoreError as exc:
            raise ProviderError('%s: %s' % (what, exc))

    def _load_zones(self):
        if self._zones is not None:
            return self._zones
        zones = {}
        if self.hosted_zone_id:
            zone = self._call('get_hosted_zone', self.hosted_zone_id, Id=self.hosted_zone_id)['HostedZone']
            zones[_zone_name(zone['Name'])] = zone['Id']
        else:
            kwargs = {'MaxItems': '100'}
            while True:
                page = self._call('list_hosted_zones', '', **kwargs)
                for zone in page['HostedZones']:
                    if bool(zone.get('Config', {}).get('PrivateZone')) == self.private_zone:
                        zones[_zone_name(zone['Name'])] = zone['Id']
                if not page.get('IsTruncated'):
                    break
                kwargs['Marker'] = page['NextMarker']
        self._zones = zones
        return zones

    def _zone_id(self, zone):
        zone_id = self._load_zones().get(zone)
        if zone_id is None:
            kind = 'private' if self.private_zone else 'public'
            raise ProviderError('route53: no %s hosted zone %s%s' % (
                kind, zone, ' with id %s' % self.hosted_zone_id if self.hosted_zone_id else ''))
        return zone_id

    def find_zone(self, name):
        zones = self._load_zones()
        for candidate in parent_names(name):
            if candidate in zones:
                return candidate
        raise ProviderError('route53: no %s hosted zone holds %s' % ('private' if self.private_zone else 'public', name))

    def read(self, zone, names):
        zone_id = self._zone_id(zone)
        found = dict((name, TxtRRset(name)) for name in names)
        kwargs = {'HostedZoneId': zone_id, 'MaxItems': str(PAGE_SIZE)}
        if len(names) == 1:
            # Records are listed in name order, so one name's RRsets come first when we start there.
            kwargs['StartRecordName'] = names[0]
        while True:
            page = self._call('list_resource_record_sets', zone, **kwargs)
            past = False
            for record_set in page['ResourceRecordSets']:
                name = _zone_name(record_set['Name'])
                if len(names) == 1 and name != names[0]:
                    past = True
                    break
                if name in found and 'SetIdentifier' not in record_set:
                    self._collect(found[name], record_set)
            if past or not page.get('IsTruncated'):
                break
            kwargs['StartRecordName'] = page['NextRecordName']
            kwargs['StartRecordType'] = page['NextRecordType']
            if 'NextRecordIdentifier' in page:
                kwargs['StartRecordIdentifier'] = page['NextRecordIdentifier']
        return found

    def _collect(self, found, record_set):
        values = [record['Value'] for record in record_set.get('ResourceRecords', [])]
        if record_set['Type'] == 'CNAME' and values:
            found.cname = values[0].rstrip('.').lower()
        elif record_set['Type'] == 'TXT':
            found.ttl = record_set.get('TTL')
            for raw in values:
                try:
                    value = parse_presentation(raw, octal=True)
                except ValueError as exc:
                    raise ProviderError('route53: TXT value at %s cannot be read: %s' % (found.name, exc))
                self._raw[(found.name, value)] = raw
                found.values.append(value)

    def _record_set(self, name, ttl, values):
        # Values read from Route 53 go back exactly as it wrote them, so a DELETE matches.
        records = [{'Value': self._raw.get((name, value)) or to_presentation(value)} for value in values]
        return {'Name': name + '.', 'Type': 'TXT', 'TTL': ttl, 'ResourceRecords': records}

    def apply(self, zone, changes):
        batch = []
        for change in changes:
            # DELETE of the exact RRset read, then CREATE: if anyone changed it since, Route 53
            # rejects the whole batch instead of us overwriting their change.
            if change.before:
                batch.append({'Action': 'DELETE', 'ResourceRecordSet': self._record_set(change.name, change.before_ttl, change.before)})
            if change.after:
                batch.append({'Action': 'CREATE', 'ResourceRecordSet': self._record_set(change.name, change.ttl, change.after)})
        answer = self._call('change_resource_record_sets', zone, HostedZoneId=self._zone_id(zone),
                            ChangeBatch={'Comment': 'mailsec.mta_sts', 'Changes': batch})
        if self.wait:
            self._wait_insync(zone, answer['ChangeInfo']['Id'])

    def _wait_insync(self, zone, change_id):
        deadline = time.monotonic() + self.wait_timeout
        while self._call('get_change', change_id, Id=change_id)['ChangeInfo']['Status'] != 'INSYNC':
            if time.monotonic() > deadline:
                raise ProviderError('route53: zone %s: change %s applied but not INSYNC within %d s' % (zone, change_id, self.wait_timeout))
            time.sleep(5)


def _code(exc):
    return exc.response.get('Error', {}).get('Code', '')


def _message(exc):
    error = exc.response.get('Error', {})
    return '%s: %s' % (error.get('Code', 'error'), error.get('Message', ''))


def _classify(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', 0)
        if _code(exc) in RETRYABLE_CODES or status >= 500 or status == 429:
            raise Retryable(_message(exc))
        return
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                        botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        raise Retryable(str(exc))
