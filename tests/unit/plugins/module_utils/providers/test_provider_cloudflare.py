"""CloudflareProvider against an httpx mock transport: the SDK's real requests, answered in the API's shapes."""

import json

import httpx
import pytest
from cloudflare import Cloudflare

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.cloudflare import BATCH_LIMIT, CloudflareProvider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset, plan_name

BASE = 'http://cloudflare.invalid/client/v4'
TOKEN = 'token-never-shown-1234'
NOW = '2026-01-01T00:00:00Z'


def _record(record_id, name, content, ttl=300, kind='TXT'):
    return {'id': record_id, 'zone_id': 'Z1', 'zone_name': 'example.com', 'name': name, 'type': kind, 'content': content,
            'proxiable': False, 'proxied': False, 'ttl': ttl, 'settings': {}, 'meta': {}, 'comment': None, 'tags': [],
            'created_on': NOW, 'modified_on': NOW}


def _ok(result, page=1, total_pages=1):
    return {'success': True, 'errors': [], 'messages': [], 'result': result,
            'result_info': {'page': page, 'per_page': 50, 'count': len(result), 'total_count': len(result),
                            'total_pages': total_pages}}


def _error(status, code, message, headers=None):
    return httpx.Response(status, headers=headers, json={'success': False, 'errors': [{'code': code, 'message': message}],
                                                         'messages': [], 'result': None})


class Api:
    """Answers by (method, path); records every request."""

    def __init__(self):
        self.requests = []
        self.answers = {}

    def on(self, method, path, *responses):
        self.answers.setdefault((method, path), []).extend(responses)

    def __call__(self, request):
        self.requests.append(request)
        queue = self.answers.get((request.method, request.url.path), [])
        if not queue:
            return _error(404, 7003, 'no route for %s %s' % (request.method, request.url.path))
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    def bodies(self, method, path):
        return [json.loads(request.content) for request in self.requests if (request.method, request.url.path) == (method, path)]


@pytest.fixture
def api():
    return Api()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def provider(api, sleeps):
    client = Cloudflare(api_token=TOKEN, base_url=BASE, max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(api)))
    provider = CloudflareProvider(client, Retrier(sleep=sleeps.append, jitter=lambda: 0.0))
    yield provider
    provider.close()


ZONES = [{'id': 'Z1', 'name': 'example.com'}, {'id': 'Z2', 'name': 'Sub.Example.com'}]
RECORDS = '/client/v4/zones/Z1/dns_records'
BATCH = RECORDS + '/batch'


def test_zones_are_listed_once_across_pages_and_the_longest_match_wins(provider, api):
    api.on('GET', '/client/v4/zones', _ok(ZONES[:1], 1, 2), _ok(ZONES[1:], 2, 2))
    assert provider.find_zone('_mta-sts.a.sub.example.com') == 'sub.example.com'
    assert provider.find_zone('_mta-sts.example.com') == 'example.com'
    assert provider.zone_id('example.com') == 'Z1'
    # Two pages, and no third request for an empty page.
    assert [request.url.params.get('page') for request in api.requests] == [None, '2']


def test_unknown_zone_names_the_zones_seen_and_the_token_rights(provider, api):
    api.on('GET', '/client/v4/zones', _ok(ZONES))
    with pytest.raises(ProviderError) as error:
        provider.find_zone('_mta-sts.other.org')
    assert str(error.value) == ('cloudflare: no zone visible to this API token holds _mta-sts.other.org (zones seen: '
                                'example.com, sub.example.com); check that the token has Zone:Read and DNS:Edit on that zone')


def test_read_one_name_asks_for_that_name_and_keeps_each_value_ttl(provider, api):
    provider._zones = {'example.com': 'Z1'}
    api.on('GET', RECORDS, _ok([
        _record('r1', '_mta-sts.example.com', '"v=STSv1; id=a;"', ttl=600),
        _record('r2', '_mta-sts.example.com', 'plain note', ttl=300),
    ]))
    rrset = provider.read('example.com', ['_mta-sts.example.com'])['_mta-sts.example.com']
    assert api.requests[0].url.params['name.exact'] == '_mta-sts.example.com'
    assert rrset.values == [(b'v=STSv1; id=a;',), (b'plain note',)]
    # The managed value's own TTL decides whether the TTL changes, not the last record's.
    assert rrset.ttl_of((b'v=STSv1; id=a;',)) == 600
    change = plan_name(rrset, 'v=STSv1; id=a;', lambda text: text.startswith('v=STSv1'), lambda a, b: a == b, 600)
    assert not change.changed and change.before_ttl == 600


def test_read_several_names_lists_the_zone_once(provider, api):
    provider._zones = {'example.com': 'Z1'}
    api.on('GET', RECORDS, _ok([
        _record('r1', '_mta-sts.a.example.com', '"v=STSv1; id=a;"'),
        _record('r2', '_smtp._tls.a.example.com', 'Rpt.Example.NET', kind='CNAME'),
        _record('r3', 'www.example.com', '"not asked"'),
    ]))
    found = provider.read('example.com', ['_mta-sts.a.example.com', '_smtp._tls.a.example.com'])
    assert len(api.requests) == 1 and 'name.exact' not in api.requests[0].url.params
    assert found['_mta-sts.a.example.com'].values == [(b'v=STSv1; id=a;',)]
    assert found['_smtp._tls.a.example.com'].cname == 'rpt.example.net'


def _planned(provider, api, name, wanted, *records):
    provider._zones = {'example.com': 'Z1'}
    api.on('GET', RECORDS, _ok(list(records)))
    rrset = provider.read('example.com', [name])[name]
    return plan_name(rrset, wanted, lambda text: text.startswith('v=STSv1'), lambda a, b: a == b, 3600)


def test_apply_overwrites_in_place_deletes_the_rest_in_one_batch(provider, api):
    change = _planned(provider, api, '_mta-sts.example.com', 'v=STSv1; id=new;',
                      _record('r1', '_mta-sts.example.com', '"v=STSv1; id=old;"'),
                      _record('r2', '_mta-sts.example.com', '"v=STSv1; id=older;"'),
                      _record('r3', '_mta-sts.example.com', '"keep me"'))
    api.on('POST', BATCH, _ok({}))
    provider.apply('example.com', [change])
    assert api.bodies('POST', BATCH) == [{
        'deletes': [{'id': 'r2'}],
        'puts': [{'id': 'r1', 'type': 'TXT', 'name': '_mta-sts.example.com', 'content': '"v=STSv1; id=new;"', 'ttl': 3600}],
        'posts': [],
    }]


def test_batches_split_at_200_items_by_whole_names(provider, api):
    provider._zones = {'example.com': 'Z1'}
    changes = [plan_name(TxtRRset('_mta-sts.d%03d.example.com' % i), 'v=STSv1; id=a;', lambda text: True,
                         lambda a, b: a == b, 300) for i in range(BATCH_LIMIT + 50)]
    api.on('POST', BATCH, _ok({}), _ok({}))
    provider.apply('example.com', changes)
    assert [len(body['posts']) for body in api.bodies('POST', BATCH)] == [BATCH_LIMIT, 50]


def test_a_record_gone_since_the_read_is_a_conflict(provider, api):
    change = _planned(provider, api, '_mta-sts.example.com', 'v=STSv1; id=new;',
                      _record('r1', '_mta-sts.example.com', '"v=STSv1; id=old;"'))
    api.on('POST', BATCH, _error(404, 81044, 'Record does not exist.'))
    with pytest.raises(ConflictError) as error:
        provider.apply('example.com', [change])
    assert str(error.value) == ('cloudflare batch change of example.com: the TXT records changed since they were read '
                                '(HTTP 404: 81044 Record does not exist.); nothing was applied, re-run')


@pytest.mark.parametrize('status', [401, 403])
def test_a_refused_token_says_what_to_check_and_never_shows_it(provider, api, sleeps, status):
    api.on('GET', '/client/v4/zones', _error(status, 9109, 'Invalid access token'))
    with pytest.raises(ProviderError) as error:
        provider.zones()
    assert str(error.value) == (
        'cloudflare list zones: HTTP %d: 9109 Invalid access token: the API token was refused; check api_token (or '
        'CLOUDFLARE_API_TOKEN), and that the token has Zone:Read and DNS:Edit on the zone' % status)
    assert TOKEN not in str(error.value) and sleeps == []


def test_rate_limits_wait_at_least_retry_after_and_5xx_are_retried(provider, api, sleeps):
    api.on('GET', '/client/v4/zones', _error(429, 971, 'Please wait', headers={'Retry-After': '7'}),
           _error(502, 0, 'Bad gateway'), _ok(ZONES))
    assert provider.zone_id('example.com') == 'Z1'
    assert sleeps == [7.0, 0.5]
    assert provider.retrier.requests == 3


def test_connection_refused_and_timeouts_are_told_apart(provider, api, sleeps):
    provider.retrier.max_retries = 0
    api.on('GET', '/client/v4/zones', httpx.ConnectError('[Errno 111] Connection refused'))
    with pytest.raises(ProviderError, match=r'last: cannot connect to http://cloudflare.invalid/client/v4/: '
                                            r'\[Errno 111\] Connection refused;'):
        provider.zones()
    api.on('GET', '/client/v4/zones', httpx.ReadTimeout('timed out'))
    with pytest.raises(ProviderError, match=r'last: no answer from http://cloudflare.invalid/client/v4/ within '):
        provider.zones()


def test_missing_token_is_refused_before_any_request():
    with pytest.raises(ProviderError, match=r'api_token: required by provider cloudflare \(or set CLOUDFLARE_API_TOKEN\)'):
        CloudflareProvider.from_params({'api_token': ''})
