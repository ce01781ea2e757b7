"""Route53Provider against botocore's Stubber: the requests it sends and what it makes of the answers."""

import socket

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.route53 import Route53Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset, plan_name

ZONES = {'HostedZones': [
    {'Id': '/hostedzone/ZEX', 'Name': 'example.com.', 'CallerReference': 'a', 'Config': {'PrivateZone': False}},
    {'Id': '/hostedzone/ZSUB', 'Name': 'Sub.Example.com.', 'CallerReference': 'b', 'Config': {'PrivateZone': False}},
    {'Id': '/hostedzone/ZPRIV', 'Name': 'example.com.', 'CallerReference': 'c', 'Config': {'PrivateZone': True}},
], 'IsTruncated': False, 'MaxItems': '100', 'Marker': ''}


@pytest.fixture
def client():
    return boto3.session.Session(aws_access_key_id='AKID', aws_secret_access_key='secret',
                                 region_name='us-east-1').client('route53')


@pytest.fixture
def stubber(client):
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def provider(client, sleeps):
    return Route53Provider(client, Retrier(sleep=sleeps.append, jitter=lambda: 0.0))


def _txt(name, ttl, *values):
    return {'Name': name + '.', 'Type': 'TXT', 'TTL': ttl, 'ResourceRecords': [{'Value': value} for value in values]}


def _page(sets, truncated=False, **more):
    return dict({'ResourceRecordSets': sets, 'IsTruncated': truncated, 'MaxItems': '300'}, **more)


def _sts(text):
    return text.startswith('v=STSv1')


def test_zones_are_listed_once_and_the_longest_public_match_wins(provider, stubber):
    stubber.add_response('list_hosted_zones', ZONES, {'MaxItems': '100'})
    assert provider.find_zone('_mta-sts.mail.sub.example.com') == 'sub.example.com'
    assert provider.find_zone('_mta-sts.example.com') == 'example.com'
    assert provider.zone_id('example.com') == '/hostedzone/ZEX'


def test_zone_listing_follows_markers(provider, stubber):
    first = dict(ZONES, HostedZones=ZONES['HostedZones'][:1], IsTruncated=True, NextMarker='m2')
    stubber.add_response('list_hosted_zones', first, {'MaxItems': '100'})
    stubber.add_response('list_hosted_zones', dict(ZONES, HostedZones=ZONES['HostedZones'][1:2]), {'MaxItems': '100', 'Marker': 'm2'})
    assert sorted(provider.zones()) == ['example.com', 'sub.example.com']


def test_unknown_zone_names_the_zones_seen_and_what_to_check(provider, stubber):
    stubber.add_response('list_hosted_zones', ZONES, {'MaxItems': '100'})
    with pytest.raises(ProviderError) as error:
        provider.find_zone('_mta-sts.other.org')
    assert str(error.value) == (
        'route53: no public hosted zone holds _mta-sts.other.org (zones seen: example.com, sub.example.com); check that '
        'the credentials belong to the account that has the zone, private_zone, or give hosted_zone_id')


def test_read_one_name_starts_there_and_stops_past_it(provider, stubber):
    provider._zones = {'example.com': 'ZEX'}
    stubber.add_response('list_resource_record_sets', _page([
        _txt('_mta-sts.example.com', 300, '"v=STSv1; id=a;"', '"caf\\303\\251" "x"'),
        _txt('_mta-sts.zz.example.com', 300, '"later"'),
    ], truncated=True, NextRecordName='_mta-sts.zz.example.com', NextRecordType='TXT'),
        {'HostedZoneId': 'ZEX', 'MaxItems': '300', 'StartRecordName': '_mta-sts.example.com'})
    rrset = provider.read('example.com', ['_mta-sts.example.com'])['_mta-sts.example.com']
    # Route 53's three-digit escapes are octal: \303\251 is UTF-8 for e-acute.
    assert rrset.values == [(b'v=STSv1; id=a;',), ('café'.encode(), b'x')]
    assert rrset.ttl == 300


def test_read_several_names_pages_through_the_zone(provider, stubber):
    provider._zones = {'example.com': 'ZEX'}
    stubber.add_response('list_resource_record_sets', _page(
        [_txt('_mta-sts.a.example.com', 60, '"v=STSv1; id=a;"')], truncated=True,
        NextRecordName='_smtp._tls.a.example.com', NextRecordType='CNAME', NextRecordIdentifier='w1'),
        # The listing starts at the first of the names in Route 53's order.
        {'HostedZoneId': 'ZEX', 'MaxItems': '300', 'StartRecordName': '_mta-sts.a.example.com'})
    stubber.add_response('list_resource_record_sets', _page([
        {'Name': '_smtp._tls.a.example.com.', 'Type': 'CNAME', 'TTL': 60, 'ResourceRecords': [{'Value': 'Rpt.Example.NET.'}]},
        dict(_txt('_mta-sts.b.example.com', 60, '"weighted"'), SetIdentifier='w1', Weight=1),
    ]), {'HostedZoneId': 'ZEX', 'MaxItems': '300', 'StartRecordName': '_smtp._tls.a.example.com',
         'StartRecordType': 'CNAME', 'StartRecordIdentifier': 'w1'})
    found = provider.read('example.com', ['_mta-sts.a.example.com', '_smtp._tls.a.example.com', '_mta-sts.b.example.com'])
    assert found['_mta-sts.a.example.com'].values == [(b'v=STSv1; id=a;',)]
    assert found['_smtp._tls.a.example.com'].cname == 'rpt.example.net'
    # Routing-policy record sets are not ours to manage.
    assert found['_mta-sts.b.example.com'].values == []


def _read_then_plan(provider, stubber, wanted, *values):
    provider._zones = {'example.com': 'ZEX'}
    stubber.add_response('list_resource_record_sets', _page([_txt('_mta-sts.example.com', 300, *values)]), None)
    rrset = provider.read('example.com', ['_mta-sts.example.com'])['_mta-sts.example.com']
    return plan_name(rrset, wanted, _sts, lambda a, b: a == b, 3600)


def test_apply_deletes_the_exact_rrset_read_and_creates_the_new_one_in_one_batch(provider, stubber):
    # Written back byte for byte as Route 53 wrote it, not re-encoded, so the DELETE matches.
    change = _read_then_plan(provider, stubber, 'v=STSv1; id=new;\xff', '"v=STSv1; id=old;"', 'unquoted')
    stubber.add_response('change_resource_record_sets', {'ChangeInfo': {'Id': 'C1', 'Status': 'PENDING', 'SubmittedAt': '2026-01-01'}}, {
        'HostedZoneId': 'ZEX', 'ChangeBatch': {'Comment': 'mailsec.mta_sts', 'Changes': [
            {'Action': 'DELETE', 'ResourceRecordSet': _txt('_mta-sts.example.com', 300, '"v=STSv1; id=old;"', 'unquoted')},
            {'Action': 'CREATE', 'ResourceRecordSet': _txt('_mta-sts.example.com', 3600, 'unquoted',
                                                           '"v=STSv1; id=new;\\303\\277"')},
        ]}})
    provider.apply('example.com', [change])


def test_a_stale_delete_is_a_conflict_and_other_batch_errors_are_not(provider, stubber):
    change = _read_then_plan(provider, stubber, 'v=STSv1; id=new;', '"v=STSv1; id=old;"')
    stubber.add_client_error('change_resource_record_sets', 'InvalidChangeBatch', http_status_code=400, service_message=(
        "[Tried to delete resource record set [name='_mta-sts.example.com.', type='TXT'] but the values provided "
        "do not match the current values]"))
    with pytest.raises(ConflictError, match='the TXT records changed since they were read .InvalidChangeBatch'):
        provider.apply('example.com', [change])
    stubber.add_client_error('change_resource_record_sets', 'InvalidChangeBatch', http_status_code=400,
                             service_message='[Invalid Resource Record: FATAL problem: TXTRDATATooLong]')
    with pytest.raises(ProviderError) as error:
        provider.apply('example.com', [change])
    assert not isinstance(error.value, ConflictError)
    assert 'TXTRDATATooLong' in str(error.value)


def test_throttling_is_retried_with_backoff_then_succeeds(provider, stubber, sleeps):
    stubber.add_client_error('list_hosted_zones', 'Throttling', http_status_code=400, service_message='Rate exceeded')
    stubber.add_client_error('list_hosted_zones', 'PriorRequestNotComplete', http_status_code=400)
    stubber.add_response('list_hosted_zones', ZONES, {'MaxItems': '100'})
    assert provider.find_zone('_mta-sts.example.com') == 'example.com'
    assert sleeps == [0.25, 0.5]
    assert provider.retrier.requests == 3


def test_still_throttled_after_the_retries_says_so_and_what_to_raise(provider, stubber):
    provider.retrier.max_retries = 1
    stubber.add_client_error('list_hosted_zones', 'Throttling', http_status_code=400, service_message='Rate exceeded')
    stubber.add_client_error('list_hosted_zones', 'Throttling', http_status_code=400, service_message='Rate exceeded')
    with pytest.raises(ProviderError) as error:
        provider.zones()
    assert str(error.value).startswith('route53 list_hosted_zones: gave up after 2 attempts in ')
    assert str(error.value).endswith('last: Throttling: Rate exceeded; the API is still throttling or failing: re-run later, '
                                     'or raise max_retries or retry_max_seconds')


def test_refused_credentials_are_named_and_not_retried(provider, stubber, sleeps):
    stubber.add_client_error('list_hosted_zones', 'InvalidClientTokenId', http_status_code=403,
                             service_message='The security token included in the request is invalid.')
    with pytest.raises(ProviderError) as error:
        provider.zones()
    assert str(error.value) == (
        'route53 list_hosted_zones: AWS refused the credentials (InvalidClientTokenId: The security token included in '
        'the request is invalid.); check aws_access_key_id, aws_secret_access_key, aws_session_token or profile, and '
        'that they may use Route 53')
    assert sleeps == []


def test_hosted_zone_id_is_used_instead_of_listing(provider, stubber):
    provider.hosted_zone_id = 'ZGIVEN'
    stubber.add_response('get_hosted_zone', {'HostedZone': {'Id': '/hostedzone/ZGIVEN', 'Name': 'example.com.', 'CallerReference': 'x'},
                                             'DelegationSet': {'NameServers': ['ns1.example.net']}}, {'Id': 'ZGIVEN'})
    assert provider.zone_id(provider.find_zone('_mta-sts.example.com')) == '/hostedzone/ZGIVEN'


def test_private_zone_finds_the_private_one():
    provider = Route53Provider(None, Retrier(), private_zone=True)
    provider.list_zones = lambda: [(zone['Name'], zone['Id']) for zone in ZONES['HostedZones'] if zone['Config']['PrivateZone']]
    assert provider.zone_id(provider.find_zone('_mta-sts.example.com')) == '/hostedzone/ZPRIV'
    with pytest.raises(ProviderError, match='no private hosted zone holds _mta-sts.sub.example.org'):
        provider.find_zone('_mta-sts.sub.example.org')


def test_an_endpoint_with_nothing_listening_is_a_refused_connection():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    provider = Route53Provider.from_params({'endpoint_url': 'http://127.0.0.1:%d' % port, 'aws_access_key_id': 'AKID',
                                            'aws_secret_access_key': 'secret', 'max_retries': 0, 'timeout': 2})
    with pytest.raises(ProviderError) as error:
        provider.zones()
    assert 'gave up after 1 attempts' in str(error.value)
    assert 'last: cannot connect to http://127.0.0.1:%d: ' % port in str(error.value)
    assert 'Connection refused' in str(error.value)
    assert 'secret' not in str(error.value)


def test_an_empty_rrset_plans_a_create_only():
    change = plan_name(TxtRRset('_mta-sts.example.com'), 'v=STSv1; id=a;', _sts, lambda a, b: a == b, 300)
    provider = Route53Provider(None, Retrier())
    assert provider._record_set(change.name, 'TXT', change.ttl, change.after) == _txt('_mta-sts.example.com', 300, '"v=STSv1; id=a;"')
