"""Several kinds of record planned together: one read and at most one write per zone (issue 13)."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import (
    HOST_RECORD, STS_RECORD, TLSA_RECORD, TLSRPT_RECORD, apply_plan, build_items, plan, publish,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRset, empty_rrsets

SPKI = '0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6'


class CountingZones(Provider):
    """Zones as ``{zone: {name: {rtype: [values]}}}``; records every read (with the types asked) and write."""

    def __init__(self, zones, ttl=300):
        self.zones = zones
        self.ttl = ttl
        self.ttls = {}      # {(name, rtype): ttl} of what was written
        self.reads, self.writes = [], []

    def find_zone(self, name):
        return max((zone for zone in self.zones if name.endswith('.' + zone)), key=len)

    def read_rrsets(self, zone, names, rtypes):
        self.reads.append((zone, tuple(names), rtypes))
        found = empty_rrsets(names, rtypes)
        for name in names:
            for rtype, values in self.zones[zone].get(name, {}).items():
                if values and (rtypes is None or rtype in rtypes or rtype == 'CNAME'):
                    found[name][rtype] = RRset(name, rtype, self.ttls.get((name, rtype), self.ttl), values)
        return found

    def apply_rrsets(self, zone, changes):
        self.writes.append((zone, sorted((change.name, change.rtype) for change in changes)))
        for change in changes:
            self.zones[zone].setdefault(change.name, {})[change.rtype] = list(change.after)
            self.ttls[(change.name, change.rtype)] = change.ttl


def items_of(kind, **params):
    base = dict(domain=None, domains=None, state='present')
    base.update((key, None) for key in kind.item_keys + kind.place_keys + kind.setting_keys)
    base.update(params)
    return build_items(base, kind)


def whole_set(domain, mx):
    return (items_of(STS_RECORD, domain=domain, id='abc1')
            + items_of(TLSRPT_RECORD, domain=domain, rua='mailto:tlsrpt@' + domain)
            + items_of(HOST_RECORD, domain=domain, addresses=['192.0.2.1'])
            + items_of(TLSA_RECORD, host=mx, records=['3 1 1 ' + SPKI], smtp_port=25))


def test_two_kinds_in_one_zone_make_one_read_and_one_write():
    provider = CountingZones({'one.example': {}})
    items = items_of(STS_RECORD, domain='a.one.example', id='abc1') + items_of(TLSRPT_RECORD, domain='a.one.example',
                                                                               rua='mailto:r@one.example')
    plan(provider, items, None, 3600)
    assert provider.reads == [('one.example', ('_mta-sts.a.one.example', '_smtp._tls.a.one.example'), ('TXT',))]
    apply_plan(provider, items)
    assert provider.writes == [('one.example', [('_mta-sts.a.one.example', 'TXT'), ('_smtp._tls.a.one.example', 'TXT')])]
    again = items_of(STS_RECORD, domain='a.one.example', id='abc1') + items_of(TLSRPT_RECORD, domain='a.one.example',
                                                                               rua='mailto:r@one.example')
    plan(provider, again, None, 3600)
    apply_plan(provider, again)
    assert not any(item.changed for item in again)
    assert len(provider.reads) == 2 and len(provider.writes) == 1


def test_all_four_kinds_read_each_zone_once_for_every_type():
    provider = CountingZones({'one.example': {}, 'two.example': {}})
    items = whole_set('one.example', 'mx.one.example') + whole_set('two.example', 'mx.two.example')
    plan(provider, items, None, 3600)
    # The host record reads every type at its name, so the one read asks for every type.
    assert [(zone, rtypes) for zone, _, rtypes in provider.reads] == [('one.example', None), ('two.example', None)]
    assert provider.reads[0][1] == ('_mta-sts.one.example', '_smtp._tls.one.example', 'mta-sts.one.example',
                                    '_25._tcp.mx.one.example')
    apply_plan(provider, items)
    assert [zone for zone, _ in provider.writes] == ['one.example', 'two.example']
    assert provider.writes[0][1] == [('_25._tcp.mx.one.example', 'TLSA'), ('_mta-sts.one.example', 'TXT'),
                                     ('_smtp._tls.one.example', 'TXT'), ('mta-sts.one.example', 'A')]


def test_each_kind_sees_only_its_own_types_as_a_run_of_it_alone_would():
    # A TXT value at the host name is not the host record's business, nor a TLSA kind's; the TXT kinds never see A.
    provider = CountingZones({'one.example': {'mta-sts.one.example': {'TXT': [(b'keep',)], 'A': ['192.0.2.1']},
                                              '_mta-sts.one.example': {'TXT': [(b'v=STSv1; id=abc1',)]}}}, ttl=3600)
    items = whole_set('one.example', 'mx.one.example')
    plan(provider, items, None, 3600)
    sts, tlsrpt, host, tlsa = items
    assert not sts.changed and tlsrpt.changed and tlsa.changed
    assert host.result()['after'] == {'A': ['192.0.2.1'], 'AAAA': [], 'CNAME': []} and not host.changed


def test_an_items_own_ttl_overrides_the_runs():
    provider = CountingZones({'one.example': {}})
    items = whole_set('one.example', 'mx.one.example')
    items[1].ttl = 0
    plan(provider, items, None, 3600)
    assert [change.ttl for change in items[1].changes] == [0]
    assert {change.ttl for item in items if item is not items[1] for change in item.changes} == {3600}


def test_a_conflict_in_one_kind_refuses_the_whole_zones_write():
    provider = CountingZones({'one.example': {'_smtp._tls.one.example': {'CNAME': ['reports.hoster.example']}}})
    items = whole_set('one.example', 'mx.one.example')
    with pytest.raises(ConflictError, match='_smtp._tls.one.example is a CNAME to reports.hoster.example'):
        publish(provider, items, None, 3600)
    assert provider.writes == [] and len(provider.reads) == 1


def test_single_kind_callers_are_unchanged():
    provider = CountingZones({'one.example': {}})
    items = items_of(STS_RECORD, domains=['a.one.example', 'b.one.example'], id='abc1')
    publish(provider, items, STS_RECORD, 600)
    assert provider.reads == [('one.example', ('_mta-sts.a.one.example', '_mta-sts.b.one.example'), ('TXT',))]
    assert [change.ttl for item in items for change in item.changes] == [600, 600]
    assert len(provider.writes) == 1
