"""Tests of the Cloudflare API stand-in, driven by the real ``cloudflare`` SDK (5.x).

Raw HTTP is used only where the SDK cannot show something: result_info, a
missing or malformed Authorization header, a plain ``name=`` filter, a
partial PATCH body, a body without a type.
"""

import http.client
import itertools
import json
import socket
import threading

import pytest

cloudflare = pytest.importorskip('cloudflare')
from cloudflare import Cloudflare  # noqa: E402  pylint: disable=wrong-import-position
from cloudflare.types.dns.record_response import TLSARecord, TXTRecord  # noqa: E402  pylint: disable=wrong-import-position

from .cloudflare_api import TXT_MAX_LENGTH, ApiError, CloudflareApi  # noqa: E402  pylint: disable=wrong-import-position

ZONE = 'example.test'
NAME = '_mta-sts.example.test'


@pytest.fixture
def api():
    with CloudflareApi() as server:
        server.add_zone(ZONE)
        yield server
        assert server.internal_errors() == []


@pytest.fixture
def client(api):
    with Cloudflare(api_token='good-token', base_url=api.base_url, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def zone_id(api):
    return api.zone_id(ZONE)


def raw(api, method, path, body=None, token='good-token', authorization=None):
    """One HTTP request below /client/v4; returns (status, headers, decoded JSON)."""
    headers = {'Content-Type': 'application/json'}
    if authorization is not None:
        headers['Authorization'] = authorization
    elif token is not None:
        headers['Authorization'] = f'Bearer {token}'
    conn = http.client.HTTPConnection(api.listen_address, api.listen_port, timeout=5)
    try:
        conn.request(method, '/client/v4' + path, body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def listed(items, bound=1000):
    """All items of an SDK auto-paginating list, failing (not hanging) should pagination never end."""
    found = list(itertools.islice(items, bound + 1))
    assert len(found) <= bound, 'pagination did not end'
    return found


def codes(body):
    return [err['code'] for err in body['errors']]


def chain_codes(exc):
    return [item['code'] for err in exc.body['errors'] for item in err.get('error_chain', [])]


def txt(client, zone_id, name=NAME, content='"v=STSv1; id=1;"', ttl=1):
    return client.dns.records.create(zone_id=zone_id, type='TXT', name=name, content=content, ttl=ttl)


# -- server ----------------------------------------------------------------

def test_listens_on_loopback_only():
    for address in ('0.0.0.0', '192.0.2.1', '::'):
        with pytest.raises(ValueError):
            CloudflareApi(listen_address=address)


def test_base_url_and_stop_closes_the_port():
    server = CloudflareApi(listen_address='127.0.0.1').start()
    port = server.listen_port
    assert server.base_url == f'http://127.0.0.1:{port}/client/v4'
    with Cloudflare(api_token='good-token', base_url=server.base_url, max_retries=0) as sdk:
        assert listed(sdk.zones.list()) == []      # a keep-alive connection stays open...
        server.stop()                              # ...and stop() does not wait for it
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
    server.stop()    # a second stop is harmless
    with pytest.raises(RuntimeError):
        assert CloudflareApi().base_url


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip('no IPv6')
    try:
        server = CloudflareApi(listen_address='::1').start()
    except OSError as exc:
        pytest.skip(f'::1 not usable here: {exc}')
    with server:
        zone_id = server.add_zone('six.test')
        assert server.base_url.startswith('http://[::1]:')
        with Cloudflare(api_token='good-token', base_url=server.base_url, max_retries=0) as sdk:
            assert sdk.zones.get(zone_id=zone_id).name == 'six.test'


# -- auth --------------------------------------------------------------------

def test_bad_token_is_permission_denied_and_changes_nothing(api, zone_id):
    with Cloudflare(api_token='wrong-token', base_url=api.base_url, max_retries=0) as bad:
        with pytest.raises(cloudflare.PermissionDeniedError) as info:
            bad.zones.list()
        assert info.value.status_code == 403
        assert codes(info.value.body) == [9109]
        assert info.value.body['errors'][0]['message'] == 'Invalid access token'
        with pytest.raises(cloudflare.PermissionDeniedError):
            txt(bad, zone_id)
    assert api.records(ZONE) == []


def test_any_configured_token_works():
    with CloudflareApi(tokens=('one', 'two')) as server:
        server.add_zone(ZONE)
        for token in ('one', 'two'):
            with Cloudflare(api_token=token, base_url=server.base_url, max_retries=0) as sdk:
                assert [z.name for z in listed(sdk.zones.list())] == [ZONE]
        with Cloudflare(api_token='good-token', base_url=server.base_url, max_retries=0) as sdk:
            with pytest.raises(cloudflare.PermissionDeniedError):
                sdk.zones.list()


def test_missing_or_malformed_authorization_header(api):
    status, _headers, body = raw(api, 'GET', '/zones', token=None)
    assert (status, codes(body), body['success']) == (403, [9109], False)
    status, _headers, body = raw(api, 'GET', '/zones', authorization='Token good-token')
    assert (status, codes(body)) == (400, [6003])
    assert body['errors'][0]['error_chain'][0]['code'] == 6111
    status, _headers, body = raw(api, 'GET', '/zones', authorization='Bearer good-token')
    assert status == 200 and body['success'] is True


# -- zones -------------------------------------------------------------------

def test_zones_list_by_name(api, client):
    other = api.add_zone('Other.TEST.')
    assert len(other) == 32 and int(other, 16) >= 0
    zones = listed(client.zones.list(name='other.test'))
    assert [(z.id, z.name, z.status) for z in zones] == [(other, 'other.test', 'active')]
    assert [z.name for z in listed(client.zones.list())] == ['example.test', 'other.test']
    assert listed(client.zones.list(name='nothing.test')) == []
    assert [z.name for z in listed(client.zones.list(name='contains:ther'))] == ['other.test']


def test_zones_pagination_and_per_page_limits(api, client):
    for i in range(11):
        api.add_zone(f'z{i:02}.test')
    api.reset_counts()
    names = [z.name for z in listed(client.zones.list(per_page=5))]
    assert names == sorted(names) and len(names) == 12
    assert api.counts()['GET zones'] == 4     # 3 pages and the empty one after them
    status, _headers, body = raw(api, 'GET', '/zones?per_page=5&page=3')
    assert body['result_info'] == {'page': 3, 'per_page': 5, 'count': 2, 'total_count': 12, 'total_pages': 3}
    assert raw(api, 'GET', '/zones')[2]['result_info']['per_page'] == 20
    for bad in (51, 4, 0):
        with pytest.raises(cloudflare.BadRequestError):
            client.zones.list(per_page=bad)
    assert raw(api, 'GET', '/zones?per_page=50')[0] == 200


def test_zone_get_unknown_and_malformed(api, client, zone_id):
    assert client.zones.get(zone_id=zone_id).name == ZONE
    with pytest.raises(cloudflare.NotFoundError) as info:
        client.zones.get(zone_id='0' * 32)
    assert codes(info.value.body) == [7003, 7000]
    assert info.value.body['errors'][0]['message'].startswith('Could not route to /client/v4/zones/')
    with pytest.raises(cloudflare.BadRequestError):
        client.zones.get(zone_id='example.test')
    with pytest.raises(cloudflare.NotFoundError):
        client.dns.records.list(zone_id='f' * 32)


# -- records: list -----------------------------------------------------------

def test_list_txt_by_exact_name(api, client, zone_id):
    api.add_record(ZONE, 'TXT', NAME, '"v=STSv1; id=20240101;"')
    api.add_record(ZONE, 'TXT', 'x' + NAME, '"v=STSv1; id=other;"')
    api.add_record(ZONE, 'TXT', 'sub.' + NAME, '"v=STSv1; id=deeper;"')
    api.add_record(ZONE, 'CNAME', '_mta-sts.sub.example.test', 'target.example.test')
    api.add_record(ZONE, 'TXT', '_smtp._tls.example.test', '"v=TLSRPTv1; rua=mailto:r@example.test"')
    api.reset_counts()
    found = listed(client.dns.records.list(zone_id=zone_id, type='TXT', name={'exact': NAME.upper()}))
    assert len(found) == 1
    record = found[0]
    assert isinstance(record, TXTRecord)
    assert (record.name, record.type, record.content) == (NAME, 'TXT', '"v=STSv1; id=20240101;"')
    assert (record.zone_id, record.zone_name, record.proxied, record.proxiable) == (zone_id, ZONE, False, False)
    assert record.created_on is not None and record.modified_on is not None
    _method, target, _status = api.log()[0]
    assert 'name.exact=_MTA-STS.EXAMPLE.TEST' in target and 'type=TXT' in target   # what the SDK sends
    assert api.counts()['GET dns_records'] == 2     # one page, then the empty one


def test_list_filters_plain_name_content_and_type(api, client, zone_id):
    api.add_record(ZONE, 'TXT', NAME, '"A"')
    api.add_record(ZONE, 'TXT', NAME, '"B"')
    api.add_record(ZONE, 'A', NAME, '192.0.2.1')
    _status, _headers, body = raw(api, 'GET', f'/zones/{zone_id}/dns_records?name={NAME}')
    assert sorted(r['content'] for r in body['result']) == ['"A"', '"B"', '192.0.2.1']
    _status, _headers, body = raw(api, 'GET', f'/zones/{zone_id}/dns_records?type=A')
    assert [r['type'] for r in body['result']] == ['A']
    found = listed(client.dns.records.list(zone_id=zone_id, content={'exact': '"b"'}))   # content filters ignore case
    assert [r.content for r in found] == ['"B"']
    found = listed(client.dns.records.list(zone_id=zone_id, type='TXT', content={'startswith': '"a'}))
    assert [r.content for r in found] == ['"A"']
    found = listed(client.dns.records.list(zone_id=zone_id, type='TXT', order='content', direction='desc'))
    assert [r.content for r in found] == ['"B"', '"A"']


def test_auto_pagination_ends_with_an_empty_page(api, client, zone_id):
    ids = {api.add_record(ZONE, 'TXT', f'r{i}.example.test', f'"{i}"') for i in range(7)}
    api.reset_counts()
    found = listed(client.dns.records.list(zone_id=zone_id, per_page=3))
    assert {r.id for r in found} == ids and len(found) == 7
    assert api.counts()['GET dns_records'] == 4     # pages 1-3, then page 4 (empty)
    assert [target.rsplit('page=', 1)[-1] for _m, target, _s in api.log()[1:]] == ['2', '3', '4']
    _status, _headers, body = raw(api, 'GET', f'/zones/{zone_id}/dns_records?per_page=3&page=3')
    assert body['result_info'] == {'page': 3, 'per_page': 3, 'count': 1, 'total_count': 7, 'total_pages': 3}
    _status, _headers, body = raw(api, 'GET', f'/zones/{zone_id}/dns_records?per_page=3&page=4')
    assert body['result'] == [] and body['result_info']['count'] == 0


def test_per_page_default_and_limits():
    with CloudflareApi(per_page_default=4) as server:
        zone_id = server.add_zone(ZONE)
        for i in range(9):
            server.add_record(ZONE, 'TXT', f'r{i}.example.test', f'"{i}"')
        with Cloudflare(api_token='good-token', base_url=server.base_url, max_retries=0) as sdk:
            assert len(listed(sdk.dns.records.list(zone_id=zone_id))) == 9
            assert server.counts()['GET dns_records'] == 4     # 3 pages of at most 4, then the empty one
            with pytest.raises(cloudflare.BadRequestError):
                sdk.dns.records.list(zone_id=zone_id, per_page=0)
            with pytest.raises(cloudflare.BadRequestError):
                sdk.dns.records.list(zone_id=zone_id, per_page=2.5)
    with CloudflareApi() as server:
        zone_id = server.add_zone(ZONE)
        assert raw(server, 'GET', f'/zones/{zone_id}/dns_records')[2]['result_info']['per_page'] == 100


# -- records: writes -----------------------------------------------------------

def test_create_normalises_name_and_keeps_content_exactly(api, client, zone_id):
    content = '"v=STSv1; " "id=20240101;"'
    created = txt(client, zone_id, name='_MTA-STS.Example.Test.', content=content, ttl=300)
    assert isinstance(created, TXTRecord)
    assert (created.name, created.content, created.ttl) == (NAME, content, 300)
    assert len(created.id) == 32
    [stored] = api.records(ZONE, name=NAME + '.', type='txt')
    assert stored['content'] == content and stored['id'] == created.id
    assert stored['created_on'] == stored['modified_on'] and stored['created_on'].endswith('Z')
    assert client.dns.records.get(created.id, zone_id=zone_id).content == content


def test_update_overwrites_and_edit_merges(api, client, zone_id):
    created = client.dns.records.create(zone_id=zone_id, type='TXT', name=NAME, content='"1"', ttl=300,
                                        comment='managed')
    updated = client.dns.records.update(created.id, zone_id=zone_id, type='TXT', name=NAME, content='"2"', ttl=600)
    assert (updated.id, updated.content, updated.ttl, updated.comment) == (created.id, '"2"', 600, None)
    assert updated.created_on == created.created_on and updated.modified_on >= created.modified_on
    edited = client.dns.records.edit(created.id, zone_id=zone_id, type='TXT', name=NAME, content='"3"', ttl=1)
    assert (edited.content, edited.ttl) == ('"3"', 1)
    status, _headers, body = raw(api, 'PATCH', f'/zones/{zone_id}/dns_records/{created.id}', {'ttl': 120})
    assert status == 200 and (body['result']['content'], body['result']['ttl']) == ('"3"', 120)
    assert [(r['content'], r['ttl']) for r in api.records(ZONE)] == [('"3"', 120)]


def test_delete_and_unknown_record(api, client, zone_id):
    created = txt(client, zone_id)
    deleted = client.dns.records.delete(created.id, zone_id=zone_id)
    assert deleted.id == created.id
    assert api.records(ZONE) == []
    for call in (lambda: client.dns.records.delete(created.id, zone_id=zone_id),
                 lambda: client.dns.records.get(created.id, zone_id=zone_id),
                 lambda: client.dns.records.update(created.id, zone_id=zone_id, type='TXT', name=NAME,
                                                   content='"x"', ttl=1)):
        with pytest.raises(cloudflare.NotFoundError) as info:
            call()
        assert codes(info.value.body) == [81044]
        assert info.value.body['errors'][0]['message'] == 'Record does not exist.'
    with pytest.raises(cloudflare.BadRequestError):
        client.dns.records.get('not-an-id', zone_id=zone_id)


def test_identical_record_is_refused(api, client, zone_id):
    first = txt(client, zone_id, content='"same"')
    with pytest.raises(cloudflare.BadRequestError) as info:
        txt(client, zone_id, name=NAME.upper() + '.', content='"same"', ttl=300)
    assert codes(info.value.body) == [81058]
    assert info.value.body['errors'][0]['message'] == 'An identical record already exists.'
    second = txt(client, zone_id, content='"other"')
    with pytest.raises(cloudflare.BadRequestError):
        client.dns.records.edit(second.id, zone_id=zone_id, type='TXT', name=NAME, content='"same"', ttl=1)
    # Writing a record onto itself is not a duplicate.
    client.dns.records.update(first.id, zone_id=zone_id, type='TXT', name=NAME, content='"same"', ttl=600)
    assert sorted(r['content'] for r in api.records(ZONE)) == ['"other"', '"same"']


@pytest.mark.parametrize('ttl, ok', [(1, True), (60, True), (86400, True), (59, False), (86401, False),
                                     (0, False), (2, False)])
def test_ttl_range(api, client, zone_id, ttl, ok):
    if ok:
        assert txt(client, zone_id, ttl=ttl).ttl == ttl
        return
    with pytest.raises(cloudflare.BadRequestError) as info:
        txt(client, zone_id, ttl=ttl)
    assert codes(info.value.body) == [1004] and chain_codes(info.value) == [9021]
    assert api.records(ZONE) == []


def test_ttl_must_be_a_number(api, zone_id):
    status, _headers, body = raw(api, 'POST', f'/zones/{zone_id}/dns_records',
                                 {'type': 'TXT', 'name': NAME, 'content': '"x"', 'ttl': '300'})
    assert (status, codes(body)) == (400, [9022])


def test_txt_content_length_and_presence(api, client, zone_id):
    assert len(txt(client, zone_id, content='a' * TXT_MAX_LENGTH).content) == 2048
    with pytest.raises(cloudflare.BadRequestError):
        txt(client, zone_id, name='b.example.test', content='a' * (TXT_MAX_LENGTH + 1))
    with pytest.raises(cloudflare.BadRequestError):
        client.dns.records.create(zone_id=zone_id, type='TXT', name='c.example.test', ttl=1)
    status, _headers, body = raw(api, 'POST', f'/zones/{zone_id}/dns_records', {'name': NAME, 'content': '"x"'})
    assert (status, codes(body)) == (400, [1004])
    assert len(api.records(ZONE)) == 1


def test_name_must_be_inside_the_zone(api, client, zone_id):
    for name in ('_mta-sts.other.test', 'example.test.evil.test', 'badexample.test'):
        with pytest.raises(cloudflare.BadRequestError):
            txt(client, zone_id, name=name)
    assert txt(client, zone_id, name='@', content='"apex"').name == ZONE
    assert txt(client, zone_id, name='Example.Test.', content='"apex2"').name == ZONE
    with CloudflareApi(relative_names=True) as server:
        other_zone = server.add_zone(ZONE)
        with Cloudflare(api_token='good-token', base_url=server.base_url, max_retries=0) as sdk:
            assert txt(sdk, other_zone, name='_mta-sts').name == NAME
            assert txt(sdk, other_zone, name='a.other.test').name == 'a.other.test.example.test'


def test_txt_cannot_be_proxied(api, client, zone_id):
    with pytest.raises(cloudflare.BadRequestError):
        client.dns.records.create(zone_id=zone_id, type='TXT', name=NAME, content='"x"', ttl=1, proxied=True)
    assert api.records(ZONE) == []


def test_add_record_validates_like_the_api(api):
    api.add_record(ZONE, 'TXT', NAME, '"x"')
    with pytest.raises(ApiError) as info:
        api.add_record(ZONE, 'TXT', NAME, '"x"')
    assert info.value.status == 400 and info.value.errors[0]['code'] == 81058
    with pytest.raises(ApiError):
        api.add_record(ZONE, 'TXT', 'elsewhere.test', '"x"')
    with pytest.raises(KeyError):
        api.records('unknown.test')


# -- batch -------------------------------------------------------------------

def test_batch_applies_deletes_patches_puts_posts_in_order(api, client, zone_id):
    old = api.add_record(ZONE, 'TXT', NAME, '"v=STSv1; id=old;"')
    patched = api.add_record(ZONE, 'TXT', '_smtp._tls.example.test', '"v=TLSRPTv1; rua=mailto:a@example.test"')
    put = api.add_record(ZONE, 'TXT', 'keep.example.test', '"keep"', ttl=300)
    result = client.dns.records.batch(
        zone_id=zone_id,
        # The post re-creates exactly what is deleted: it only works because deletes run first.
        posts=[{'type': 'TXT', 'name': NAME, 'content': '"v=STSv1; id=old;"', 'ttl': 1}],
        puts=[{'id': put, 'type': 'TXT', 'name': 'keep.example.test', 'content': '"put"', 'ttl': 1}],
        patches=[{'id': patched, 'type': 'TXT', 'name': '_smtp._tls.example.test',
                  'content': '"v=TLSRPTv1; rua=mailto:b@example.test"', 'ttl': 1}],
        deletes=[{'id': old}])
    assert [r.id for r in result.deletes] == [old]
    assert result.deletes[0].content == '"v=STSv1; id=old;"'
    assert [(r.id, r.content) for r in result.patches] == [(patched, '"v=TLSRPTv1; rua=mailto:b@example.test"')]
    assert [(r.id, r.content, r.ttl) for r in result.puts] == [(put, '"put"', 1)]
    assert [r.content for r in result.posts] == ['"v=STSv1; id=old;"'] and result.posts[0].id != old
    assert sorted(r['content'] for r in api.records(ZONE)) == \
        ['"put"', '"v=STSv1; id=old;"', '"v=TLSRPTv1; rua=mailto:b@example.test"']
    assert api.counts()['POST batch'] == 1


def test_batch_is_all_or_nothing(api, client, zone_id):
    keep = api.add_record(ZONE, 'TXT', NAME, '"v=STSv1; id=1;"')
    other = api.add_record(ZONE, 'TXT', 'other.example.test', '"o"')
    before = api.records(ZONE)
    with pytest.raises(cloudflare.NotFoundError) as info:
        client.dns.records.batch(zone_id=zone_id, deletes=[{'id': keep}, {'id': 'e' * 32}],
                                 posts=[{'type': 'TXT', 'name': NAME, 'content': '"v=STSv1; id=2;"', 'ttl': 1}])
    assert codes(info.value.body) == [81044]
    assert api.records(ZONE) == before
    # The last item fails validation after earlier items succeeded: still nothing changes.
    with pytest.raises(cloudflare.BadRequestError):
        client.dns.records.batch(
            zone_id=zone_id, deletes=[{'id': other}],
            patches=[{'id': keep, 'type': 'TXT', 'name': NAME, 'content': '"v=STSv1; id=3;"', 'ttl': 1}],
            posts=[{'type': 'TXT', 'name': 'new.example.test', 'content': '"n"', 'ttl': 5}])
    assert api.records(ZONE) == before
    # Two identical posts in one batch collide with each other.
    with pytest.raises(cloudflare.BadRequestError) as info:
        client.dns.records.batch(zone_id=zone_id, posts=[{'type': 'TXT', 'name': 'n.example.test', 'content': '"n"',
                                                          'ttl': 1}] * 2)
    assert codes(info.value.body) == [81058]
    assert api.records(ZONE) == before
    assert api.writes() == 3


def test_batch_size_limit():
    with CloudflareApi(batch_limit=3) as server:
        zone_id = server.add_zone(ZONE)
        posts = [{'type': 'TXT', 'name': f'{i}.example.test', 'content': '"x"', 'ttl': 1} for i in range(4)]
        with Cloudflare(api_token='good-token', base_url=server.base_url, max_retries=0) as sdk:
            with pytest.raises(cloudflare.BadRequestError):
                sdk.dns.records.batch(zone_id=zone_id, posts=posts)
            assert len(sdk.dns.records.batch(zone_id=zone_id, posts=posts[:3]).posts) == 3


# -- faults --------------------------------------------------------------------

def test_rate_limit_with_retry_after(api, client, zone_id):
    fault = api.inject(429, count=1, retry_after=7)
    with pytest.raises(cloudflare.RateLimitError) as info:
        txt(client, zone_id)
    assert info.value.status_code == 429
    assert info.value.response.headers['Retry-After'] == '7'
    assert codes(info.value.body) == [971]
    assert info.value.body['errors'][0]['message'] == 'Please wait and consider throttling your request speed'
    assert api.records(ZONE) == [] and fault.fired == 1
    assert txt(client, zone_id).content        # count=1: the next request goes through
    counts = api.counts()
    assert (counts['faults'], counts['POST dns_records'], counts['total'], api.writes()) == (1, 1, 2, 1)


def test_rate_limit_without_retry_after_and_sdk_retry(api, zone_id):
    api.inject(429, count=1, retry_after=None)
    status, headers, _body = raw(api, 'GET', '/zones')
    assert status == 429 and 'retry-after' not in headers
    api.inject(429, count=1, retry_after=0)
    with Cloudflare(api_token='good-token', base_url=api.base_url, max_retries=1) as patient:
        assert [z.name for z in listed(patient.zones.list())] == [ZONE]   # a client that retries gets through
    assert api.counts()['faults'] == 2


def test_fault_every_nth_and_method_and_path_filters(api, client, zone_id):
    fault = api.inject(503, every=2, methods=['get'])
    outcomes = []
    for i, call in enumerate(['GET', 'POST', 'GET', 'POST', 'GET', 'GET']):
        try:
            if call == 'GET':
                client.zones.list()
            else:
                txt(client, zone_id, name=f'w{i}.example.test')
            outcomes.append('ok')
        except cloudflare.InternalServerError as exc:
            outcomes.append(exc.status_code)
    # Only GETs are matched, and every 2nd of them fails; the POSTs all went through.
    assert outcomes == ['ok', 'ok', 503, 'ok', 'ok', 503] and fault.fired == 2
    assert len(api.records(ZONE)) == 2
    api.clear_faults()
    for i in range(5):
        api.add_record(ZONE, 'TXT', f'p{i}.example.test', '"p"')
    api.inject(502, path_contains='&page=2')
    with pytest.raises(cloudflare.InternalServerError) as info:
        listed(client.dns.records.list(zone_id=zone_id, per_page=2))
    assert info.value.status_code == 502
    assert client.dns.records.list(zone_id=zone_id, per_page=2).result[0].content == '"v=STSv1; id=1;"'


def test_fault_ratio_is_seeded(api):
    def pattern(seed):
        api.clear_faults()
        api.inject(500, ratio=0.5, seed=seed)
        return [raw(api, 'GET', '/zones')[0] for _attempt in range(40)]
    first = pattern(1)
    assert first == pattern(1)
    assert 5 < first.count(500) < 35 and set(first) == {200, 500}
    assert first != pattern(2)


def test_faults_answer_before_auth_and_change_nothing(api, zone_id):
    api.inject(500)
    for token in ('good-token', 'bad'):
        status, _headers, body = raw(api, 'POST', f'/zones/{zone_id}/dns_records',
                                     {'type': 'TXT', 'name': NAME, 'content': '"x"', 'ttl': 1}, token=token)
        assert (status, body['success']) == (500, False)
    assert api.records(ZONE) == [] and api.writes() == 0 and api.counts()['faults'] == 2
    with pytest.raises(ValueError):
        api.inject(200)


# -- counting and concurrency ------------------------------------------------

def test_counts(api, client, zone_id):
    api.reset_counts()
    assert api.counts() == {'GET zones': 0, 'GET dns_records': 0, 'POST dns_records': 0, 'PUT dns_records': 0,
                            'PATCH dns_records': 0, 'DELETE dns_records': 0, 'POST batch': 0, 'other': 0,
                            'faults': 0, 'total': 0}
    listed(client.zones.list(name=ZONE))                                        # 2: page 1, empty page 2
    created = txt(client, zone_id)                                            # POST
    listed(client.dns.records.list(zone_id=zone_id, type='TXT', name={'exact': NAME}))   # 2
    client.dns.records.get(created.id, zone_id=zone_id)                       # GET dns_records
    client.dns.records.update(created.id, zone_id=zone_id, type='TXT', name=NAME, content='"2"', ttl=1)
    client.dns.records.edit(created.id, zone_id=zone_id, type='TXT', name=NAME, content='"3"', ttl=1)
    client.dns.records.batch(zone_id=zone_id, deletes=[{'id': created.id}])
    with pytest.raises(cloudflare.NotFoundError):
        client.dns.records.delete(created.id, zone_id=zone_id)                 # failed, still counted
    api.inject(429, count=1)
    with pytest.raises(cloudflare.RateLimitError):
        txt(client, zone_id)                                                  # a fault, not a POST
    raw(api, 'GET', '/user/tokens/verify')                                    # other
    assert api.counts() == {'GET zones': 2, 'GET dns_records': 3, 'POST dns_records': 1, 'PUT dns_records': 1,
                            'PATCH dns_records': 1, 'DELETE dns_records': 1, 'POST batch': 1, 'other': 1,
                            'faults': 1, 'total': 12}
    assert api.writes() == 5
    assert len(api.log()) == 12 and api.log()[-1] == ('GET', '/client/v4/user/tokens/verify', 404)
    api.reset_counts()
    assert api.counts()['total'] == 0 and api.writes() == 0 and api.log() == []


def test_concurrent_writes(api, zone_id):
    errors = []
    start = threading.Barrier(24)

    def create(name):
        with Cloudflare(api_token='good-token', base_url=api.base_url, max_retries=0) as sdk:
            start.wait(timeout=30)      # all clients ready, then all at once
            try:
                txt(sdk, zone_id, name=name, content='"same"')
            except cloudflare.BadRequestError as exc:
                errors.append(codes(exc.body))

    threads = [threading.Thread(target=create, args=(f'n{i % 4}.example.test',)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r['name'] for r in api.records(ZONE)) == [f'n{i}.example.test' for i in range(4)]
    assert errors == [[81058]] * 20
    assert api.counts()['POST dns_records'] == 24


# -- TLSA: written as data, read as the content derived from it ------------------

TLSA_NAME = '_25._tcp.mx1.example.test'
DIGEST = '5e' * 16 + 'A0' * 16


def tlsa(client, zone_id, data, name=TLSA_NAME, **fields):
    return client.dns.records.create(zone_id=zone_id, type='TLSA', name=name, ttl=300, data=data, **fields)


def chain_messages(exc):
    return [item['message'] for err in exc.body['errors'] for item in err.get('error_chain', [])]


def test_tlsa_data_gives_the_content_with_the_certificate_upper_case(api, client, zone_id):
    created = tlsa(client, zone_id, {'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': DIGEST})
    assert isinstance(created, TLSARecord)
    assert created.content == '3 1 1 ' + DIGEST.upper()
    assert (created.data.usage, created.data.selector, created.data.matching_type) == (3, 1, 1)
    assert created.data.certificate == DIGEST
    [listed_one] = listed(client.dns.records.list(zone_id=zone_id, type='TLSA'))
    assert (listed_one.content, listed_one.data.certificate) == (created.content, DIGEST)
    # A TXT record carries no data object.
    txt(client, zone_id)
    [stored_txt] = api.records(ZONE, type='TXT')
    assert 'data' not in stored_txt and 'data' in api.records(ZONE, type='TLSA')[0]


def test_tlsa_as_content_is_refused_field_by_field(api, client, zone_id):
    with pytest.raises(cloudflare.BadRequestError) as info:
        client.dns.records.create(zone_id=zone_id, type='TLSA', name=TLSA_NAME, ttl=300, content='3 1 1 ' + DIGEST)
    assert codes(info.value.body) == [1004]
    assert chain_messages(info.value) == ['usage is a required data field.', 'selector is a required data field.',
                                          'matching_type is a required data field.',
                                          'certificate is a required data field.']
    with pytest.raises(cloudflare.BadRequestError) as info:
        tlsa(client, zone_id, {'usage': 3, 'selector': 0, 'matching_type': 1})
    assert chain_messages(info.value) == ['certificate is a required data field.']
    assert api.records(ZONE) == []


@pytest.mark.parametrize('field, value, rule', [
    ('usage', 256, 'usage must be an integer from 0 to 255.'),
    ('selector', -1, 'selector must be an integer from 0 to 255.'),
    ('matching_type', 1.5, 'matching_type must be an integer from 0 to 255.'),
    ('usage', '3', 'usage must be an integer from 0 to 255.'),
    ('certificate', 'xyz0', 'certificate must be hexadecimal, an even number of digits.'),
    ('certificate', 'abc', 'certificate must be hexadecimal, an even number of digits.'),
    ('certificate', 'ab cd', 'certificate must be hexadecimal, an even number of digits.'),
])
def test_tlsa_data_is_validated(api, zone_id, field, value, rule):
    data = dict({'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': DIGEST}, **{field: value})
    status, _headers, body = raw(api, 'POST', f'/zones/{zone_id}/dns_records',
                                 {'type': 'TLSA', 'name': TLSA_NAME, 'ttl': 300, 'data': data})
    assert (status, codes(body)) == (400, [1004])
    assert [item['message'] for item in body['errors'][0]['error_chain']] == [rule]
    assert api.records(ZONE) == []


def test_tlsa_content_sent_beside_data_is_ignored_and_duplicates_match_in_any_case(api, client, zone_id):
    created = tlsa(client, zone_id, {'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': DIGEST},
                   content='2 0 0 00')
    assert created.content == '3 1 1 ' + DIGEST.upper()
    with pytest.raises(cloudflare.BadRequestError) as info:
        tlsa(client, zone_id, {'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': DIGEST.upper()})
    assert codes(info.value.body) == [81058]
    assert len(api.records(ZONE)) == 1


def test_tlsa_batch_puts_and_posts_take_data_and_a_patch_keeps_it(api, client, zone_id):
    old = api.add_record(ZONE, 'TLSA', TLSA_NAME, ttl=300,
                         data={'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': 'aa' * 32})
    result = client.dns.records.batch(
        zone_id=zone_id,
        puts=[{'id': old, 'type': 'TLSA', 'name': TLSA_NAME, 'ttl': 300,
               'data': {'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': 'bb' * 32}}],
        posts=[{'type': 'TLSA', 'name': TLSA_NAME, 'ttl': 300,
                'data': {'usage': 2, 'selector': 1, 'matching_type': 2, 'certificate': 'cc' * 64}}])
    assert [(r.id, r.content) for r in result.puts] == [(old, '3 1 1 ' + 'BB' * 32)]
    assert [r.content for r in result.posts] == ['2 1 2 ' + 'CC' * 64]
    status, _headers, body = raw(api, 'PATCH', f'/zones/{zone_id}/dns_records/{old}', {'ttl': 600})
    assert status == 200 and (body['result']['content'], body['result']['ttl']) == ('3 1 1 ' + 'BB' * 32, 600)
    assert body['result']['data']['certificate'] == 'bb' * 32
    with pytest.raises(ApiError):
        api.add_record(ZONE, 'TLSA', TLSA_NAME, '3 1 1 ' + 'dd' * 32)
    assert sorted(r['content'][:5] for r in api.records(ZONE, type='TLSA')) == ['2 1 2', '3 1 1']


# -- the quota per token -------------------------------------------------------

class SteppedClock:
    """A clock the test moves by hand: the quota's decisions do not depend on the machine's speed."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_quota_serves_the_limit_then_locks_the_token_out_even_for_spaced_requests(api, client, zone_id):
    clock = SteppedClock()
    api.set_quota(limit=5, window=10, lockout=30, clock=clock)
    for _request in range(5):
        assert raw(api, 'GET', f'/zones/{zone_id}/dns_records')[0] == 200
    with pytest.raises(cloudflare.RateLimitError) as info:
        txt(client, zone_id)                                              # the 6th in 10 s: refused
    assert info.value.response.headers['Retry-After'] == '30'
    assert codes(info.value.body) == [971]
    assert api.records(ZONE) == [] and api.writes() == 0
    # Past the window, but not past the lockout: still refused, Retry-After says how long is left (rounded up).
    for step, left in ((11, '19'), (10, '9'), (8.5, '1')):
        clock.now += step
        status, headers, body = raw(api, 'GET', '/zones')
        assert (status, headers['retry-after'], codes(body)) == (429, left, [971])
    clock.now += 0.5                                                       # 30 s after the excess
    assert txt(client, zone_id).content == '"v=STSv1; id=1;"'
    assert api.quota_counts() == {'good-token': {'requests': 10, 'throttled': 4}}
    counts = api.counts()
    assert (counts['GET dns_records'], counts['GET zones'], counts['POST dns_records'], counts['faults'],
            counts['total']) == (5, 0, 1, 0, 10)
    assert [status for _method, _target, status in api.log()] == [200] * 5 + [429] * 4 + [200]


def test_quota_is_a_sliding_window_not_a_fixed_one(api):
    clock = SteppedClock()
    api.set_quota(limit=3, window=10, lockout=1, clock=clock)
    statuses = []
    for at in (0, 4, 8, 10.5, 11):    # at 10.5 the request of 0 has left the window; at 11 those of 4, 8, 10.5 remain
        clock.now = 1000.0 + at
        statuses.append(raw(api, 'GET', '/zones')[0])
    assert statuses == [200, 200, 200, 200, 429]


def test_quota_counts_each_token_apart_and_not_bad_tokens_or_injected_faults():
    clock = SteppedClock()
    with CloudflareApi(tokens=('one', 'two')) as server:
        server.set_quota(limit=2, window=10, lockout=10, clock=clock)
        assert [raw(server, 'GET', '/zones', token='one')[0] for _request in range(3)] == [200, 200, 429]
        assert [raw(server, 'GET', '/zones', token='two')[0] for _request in range(2)] == [200, 200]
        assert raw(server, 'GET', '/zones', token='wrong')[0] == 403
        server.inject(503, count=1)
        assert raw(server, 'GET', '/zones', token='two')[0] == 503                 # a fault, before the quota
        assert raw(server, 'GET', '/zones', token='two')[0] == 429
        assert server.quota_counts() == {'one': {'requests': 3, 'throttled': 1},
                                         'two': {'requests': 3, 'throttled': 1}}
        server.reset_counts()
        assert server.quota_counts() == {} and server.counts()['total'] == 0
        assert raw(server, 'GET', '/zones', token='one')[0] == 429                 # the lockout outlives the counts
        server.clear_quota()
        assert raw(server, 'GET', '/zones', token='one')[0] == 200
        assert server.quota_counts() == {}


@pytest.mark.parametrize('kwargs', [{'limit': 0}, {'limit': 2.5}, {'limit': True}, {'window': 0}, {'lockout': -1}])
def test_quota_rejects_bad_arguments(api, kwargs):
    with pytest.raises(ValueError):
        api.set_quota(**dict({'limit': 5, 'window': 1, 'lockout': 1}, **kwargs))


def test_quota_in_real_time_and_a_client_that_honours_retry_after_gets_through(api, zone_id):
    api.set_quota(limit=4, window=1, lockout=1)
    statuses = [raw(api, 'GET', '/zones')[0] for _request in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    # The SDK waits Retry-After (1 s) before its one retry: the lockout is over and the window empty.
    with Cloudflare(api_token='good-token', base_url=api.base_url, max_retries=1) as patient:
        assert [z.name for z in listed(patient.zones.list())] == [ZONE]
    assert api.quota_counts()['good-token']['throttled'] == 3
