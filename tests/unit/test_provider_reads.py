"""One read per zone for several names: how each provider covers a domain's names with one request.

Route 53 lists a zone in its own name order (labels reversed, a final dot, compared as text): the read starts
at the first of the names in that order and stops once past the last, so a domain's names take one page
however large the zone. The fake client below answers as the API documents that order, which moto's server
does not follow for a label that is a prefix of another (``mx`` and ``mx-2``). Cloudflare lists the records
under the names' common parent; rfc2136 without a zone transfer asks its questions at the same time.
"""

import threading

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers import rfc2136
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.cloudflare import CloudflareProvider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.route53 import PAGE_SIZE, Route53Provider, listing_key
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier
from tests.lab.cloudflare_api import CloudflareApi

DOMAIN_NAMES = ['_mta-sts.example.com', '_smtp._tls.example.com', 'mta-sts.example.com', '_25._tcp.mx1.example.com']


def test_listing_order_is_route53s_reversed_labels_with_the_final_dot():
    names = ['www.example.com', 'example.com', 'mx.example.com', 'mx-2.example.com', 'a.mx.example.com',
             '_mta-sts.example.com', 'mta-sts.example.com', 'example.net', '_smtp._tls.example.com']
    # The documented order: com.example., com.example._mta-sts., ... ; '-' sorts before '.', so mx-2 before mx.
    assert sorted(names, key=listing_key) == [
        'example.com', '_mta-sts.example.com', '_smtp._tls.example.com', 'mta-sts.example.com',
        'mx-2.example.com', 'mx.example.com', 'a.mx.example.com', 'www.example.com', 'example.net']


class FakeRoute53(object):
    """ListResourceRecordSets over one zone, in the documented order, with StartRecordName/Type and pages."""

    def __init__(self, record_sets):
        self.record_sets = sorted(record_sets, key=lambda rs: (listing_key(rs['Name'].rstrip('.')), rs['Type']))
        self.listings = []

    def list_hosted_zones(self, **kwargs):
        return {'HostedZones': [{'Name': 'example.com.', 'Id': '/hostedzone/Z1', 'Config': {'PrivateZone': False}}],
                'IsTruncated': False}

    def list_resource_record_sets(self, HostedZoneId, MaxItems, StartRecordName=None, StartRecordType='', **kwargs):
        self.listings.append(StartRecordName)
        start = (listing_key(StartRecordName.rstrip('.')), StartRecordType) if StartRecordName else ('', '')
        after = [rs for rs in self.record_sets if (listing_key(rs['Name'].rstrip('.')), rs['Type']) >= start]
        page, rest = after[:int(MaxItems)], after[int(MaxItems):]
        answer = {'ResourceRecordSets': page, 'IsTruncated': bool(rest)}
        if rest:
            answer.update(NextRecordName=rest[0]['Name'], NextRecordType=rest[0]['Type'])
        return answer


def _record_set(name, rtype, value):
    return {'Name': name + '.', 'Type': rtype, 'TTL': 300, 'ResourceRecords': [{'Value': value}]}


def _zone_with_hosts(hosts):
    """A big zone: the domain's own records among ``hosts`` A records on either side of them."""
    record_sets = [_record_set('host%04d.example.com' % number, 'A', '192.0.2.1') for number in range(hosts)]
    record_sets += [_record_set('aaa%04d.example.com' % number, 'A', '192.0.2.2') for number in range(hosts)]
    record_sets += [
        _record_set('_mta-sts.example.com', 'TXT', '"v=STSv1; id=1;"'),
        _record_set('_smtp._tls.example.com', 'TXT', '"v=TLSRPTv1; rua=mailto:r@example.com"'),
        _record_set('mta-sts.example.com', 'A', '192.0.2.7'),
        _record_set('_25._tcp.mx1.example.com', 'TLSA', '3 1 1 ' + 'ab' * 32),
    ]
    return FakeRoute53(record_sets)


def test_route53_reads_a_domains_names_in_one_page():
    client = _zone_with_hosts(PAGE_SIZE // 4)
    provider = Route53Provider(client, Retrier())
    found = provider.read_rrsets('example.com', DOMAIN_NAMES, None)
    assert client.listings == ['_mta-sts.example.com']
    assert found['_mta-sts.example.com']['TXT'].values == [(b'v=STSv1; id=1;',)]
    assert found['_smtp._tls.example.com']['TXT'].values == [(b'v=TLSRPTv1; rua=mailto:r@example.com',)]
    assert found['mta-sts.example.com']['A'].values == ['192.0.2.7']
    assert found['_25._tcp.mx1.example.com']['TLSA'].values == [(3, 1, 1, 'ab' * 32)]


def test_route53_skips_the_records_between_names_far_apart_in_a_big_zone():
    client = _zone_with_hosts(5 * PAGE_SIZE)
    provider = Route53Provider(client, Retrier())
    # 3,000 'aaa...' and 'host...' records lie between _smtp._tls and mta-sts: the second page starts at mta-sts.
    found = provider.read_rrsets('example.com', DOMAIN_NAMES, None)
    assert client.listings == ['_mta-sts.example.com', 'mta-sts.example.com']
    assert found['mta-sts.example.com']['A'].values == ['192.0.2.7']
    assert found['_25._tcp.mx1.example.com']['TLSA'].values == [(3, 1, 1, 'ab' * 32)]
    assert found['_smtp._tls.example.com']['TXT'].values


def test_route53_reads_on_through_a_name_that_spans_pages():
    many = [_record_set('b.example.com', rtype, value) for rtype, value in (
        ('A', '192.0.2.9'), ('AAAA', '2001:db8::9'), ('TXT', '"v=STSv1; id=2;"'))]
    client = FakeRoute53([_record_set('a%04d.example.com' % n, 'A', '192.0.2.1') for n in range(PAGE_SIZE - 1)] + many)
    found = Route53Provider(client, Retrier()).read_rrsets('example.com', ['a0000.example.com', 'b.example.com'], None)
    # The first page ends inside b's RRsets: the next one goes on from the type where it ended.
    assert client.listings == ['a0000.example.com', 'b.example.com.']
    assert found['b.example.com']['A'].values == ['192.0.2.9']
    assert found['b.example.com']['TXT'].values == [(b'v=STSv1; id=2;',)]


def test_route53_order_puts_a_prefixed_label_first():
    client = FakeRoute53([_record_set('mx.example.com', 'A', '192.0.2.1'), _record_set('mx-2.example.com', 'A', '192.0.2.2'),
                          _record_set('www.example.com', 'A', '192.0.2.3')])
    found = Route53Provider(client, Retrier()).read_rrsets('example.com', ['mx.example.com', 'mx-2.example.com'], ('A',))
    assert client.listings == ['mx-2.example.com']
    assert found['mx.example.com']['A'].values == ['192.0.2.1'] and found['mx-2.example.com']['A'].values == ['192.0.2.2']


@pytest.mark.parametrize('zone, names, query', [
    ('example.com', ['_mta-sts.example.com'], 'name.exact=_mta-sts.example.com'),
    ('example.com', ['_mta-sts.shop.example.com', '_smtp._tls.shop.example.com', 'mta-sts.shop.example.com'],
     'name.endswith=.shop.example.com'),
    ('example.com', DOMAIN_NAMES, None),
])
def test_cloudflare_lists_the_names_common_parent_once(zone, names, query):
    with CloudflareApi() as api:
        api.add_zone('example.com')
        for number in range(30):
            api.add_record('example.com', 'A', 'host%d.example.com' % number, content='192.0.2.1')
        api.add_record('example.com', 'TXT', names[0], content='"v=STSv1; id=1;"')
        api.add_record('example.com', 'CNAME', names[-1], content='elsewhere.example.net')
        provider = CloudflareProvider.from_params({'api_token': 'good-token', 'base_url': api.base_url})
        provider.zones()
        api.reset_counts()
        found = provider.read_rrsets(zone, names, ('TXT',))
        assert api.counts()['GET dns_records'] == 1
        [(_method, target, _body)] = api.log()
        assert (query in target) if query else ('name.' not in target)
        assert found[names[0]]['TXT'].values == [(b'v=STSv1; id=1;',)]
        # A CNAME at a name is seen whatever the types asked for.
        assert found[names[-1]]['CNAME'].values == ['elsewhere.example.net']


def test_rfc2136_without_a_transfer_asks_every_question_at_once(monkeypatch):
    names = DOMAIN_NAMES[:3]
    rtypes = ('TXT', 'A')
    # Every query waits until all are in flight: asked one after another, the first would time out.
    everyone = threading.Barrier(len(names) * len(rtypes), timeout=5)

    class Answer(object):
        flags = rfc2136.dns.flags.AA
        answer = []

    def query(self, name, rtype):
        everyone.wait()
        return Answer()

    monkeypatch.setattr(rfc2136.Rfc2136Provider, '_read_by_transfer', lambda self, zone, names, rtypes: None)
    monkeypatch.setattr(rfc2136.Rfc2136Provider, '_query', query)
    found = rfc2136.Rfc2136Provider('127.0.0.1').read_rrsets('example.com', names, rtypes)
    assert sorted(found) == sorted(names) and all(not found[name]['TXT'].values for name in names)
