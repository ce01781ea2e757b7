"""TLSA at the provider level, where each backend has its own spelling of the record.

Cloudflare takes TLSA as a ``data`` object and gives back a content it derives
(the stand-in of its API, and the SDK's own request bodies); a zone file may hold
the data in upper case, split in chunks and across lines. Each must read to the
one canonical value, so a re-run plans nothing.
"""

import json

import httpx
from cloudflare import Cloudflare

from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.cloudflare import CloudflareProvider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.zonefile import ZonefileProvider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import plan_rrset
from tests.lab.cloudflare_api import CloudflareApi

NAME = '_25._tcp.mx1.example.com'
CURRENT = (3, 1, 1, '5e' * 32)
NEXT = (3, 1, 1, 'a0' * 32)
FULL = (3, 0, 0, '30820122' + 'ab' * 290)     # a whole SPKI: long data, chunked by zone-file writers


def _cloudflare(api):
    return CloudflareProvider.from_params({'api_token': 'good-token', 'base_url': api.base_url})


def _publish(provider, zone, values, ttl=300):
    found = provider.read_rrsets(zone, [NAME], ('TLSA',))
    change = plan_rrset(found[NAME]['TLSA'], values, ttl)
    if change.changed:
        provider.apply_rrsets(zone, [change])
    return change


def test_cloudflare_writes_data_reads_the_upper_case_content_and_plans_nothing_again():
    with CloudflareApi() as api:
        api.add_zone('example.com')
        provider = _cloudflare(api)
        _publish(provider, 'example.com', [CURRENT, NEXT, FULL])
        stored = sorted((r['content'], r['data']['certificate']) for r in api.records('example.com', type='TLSA'))
        assert stored == sorted((' '.join((str(u), str(s), str(m), d.upper())), d) for u, s, m, d in (CURRENT, NEXT, FULL))

        api.reset_counts()
        again = _publish(_cloudflare(api), 'example.com', [NEXT, FULL, CURRENT])
        assert not again.changed and api.writes() == 0

        # Dropping one value is one batch that deletes that record only.
        api.reset_counts()
        _publish(_cloudflare(api), 'example.com', [NEXT])
        assert api.counts()['POST batch'] == 1 and api.writes() == 1
        assert [r['content'] for r in api.records('example.com', type='TLSA')] == ['3 1 1 ' + 'A0' * 32]
        assert api.internal_errors() == []


def test_cloudflare_replaces_a_value_in_place_with_a_data_put():
    with CloudflareApi() as api:
        api.add_zone('example.com')
        old = api.add_record('example.com', 'TLSA', NAME, ttl=300,
                             data={'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': CURRENT[3]})
        bodies = []
        client = Cloudflare(api_token='good-token', base_url=api.base_url, max_retries=0,
                            http_client=httpx.Client(event_hooks={'request': [bodies.append]}))
        provider = CloudflareProvider(client, Retrier())
        _publish(provider, 'example.com', [NEXT])
        [batch] = [json.loads(request.read()) for request in bodies if request.url.path.endswith('/batch')]
        assert batch == {'deletes': [], 'posts': [], 'puts': [{
            'id': old, 'type': 'TLSA', 'name': NAME, 'ttl': 300,
            'data': {'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': NEXT[3]}}]}
        assert [(r['id'], r['content']) for r in api.records('example.com', type='TLSA')] == [(old, '3 1 1 ' + 'A0' * 32)]


def test_cloudflare_reads_the_data_object_where_the_content_is_missing():
    records = [{'id': 'r1', 'name': NAME, 'type': 'TLSA', 'content': None, 'ttl': 300, 'proxied': False,
                'data': {'usage': 3, 'selector': 1, 'matching_type': 1, 'certificate': CURRENT[3].upper()}},
               {'id': 'r2', 'name': NAME, 'type': 'TLSA', 'content': '3 1 1 ' + NEXT[3].upper(), 'ttl': 300,
                'proxied': False}]

    def answer(request):
        result = [{'id': 'Z1', 'name': 'example.com'}] if request.url.path.endswith('/zones') else records
        return httpx.Response(200, json={'success': True, 'errors': [], 'messages': [], 'result': result,
                                         'result_info': {'page': 1, 'per_page': 50, 'count': len(result),
                                                         'total_count': len(result), 'total_pages': 1}})

    client = Cloudflare(api_token='t', base_url='http://cloudflare.invalid/client/v4', max_retries=0,
                        http_client=httpx.Client(transport=httpx.MockTransport(answer)))
    found = CloudflareProvider(client, Retrier()).read_rrsets('example.com', [NAME], ('TLSA',))
    assert found[NAME]['TLSA'].values == [CURRENT, NEXT]


def test_zone_file_data_in_any_case_chunked_across_lines_reads_canonical(tmp_path):
    zone = tmp_path / 'example.com.zone'
    data = FULL[3].upper()
    zone.write_text('$TTL 3600\n$ORIGIN example.com.\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n'
                    '  IN NS ns1\nns1 IN A 127.0.0.1\n'
                    '_25._tcp.mx1 300 IN TLSA 3 1 1 %s %s\n'
                    '_25._tcp.mx1 300 IN TLSA 3 0 0 ( %s\n    %s )\n'
                    % (CURRENT[3][:32].upper(), CURRENT[3][32:], data[:100], data[100:]))
    before = zone.read_bytes()
    provider = ZonefileProvider(str(tmp_path / '{zone}.zone'))
    found = provider.read_rrsets('example.com', [NAME], ('TLSA',))
    assert found[NAME]['TLSA'].values == [CURRENT, FULL]
    assert not _publish(provider, 'example.com', [FULL, CURRENT]).changed
    assert zone.read_bytes() == before
    _publish(ZonefileProvider(str(tmp_path / '{zone}.zone')), 'example.com', [NEXT, FULL])
    text = zone.read_text()
    assert '_25._tcp.mx1.example.com. 300 IN TLSA 3 1 1 %s\n' % NEXT[3] in text and CURRENT[3][32:] not in text
