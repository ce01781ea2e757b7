"""Tests of the Route53 lab: moto's server, and the fault-injecting counting proxy.

They also pin what moto (5.x) really does with CREATE/DELETE changes that
real Route53 would reject, where the two differ (see the README), and how
the proxy's strict mode answers those changes as real Route53 does.
"""

import http.client
import http.server
import random
import threading
import time

import botocore.config
import pytest
from botocore.exceptions import ClientError

from . import route53 as lab_route53
from .route53 import (KNOWN_FAULTS, OPERATIONS, FaultProxy, MotoServer, classify,
                      route53_client)

ZONE = 'example.test'
NAME = f'_mta-sts.{ZONE}.'
POLICY_A = '"v=STSv1; id=a;"'
POLICY_B = '"v=STSv1; id=b;"'
NO_RETRIES = botocore.config.Config(retries={'total_max_attempts': 1, 'mode': 'standard'})


@pytest.fixture(scope='module')
def moto():
    with MotoServer() as server:
        yield server


@pytest.fixture
def proxy(moto):
    moto.reset()
    with FaultProxy(moto.endpoint_url) as running:
        yield running


@pytest.fixture
def client(proxy):
    return route53_client(proxy.endpoint_url, NO_RETRIES)


@pytest.fixture
def zone(moto, proxy):
    """A zone made directly at moto: the proxy's counts start at zero."""
    return moto.create_zone(ZONE)


def _change(client, zone, action, values, ttl=300, name=NAME):
    return client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={'Changes': [
        _rr(action, values, ttl, name)]})


def _rr(action, values, ttl=300, name=NAME):
    return {'Action': action, 'ResourceRecordSet': {
        'Name': name, 'Type': 'TXT', 'TTL': ttl,
        'ResourceRecords': [{'Value': v} for v in values]}}


def _txt(client, zone):
    """[(name, ttl, [values])] of the zone's TXT RRsets, in moto's order."""
    sets = client.list_resource_record_sets(HostedZoneId=zone)['ResourceRecordSets']
    return [(s['Name'], s['TTL'], [r['Value'] for r in s['ResourceRecords']])
            for s in sets if s['Type'] == 'TXT']


def _error(excinfo):
    response = excinfo.value.response
    return response['Error']['Code'], response['ResponseMetadata']['HTTPStatusCode']


# -- request classification --------------------------------------------------

@pytest.mark.parametrize('method,path,operation', [
    ('GET', '/2013-04-01/hostedzone', 'ListHostedZones'),
    ('GET', '/2013-04-01/hostedzone?maxitems=100', 'ListHostedZones'),
    ('POST', '/2013-04-01/hostedzone', 'CreateHostedZone'),
    ('GET', '/2013-04-01/hostedzonesbyname?dnsname=example.test', 'ListHostedZonesByName'),
    ('GET', '/2013-04-01/hostedzone/Z123', 'GetHostedZone'),
    ('GET', '/2013-04-01/hostedzone/Z123/rrset?name=a.&type=TXT', 'ListResourceRecordSets'),
    ('POST', '/2013-04-01/hostedzone/Z123/rrset/', 'ChangeResourceRecordSets'),
    ('POST', '/2013-04-01/hostedzone/Z123/rrset', 'ChangeResourceRecordSets'),
    ('GET', '/2013-04-01/change/C2682N5HXP0BZ4', 'GetChange'),
    ('DELETE', '/2013-04-01/hostedzone/Z123', 'other'),
    ('GET', '/2013-04-01/hostedzonecount', 'other'),
    ('POST', '/moto-api/reset', 'other'),
    ('GET', '/', 'other'),
])
def test_classify(method, path, operation):
    assert classify(method, path) == operation


# -- moto --------------------------------------------------------------------

def test_moto_server_answers_and_resets(moto):
    assert moto.endpoint_url == f'http://127.0.0.1:{moto.port}'
    assert moto.is_running()
    assert moto.startup_seconds < 10
    direct = moto.client()
    public = moto.create_zone('public.test')
    private = moto.create_zone('private.test', private=True)
    zones = {z['Id']: z for z in direct.list_hosted_zones()['HostedZones']}
    assert zones[public]['Name'] == 'public.test.'
    assert zones[public]['Config']['PrivateZone'] is False
    assert zones[private]['Config']['PrivateZone'] is True
    moto.reset()
    assert direct.list_hosted_zones()['HostedZones'] == []


def test_refuses_non_loopback_addresses(moto):
    with pytest.raises(ValueError):
        MotoServer(address='0.0.0.0')
    with pytest.raises(ValueError):
        FaultProxy('http://192.0.2.1:5000')
    with pytest.raises(ValueError):
        FaultProxy(moto.endpoint_url, listen_address='0.0.0.0')


# -- proxying and counting ---------------------------------------------------

def test_txt_lifecycle_through_proxy_is_counted(client, proxy):
    zone = client.create_hosted_zone(Name=ZONE, CallerReference='lifecycle')['HostedZone']['Id']
    _change(client, zone, 'CREATE', [POLICY_A])
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A])]
    _change(client, zone, 'UPSERT', [POLICY_B], ttl=600)
    assert _txt(client, zone) == [(NAME, 600, [POLICY_B])]
    _change(client, zone, 'DELETE', [POLICY_B], ttl=600)
    assert _txt(client, zone) == []
    assert proxy.counts() == dict.fromkeys(OPERATIONS, 0) | {
        'CreateHostedZone': 1, 'ChangeResourceRecordSets': 3, 'ListResourceRecordSets': 3}
    assert proxy.writes() == 4
    assert proxy.faults() == dict.fromkeys(OPERATIONS, 0)
    # boto3 kept its one connection to the proxy open (keep-alive).
    assert proxy.connections_accepted == 1


def test_counts_each_operation(client, proxy, zone):
    change = _change(client, zone, 'UPSERT', [POLICY_A])
    client.get_change(Id=change['ChangeInfo']['Id'])
    client.list_hosted_zones()
    client.list_hosted_zones_by_name(DNSName=ZONE)
    client.get_hosted_zone(Id=zone)
    client.list_resource_record_sets(HostedZoneId=zone, StartRecordName=NAME,
                                     StartRecordType='TXT', MaxItems='1')
    assert proxy.counts() == dict.fromkeys(OPERATIONS, 1) | {'CreateHostedZone': 0, 'other': 0}
    assert proxy.writes() == 1
    _change(client, zone, 'DELETE', [POLICY_A])
    client.delete_hosted_zone(Id=zone)
    assert proxy.counts()['other'] == 1
    assert proxy.counts()['ChangeResourceRecordSets'] == 2
    proxy.reset_counts()
    assert proxy.counts() == dict.fromkeys(OPERATIONS, 0)
    assert proxy.writes() == 0


def test_moto_errors_pass_through_and_count(client, proxy):
    with pytest.raises(ClientError) as excinfo:
        client.get_hosted_zone(Id='NOSUCHZONE')
    assert _error(excinfo) == ('NoSuchHostedZone', 404)
    assert proxy.counts()['GetHostedZone'] == 1   # it reached moto
    assert proxy.faults()['GetHostedZone'] == 0


def test_counts_are_thread_safe(moto, proxy, zone):
    def work():
        own = route53_client(proxy.endpoint_url, NO_RETRIES)
        for _request in range(20):
            own.get_hosted_zone(Id=zone)

    threads = [threading.Thread(target=work) for _thread in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert proxy.counts()['GetHostedZone'] == 100


def test_stop_with_idle_keepalive_connection_is_quick(moto):
    proxy = FaultProxy(moto.endpoint_url).start()
    route53_client(proxy.endpoint_url, NO_RETRIES).list_hosted_zones()
    began = time.monotonic()
    proxy.stop()
    assert time.monotonic() - began < 1


class _EchoUpstream(http.server.BaseHTTPRequestHandler):
    """Records the request it gets; answers with fixed headers and body."""
    protocol_version = 'HTTP/1.1'
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        self.seen.append((self.command, self.path, self.headers.items(), body))
        answer = b'<Answer>moto</Answer>'
        self.send_response_only(418, 'Teapot Reason')
        self.send_header('X-Custom', 'one')
        self.send_header('X-Custom', 'two')
        self.send_header('Content-Length', str(len(answer)))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_forwards_request_and_answer_unchanged():
    upstream = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _EchoUpstream)
    threading.Thread(target=upstream.serve_forever, kwargs={'poll_interval': 0.05},
                     daemon=True).start()
    try:
        with FaultProxy(f'http://127.0.0.1:{upstream.server_address[1]}') as proxy:
            conn = http.client.HTTPConnection('127.0.0.1', proxy.listen_port, timeout=5)
            path = '/2013-04-01/hostedzone/Z1/rrset/?a=1&b=%2F'
            headers = {'Host': 'route53.amazonaws.com', 'Authorization': 'AWS4-HMAC-SHA256 x',
                       'X-Amz-Date': '20260101T000000Z', 'Content-Type': 'text/xml'}
            for _round in range(2):   # the second request rides the same connection
                conn.request('POST', path, body=b'<ChangeBatch/>', headers=headers)
                resp = conn.getresponse()
                assert resp.read() == b'<Answer>moto</Answer>'
                assert (resp.status, resp.reason) == (418, 'Teapot Reason')
                assert resp.headers.get_all('X-Custom') == ['one', 'two']
                assert resp.headers['Connection'] is None   # hop-by-hop: not passed on
            conn.close()
            assert proxy.connections_accepted == 1
            assert proxy.counts()['ChangeResourceRecordSets'] == 2
    finally:
        upstream.shutdown()
        upstream.server_close()
    method, got_path, got_headers, body = _EchoUpstream.seen[-1]
    assert (method, got_path, body) == ('POST', path, b'<ChangeBatch/>')
    sent = dict(headers, **{'Content-Length': '14'})
    assert {k: v for k, v in got_headers if k != 'Accept-Encoding'} == sent


# -- fault injection ---------------------------------------------------------

def test_throttling_does_not_reach_moto(client, proxy, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    rule = proxy.inject('Throttling', count=1, operations=['ChangeResourceRecordSets'])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'UPSERT', [POLICY_B])
    response = excinfo.value.response
    assert _error(excinfo) == ('Throttling', 400)
    assert response['Error'] == {'Type': 'Sender', 'Code': 'Throttling',
                                 'Message': 'Rate exceeded'}
    assert response['ResponseMetadata']['RequestId'] == \
        response['ResponseMetadata']['HTTPHeaders']['x-amzn-requestid']
    # botocore's model names a ThrottlingException shape, but Route53 says
    # 'Throttling': it arrives as a plain ClientError, not that class.
    assert not isinstance(excinfo.value, client.exceptions.ThrottlingException)
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A])]   # the change was not applied
    assert proxy.counts()['ChangeResourceRecordSets'] == 1
    assert proxy.faults()['ChangeResourceRecordSets'] == 1
    assert proxy.writes() == 1
    assert (rule.seen, rule.fired) == (1, 1)
    # count=1 is used up: the retry goes through.
    _change(client, zone, 'UPSERT', [POLICY_B])
    assert _txt(client, zone) == [(NAME, 300, [POLICY_B])]


def test_prior_request_not_complete(client, proxy, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    proxy.inject('PriorRequestNotComplete', count=1)
    with pytest.raises(client.exceptions.PriorRequestNotComplete) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_A])
    assert _error(excinfo) == ('PriorRequestNotComplete', 400)
    assert excinfo.value.response['Error']['Message'] == (
        'The request was rejected because Route 53 was still processing a prior request.')
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A])]
    assert proxy.counts()['ChangeResourceRecordSets'] == 1


@pytest.mark.parametrize('code', sorted(KNOWN_FAULTS))
def test_known_fault_codes_and_statuses(client, proxy, code):
    proxy.inject(code, operations='ListHostedZones')
    with pytest.raises(ClientError) as excinfo:
        client.list_hosted_zones()
    assert _error(excinfo) == (code, KNOWN_FAULTS[code][0])
    client.list_hosted_zones_by_name()   # other operations unaffected
    assert proxy.faults()['ListHostedZones'] == 1
    assert proxy.counts()['ListHostedZones'] == 0


def test_custom_code_status_and_message(client, proxy):
    proxy.inject('InternalFailure', status=500, message='boom & <bust>')
    with pytest.raises(ClientError) as excinfo:
        client.list_hosted_zones()
    assert _error(excinfo) == ('InternalFailure', 500)
    assert excinfo.value.response['Error']['Message'] == 'boom & <bust>'
    assert excinfo.value.response['Error']['Type'] == 'Receiver'


def test_every_third_matching_request(client, proxy, zone):
    rule = proxy.inject(every=3, operations=['ListResourceRecordSets'])
    outcomes = []
    for _round in range(9):
        client.get_hosted_zone(Id=zone)   # not matching: never faulted, not seen
        try:
            client.list_resource_record_sets(HostedZoneId=zone)
            outcomes.append('ok')
        except ClientError as exc:
            assert exc.response['Error']['Code'] == 'Throttling'
            outcomes.append('fault')
    assert outcomes == ['ok', 'ok', 'fault'] * 3
    assert (rule.seen, rule.fired) == (9, 3)
    assert proxy.counts()['ListResourceRecordSets'] == 6
    assert proxy.faults()['ListResourceRecordSets'] == 3
    assert proxy.counts()['GetHostedZone'] == 9


def _pattern(client, proxy, seed, ratio=0.4, requests=30):
    proxy.clear_faults()
    proxy.inject('ServiceUnavailable', ratio=ratio, seed=seed)
    outcomes = []
    for _request in range(requests):
        try:
            client.list_hosted_zones()
            outcomes.append(False)
        except ClientError:
            outcomes.append(True)
    return outcomes


def test_ratio_is_reproducible_with_seed(client, proxy):
    first = _pattern(client, proxy, seed=7)
    assert _pattern(client, proxy, seed=7) == first
    rng = random.Random(7)
    assert first == [rng.random() < 0.4 for _draw in range(30)]
    assert 0 < sum(first) < 30
    assert _pattern(client, proxy, seed=8) != first


def test_rules_apply_in_order_and_clear(client, proxy):
    proxy.inject('PriorRequestNotComplete', count=1)
    proxy.inject('Throttling', count=2)
    codes = []
    for _request in range(4):
        try:
            client.list_hosted_zones()
            codes.append('ok')
        except ClientError as exc:
            codes.append(exc.response['Error']['Code'])
    assert codes == ['PriorRequestNotComplete', 'Throttling', 'Throttling', 'ok']
    proxy.inject()   # every request, no end
    with pytest.raises(ClientError):
        client.list_hosted_zones()
    proxy.clear_faults()
    client.list_hosted_zones()


@pytest.mark.parametrize('kwargs', [
    {'operations': ['ChangeResourceRecordSet']},   # typo
    {'every': 2, 'ratio': 0.5},
    {'every': 0},
    {'ratio': 1.5},
    {'count': -1},
    {'status': 200},
])
def test_inject_rejects_bad_arguments(proxy, kwargs):
    with pytest.raises(ValueError):
        proxy.inject(**kwargs)


# -- what moto does with conflicting changes ---------------------------------
# Real Route53 answers InvalidChangeBatch (400) when a CREATE names an RRset
# that exists, or a DELETE does not match the current RRset exactly (name,
# type, TTL, values), and applies a batch all or nothing.  moto 5.x checks a
# DELETE against the zone's *history* of CREATE/UPSERT changes instead of
# its current RRsets, and a CREATE only against identical earlier CREATEs.
# These tests pin moto's behaviour; a moto upgrade that changes it fails
# here first.

def test_moto_create_of_identical_existing_rrset_fails(client, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'CREATE', [POLICY_A])
    assert _error(excinfo) == ('InvalidChangeBatch', 400)
    assert 'but it already exists' in excinfo.value.response['Error']['Message']
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A])]


def test_moto_create_of_existing_name_with_other_values_duplicates(client, zone):
    # Real Route53: InvalidChangeBatch "... but it already exists".
    _change(client, zone, 'CREATE', [POLICY_A])
    _change(client, zone, 'CREATE', [POLICY_B])
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A]), (NAME, 300, [POLICY_B])]


def test_moto_delete_with_values_never_set_fails_invalid_input(client, proxy, zone):
    # Real Route53: InvalidChangeBatch "... but the values provided do not
    # match the current values".  moto: InvalidInput, with a misleading text.
    _change(client, zone, 'CREATE', [POLICY_A])
    for values, ttl in (([POLICY_B], 300), ([POLICY_A], 60), ([POLICY_A, POLICY_B], 300)):
        with pytest.raises(ClientError) as excinfo:
            _change(client, zone, 'DELETE', values, ttl=ttl)
        assert _error(excinfo) == ('InvalidInput', 400)
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A])]
    assert proxy.counts()['ChangeResourceRecordSets'] == 4   # they did reach moto


def test_moto_delete_compares_values_in_order(client, zone):
    _change(client, zone, 'CREATE', [POLICY_A, POLICY_B])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_B, POLICY_A])
    assert _error(excinfo) == ('InvalidInput', 400)
    _change(client, zone, 'DELETE', [POLICY_A, POLICY_B])
    assert _txt(client, zone) == []


def test_moto_delete_with_stale_values_deletes_current_rrset(client, zone):
    # Real Route53 rejects this (values do not match the current ones); moto
    # accepts it because POLICY_A was set once, and deletes POLICY_B.
    _change(client, zone, 'CREATE', [POLICY_A])
    _change(client, zone, 'UPSERT', [POLICY_B])
    _change(client, zone, 'DELETE', [POLICY_A])
    assert _txt(client, zone) == []


def test_moto_delete_of_rrset_already_deleted_succeeds(client, zone):
    # Real Route53: InvalidChangeBatch "... but it was not found".
    _change(client, zone, 'CREATE', [POLICY_A])
    _change(client, zone, 'DELETE', [POLICY_A])
    _change(client, zone, 'DELETE', [POLICY_A])
    assert _txt(client, zone) == []


def test_moto_rejected_delete_rejects_whole_batch(client, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    other = f'other.{ZONE}.'
    with pytest.raises(ClientError) as excinfo:
        client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={'Changes': [
            _rr('UPSERT', [POLICY_B], name=other), _rr('DELETE', [POLICY_B])]})
    assert _error(excinfo) == ('InvalidInput', 400)
    assert _txt(client, zone) == [(NAME, 300, [POLICY_A])]


# -- strict mode: Route53's own answers to conflicting changes ---------------

@pytest.fixture
def strict(proxy):
    proxy.strict_changes = True
    return proxy


def _batch(client, zone, *changes):
    return client.change_resource_record_sets(HostedZoneId=zone,
                                              ChangeBatch={'Changes': list(changes)})


def _rejected(excinfo):
    """The messages of an InvalidChangeBatch answer (botocore's parse of it)."""
    response = excinfo.value.response
    assert _error(excinfo) == ('InvalidChangeBatch', 400)
    assert response['Error']['Type'] == 'Sender'
    assert response['ResponseMetadata']['RequestId'] == \
        response['ResponseMetadata']['HTTPHeaders']['x-amzn-requestid']
    message = response['Error']['Message']
    assert message.startswith('[') and message.endswith(']')
    return message[1:-1].split(', Tried')


def _not_found(name=NAME, rtype='TXT'):
    return f"Tried to delete resource record set [name='{name}', type='{rtype}'] but it was not found"


def _mismatch(name=NAME, rtype='TXT'):
    return (f"Tried to delete resource record set [name='{name}', type='{rtype}'] but the values "
            "provided do not match the current values")


def _exists(name=NAME, rtype='TXT'):
    return f"Tried to create resource record set [name='{name}', type='{rtype}'] but it already exists"


def test_strict_mode_is_off_by_default_and_switchable(moto, proxy):
    assert proxy.strict_changes is False
    proxy.strict_changes = 1
    assert proxy.strict_changes is True
    assert FaultProxy(moto.endpoint_url, strict_changes=True).strict_changes is True


@pytest.mark.parametrize('values,ttl', [([POLICY_A], 300), ([POLICY_B], 60)],
                         ids=['stale-values', 'other-ttl'])
def test_strict_stale_delete_is_invalid_change_batch(moto, client, strict, zone, values, ttl):
    _change(client, zone, 'CREATE', [POLICY_A])
    _change(moto.client(), zone, 'UPSERT', [POLICY_B])   # a concurrent edit, past the proxy
    strict.reset_counts()
    policy_c = '"v=STSv1; id=c;"'
    with pytest.raises(client.exceptions.InvalidChangeBatch) as excinfo:
        _batch(client, zone, _rr('DELETE', values, ttl), _rr('CREATE', [policy_c]))
    # Route53 goes on after a failing change: the CREATE then finds the
    # RRset that the DELETE did not remove.
    assert excinfo.value.response['Error']['Message'] == f'[{_mismatch()}, {_exists()}]'
    assert _txt(moto.client(), zone) == [(NAME, 300, [POLICY_B])]
    assert strict.rejected() == dict.fromkeys(OPERATIONS, 0) | {'ChangeResourceRecordSets': 1}
    # Nothing reached moto; the snapshot read is not a client request.
    assert strict.counts() == dict.fromkeys(OPERATIONS, 0)
    assert strict.faults() == dict.fromkeys(OPERATIONS, 0)


def test_strict_create_of_existing_rrset_is_invalid_change_batch(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'CREATE', [POLICY_B])   # moto alone: a second RRset
    assert _rejected(excinfo) == [_exists()]
    assert _txt(moto.client(), zone) == [(NAME, 300, [POLICY_A])]
    assert strict.counts()['ChangeResourceRecordSets'] == 1


def test_strict_delete_of_missing_rrset_is_invalid_change_batch(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    _change(client, zone, 'DELETE', [POLICY_A])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_A])   # moto alone: accepted
    assert _rejected(excinfo) == [_not_found()]
    # The same RRset twice in one batch: the second DELETE finds nothing.
    _change(client, zone, 'CREATE', [POLICY_A])
    with pytest.raises(ClientError) as excinfo:
        _batch(client, zone, _rr('DELETE', [POLICY_A]), _rr('DELETE', [POLICY_A]))
    assert _rejected(excinfo) == [_not_found()]
    assert _txt(moto.client(), zone) == [(NAME, 300, [POLICY_A])]
    assert strict.rejected()['ChangeResourceRecordSets'] == 2
    assert strict.counts()['ChangeResourceRecordSets'] == 3


def test_strict_delete_and_create_of_current_rrset_is_applied(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A, POLICY_B])
    (name, ttl, values), = _txt(client, zone)   # read, then replace exactly what was read
    policy_c = '"v=STSv1; id=c;"'
    _batch(client, zone, _rr('DELETE', values, ttl, name.rstrip('.')),   # dot optional
           _rr('CREATE', [policy_c], ttl=600))
    assert _txt(moto.client(), zone) == [(NAME, 600, [policy_c])]
    assert strict.rejected()['ChangeResourceRecordSets'] == 0
    assert strict.counts()['ChangeResourceRecordSets'] == 2
    assert strict.counts()['ListResourceRecordSets'] == 1   # the client's own read only


def test_strict_batch_with_failing_middle_change_applies_nothing(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    first, third = f'first.{ZONE}.', f'third.{ZONE}.'
    with pytest.raises(ClientError) as excinfo:
        _batch(client, zone, _rr('UPSERT', [POLICY_A], name=first),
               _rr('DELETE', [POLICY_B]), _rr('CREATE', [POLICY_A], name=third))
    assert _rejected(excinfo) == [_mismatch()]
    assert _txt(moto.client(), zone) == [(NAME, 300, [POLICY_A])]
    # A CREATE after a DELETE of the same RRset in one batch is fine.
    _batch(client, zone, _rr('DELETE', [POLICY_A]), _rr('CREATE', [POLICY_B]),
           _rr('UPSERT', [POLICY_A], name=first))
    assert _txt(moto.client(), zone) == [(NAME, 300, [POLICY_B]), (first, 300, [POLICY_A])]


def test_strict_set_identifier_must_match(moto, client, strict, zone):
    def weighted(action, identifier, weight=10):
        return {'Action': action, 'ResourceRecordSet': {
            'Name': f'w.{ZONE}.', 'Type': 'A', 'SetIdentifier': identifier, 'Weight': weight,
            'TTL': 60, 'ResourceRecords': [{'Value': '192.0.2.1'}]}}

    _batch(client, zone, weighted('CREATE', 'one'))
    with pytest.raises(ClientError) as excinfo:
        _batch(client, zone, weighted('DELETE', 'two'))
    assert excinfo.value.response['Error']['Message'] == (
        f"[Tried to delete resource record set [name='w.{ZONE}.', type='A', "
        "set-identifier='two'] but it was not found]")
    with pytest.raises(ClientError) as excinfo:
        _batch(client, zone, weighted('DELETE', 'one', weight=20))   # routing fields count
    assert excinfo.value.response['Error']['Message'] == (
        f"[Tried to delete resource record set [name='w.{ZONE}.', type='A', "
        "set-identifier='one'] but the values provided do not match the current values]")
    _batch(client, zone, weighted('DELETE', 'one'))
    assert strict.rejected()['ChangeResourceRecordSets'] == 2


def test_strict_snapshot_reads_every_page(moto, client, strict, zone, monkeypatch):
    monkeypatch.setattr(lab_route53, 'SNAPSHOT_PAGE', 2)
    names = [f'n{i}.{ZONE}.' for i in range(5)]
    _batch(client, zone, *(_rr('CREATE', [POLICY_A], name=name) for name in names))
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'CREATE', [POLICY_B], name=names[-1])
    assert _rejected(excinfo) == [_exists(names[-1])]
    assert strict.counts()['ListResourceRecordSets'] == 0


def test_strict_mode_leaves_other_errors_to_moto(client, strict):
    with pytest.raises(ClientError) as excinfo:
        _change(client, '/hostedzone/NOSUCHZONE', 'CREATE', [POLICY_A])
    assert _error(excinfo) == ('NoSuchHostedZone', 404)
    assert strict.counts()['ChangeResourceRecordSets'] == 1
    assert strict.rejected()['ChangeResourceRecordSets'] == 0


def test_strict_injected_faults_come_first(client, strict, zone):
    strict.inject('Throttling', count=1, operations=['ChangeResourceRecordSets'])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_A])
    assert _error(excinfo) == ('Throttling', 400)
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_A])
    assert _rejected(excinfo) == [_not_found()]
    assert strict.faults()['ChangeResourceRecordSets'] == 1
    assert strict.rejected()['ChangeResourceRecordSets'] == 1
    strict.reset_counts()
    assert strict.rejected() == dict.fromkeys(OPERATIONS, 0)


def test_strict_concurrent_replacements_one_wins(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    barrier = threading.Barrier(4)
    outcomes = []

    def replace(index):
        own = route53_client(strict.endpoint_url, NO_RETRIES)
        barrier.wait()
        try:
            _batch(own, zone, _rr('DELETE', [POLICY_A]), _rr('CREATE', [f'"v=STSv1; id={index};"']))
            outcomes.append('applied')
        except ClientError as exc:
            outcomes.append(exc.response['Error']['Code'])

    threads = [threading.Thread(target=replace, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ['InvalidChangeBatch'] * 3 + ['applied']
    assert len(_txt(moto.client(), zone)) == 1


def test_strict_mode_off_keeps_moto_behaviour(client, proxy, zone):
    proxy.strict_changes = True
    proxy.strict_changes = False
    _change(client, zone, 'CREATE', [POLICY_A])
    _change(client, zone, 'CREATE', [POLICY_B])   # moto: a second RRset
    _change(client, zone, 'DELETE', [POLICY_A])   # moto: deletes both
    _change(client, zone, 'DELETE', [POLICY_A])   # moto: accepted though gone
    assert _txt(client, zone) == []
    assert proxy.rejected() == dict.fromkeys(OPERATIONS, 0)
    assert proxy.counts()['ChangeResourceRecordSets'] == 4


# Batches that pass the strict check (real Route53 would apply them) but
# that moto 5.2.5 still rejects; strict mode forwards them unchanged.

def test_moto_strict_delete_with_values_in_other_order_fails_invalid_input(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A, POLICY_B])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_B, POLICY_A])
    assert _error(excinfo) == ('InvalidInput', 400)   # moto's answer, not the proxy's
    assert strict.rejected()['ChangeResourceRecordSets'] == 0
    assert strict.counts()['ChangeResourceRecordSets'] == 2


def test_moto_strict_delete_with_name_in_other_case_fails_invalid_input(moto, client, strict, zone):
    _change(client, zone, 'CREATE', [POLICY_A])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'DELETE', [POLICY_A], name=NAME.upper())
    assert _error(excinfo) == ('InvalidInput', 400)
    assert strict.rejected()['ChangeResourceRecordSets'] == 0


def test_moto_strict_create_of_values_created_before_fails_already_exists(moto, client, strict, zone):
    # a -> b -> a by DELETE+CREATE: moto finds the identical earlier CREATE in
    # its history and an RRset of that name, and says "already exists".
    _change(client, zone, 'CREATE', [POLICY_A])
    _batch(client, zone, _rr('DELETE', [POLICY_A]), _rr('CREATE', [POLICY_B]))
    with pytest.raises(ClientError) as excinfo:
        _batch(client, zone, _rr('DELETE', [POLICY_B]), _rr('CREATE', [POLICY_A]))
    assert _error(excinfo) == ('InvalidChangeBatch', 400)
    assert strict.rejected()['ChangeResourceRecordSets'] == 0   # moto's answer
    assert _txt(moto.client(), zone) == [(NAME, 300, [POLICY_B])]
    # The same after a plain DELETE when any RRset sorts after the name
    # (moto looks from the name onwards, not at the name).
    policy_c = '"v=STSv1; id=c;"'
    _change(client, zone, 'CREATE', [POLICY_A], name=f'zzz.{ZONE}.')
    _change(client, zone, 'DELETE', [POLICY_B])
    _change(client, zone, 'CREATE', [policy_c])   # never created before: fine
    _change(client, zone, 'DELETE', [policy_c])
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'CREATE', [policy_c])
    assert _error(excinfo) == ('InvalidChangeBatch', 400)
    assert strict.rejected()['ChangeResourceRecordSets'] == 0


# -- the request-rate quota (token bucket) -------------------------------------

class SteppedClock:
    """A clock the test moves by hand: the bucket's decisions do not depend on the machine's speed."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _list_outcome(client, zone):
    try:
        client.list_resource_record_sets(HostedZoneId=zone)
        return 'ok'
    except ClientError as exc:
        return exc.response['Error']['Code']


def test_rate_limit_serves_the_burst_then_throttles_as_route53_does(moto, client, proxy, zone):
    clock = SteppedClock()
    proxy.rate_limit(rate=2, burst=3, clock=clock)
    assert [_list_outcome(client, zone) for _request in range(4)] == ['ok'] * 3 + ['Throttling']
    with pytest.raises(ClientError) as excinfo:
        _change(client, zone, 'CREATE', [POLICY_A])
    response = excinfo.value.response
    assert _error(excinfo) == ('Throttling', 400)
    assert response['Error'] == {'Type': 'Sender', 'Code': 'Throttling', 'Message': 'Rate exceeded'}
    assert response['ResponseMetadata']['RequestId'] == response['ResponseMetadata']['HTTPHeaders']['x-amzn-requestid']
    assert _txt(moto.client(), zone) == []                            # the change never reached moto
    assert proxy.throttled() == dict.fromkeys(OPERATIONS, 0) | {'ListResourceRecordSets': 1,
                                                                'ChangeResourceRecordSets': 1}
    assert proxy.counts()['ListResourceRecordSets'] == 3 and proxy.writes() == 0
    assert sum(proxy.faults().values()) == 0
    # The bucket refills at 2 per second: half a second gives one token, never more than the burst.
    clock.now += 0.5
    assert [_list_outcome(client, zone) for _request in range(2)] == ['ok', 'Throttling']
    clock.now += 100
    assert [_list_outcome(client, zone) for _request in range(4)] == ['ok'] * 3 + ['Throttling']
    proxy.reset_counts()
    assert proxy.throttled() == dict.fromkeys(OPERATIONS, 0)
    proxy.clear_rate_limit()
    assert [_list_outcome(client, zone) for _request in range(5)] == ['ok'] * 5


def test_rate_limit_comes_before_injected_faults_and_a_throttled_request_takes_no_token(client, proxy, zone):
    clock = SteppedClock()
    proxy.rate_limit(rate=1, burst=1, clock=clock)
    rule = proxy.inject('ServiceUnavailable', count=1)
    assert _list_outcome(client, zone) == 'ServiceUnavailable'        # took the one token, then the fault
    assert _list_outcome(client, zone) == 'Throttling'                # the bucket is empty: the fault never sees it
    assert (rule.seen, rule.fired) == (1, 1)
    clock.now += 1
    assert _list_outcome(client, zone) == 'ok'


def test_rate_limit_in_real_time_holds_the_rate_across_threads(moto, proxy, zone):
    proxy.rate_limit(rate=5, burst=5)
    outcomes = []

    def hammer():
        own = route53_client(proxy.endpoint_url, NO_RETRIES)
        for _request in range(6):
            outcomes.append(_list_outcome(own, zone))

    began = time.monotonic()
    threads = [threading.Thread(target=hammer) for _thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    served = outcomes.count('ok')
    assert set(outcomes) == {'ok', 'Throttling'} and len(outcomes) == 24
    assert served <= 5 + 5 * elapsed + 1          # the burst plus what the rate refilled, no more
    assert proxy.throttled()['ListResourceRecordSets'] == 24 - served
    assert proxy.counts()['ListResourceRecordSets'] == served


@pytest.mark.parametrize('kwargs', [{'rate': 0}, {'burst': 0}, {'burst': 1.5}, {'burst': True}])
def test_rate_limit_rejects_bad_arguments(proxy, kwargs):
    with pytest.raises(ValueError):
        proxy.rate_limit(**dict({'rate': 5, 'burst': 10}, **kwargs))
