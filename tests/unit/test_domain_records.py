"""Several kinds of record planned together: one read and at most one write per zone (issue 13)."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._domain_records import build_domains
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ValidationError
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
    assert [(zone, rtypes) for zone, _names, rtypes in provider.reads] == [('one.example', None), ('two.example', None)]
    assert provider.reads[0][1] == ('_mta-sts.one.example', '_smtp._tls.one.example', 'mta-sts.one.example',
                                    '_25._tcp.mx.one.example')
    apply_plan(provider, items)
    assert [zone for zone, _changes in provider.writes] == ['one.example', 'two.example']
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


def domains_params(domains, **task):
    base = dict(domains=domains, sts=None, tlsrpt=None, host=None, state='present')
    base.update(task)
    return base


@pytest.mark.parametrize('domains, task, field, words', [
    ([{'domain': name} for name in ('a.example', 'b.example', 'c.example')] + [{'domain': 'd.example', 'tlsrpt': {'rua': 'http://x.example'}}], {},
     'domains[3].tlsrpt.rua', 'mailto'),
    ([{'domain': 'a.example', 'tlsa': [{'host': 'mx.a.example', 'records': ['3 1 1 ' + SPKI]},
                                       {'host': 'mx2.a.example', 'current': 'not PEM'}]}], {},
     'domains[0].tlsa[1].current', 'PEM'),
    ([{'domain': 'a.example', 'sts': {'idd': 'x'}}], {}, 'domains[0].sts.idd', 'unknown key'),
    ([{'domain': 'a.example', 'colour': 'blue'}], {}, 'domains[0].colour', 'unknown key'),
    ([{'domain': 'a.example', 'sts': {'domain': 'b.example', 'id': 'x'}}], {}, 'domains[0].sts.domain', 'unknown key'),
    ([{'domain': 'a.example', 'host': ['192.0.2.1']}], {}, 'domains[0].host', 'must be a dict'),
    ([{'domain': 'a.example', 'sts': 'domain-ish'}], {}, 'domains[0].sts', 'must be a dict'),
    ([{'domain': 'a.example', 'tlsa': {'host': 'mx.a.example'}}], {}, 'domains[0].tlsa', 'must be a list'),
    ([{'domain': 'a.example', 'sts': {'state': 'gone'}}], {}, 'domains[0].sts.state', 'present or absent'),
    ([{'domain': 'a.example', 'tlsrpt': {'ttl': -1}}], {'tlsrpt': {'rua': 'mailto:r@a.example'}},
     'domains[0].tlsrpt.ttl', '0 to 2147483647'),
    ([{'domain': 'a.example'}, {'domain': 'A.example.'}], {}, 'domains[1].domain', 'listed more than once (also domains[0])'),
    ([{'domain': 'a.example', 'tlsa': [{'host': 'mx.hoster.example', 'records': ['3 1 1 ' + SPKI]}]},
      {'domain': 'b.example', 'tlsa': [{'host': 'mx.hoster.example', 'records': ['3 1 1 ' + SPKI]}]}], {},
     'domains[1].tlsa[0]', 'managed by domains[0].tlsa[0] too'),
    ([{'domain': 'a.example', 'sts': {'record_name': '_mta-sts.b.example', 'id': 'x'}},
      {'domain': 'b.example', 'sts': {'id': 'y'}}], {}, 'domains[1].sts', 'managed by domains[0].sts too'),
    ([{'domain': 'a.example'}], {'tlsrpt': {}}, 'domains[0].tlsrpt.rua', 'required'),
    ([], {}, 'domains', 'at least one'),
])
def test_every_domain_and_kind_is_validated_with_the_field_named(domains, task, field, words):
    with pytest.raises(ValidationError) as raised:
        build_domains(domains_params(domains, **task))
    assert raised.value.field == field and words in str(raised.value)


def test_task_defaults_apply_to_every_domain_unless_it_gives_its_own_or_opts_out():
    domains = build_domains(domains_params(
        [{'domain': 'a.example'},
         {'domain': 'b.example', 'sts': {'policy': {'mode': 'testing', 'mx': ['mx.b.example'], 'max_age': 604800}}},
         {'domain': 'c.example', 'host': False, 'sts': {'state': 'absent'}, 'tlsrpt': {'ttl': 60}}],
        sts={'id': 'task1'}, tlsrpt={'rua': 'mailto:r@x.example'}, host={'addresses': ['192.0.2.1']}))
    a, b, c = domains
    assert a.kinds['sts'].extra['id'] == 'task1' and a.kinds['host'].name == 'mta-sts.a.example'
    # id and policy are taken together: b's policy replaces the task's id instead of clashing with it.
    assert 'policy' in b.kinds['sts'].extra and b.kinds['sts'].extra['id'] != 'task1'
    assert c.kinds['host'] is None and c.kinds['sts'].state == 'absent' and c.kinds['tlsrpt'].ttl == 60
    assert [item.kind for item in a.items] == [STS_RECORD, TLSRPT_RECORD, HOST_RECORD]
    assert a.kinds['tlsa'] == [] and a.kinds['sts'].ttl is None


def test_a_kind_no_domain_or_task_gives_is_not_managed():
    [domain] = build_domains(domains_params([{'domain': 'a.example', 'tlsrpt': {'rua': 'mailto:r@a.example'}}]))
    assert [item.name for item in domain.items] == ['_smtp._tls.a.example']


def test_results_are_per_domain_with_each_kinds_own_result():
    provider = CountingZones({'one.example': {}})
    domains = build_domains(domains_params(
        [{'domain': 'a.one.example', 'tlsa': [{'host': 'mx.one.example', 'records': ['3 1 1 ' + SPKI]}]},
         {'domain': 'b.one.example', 'tlsrpt': False}],
        tlsrpt={'rua': 'mailto:r@one.example'}, state='present'))
    publish(provider, [item for domain in domains for item in domain.items], None, 3600)
    first, second = [domain.result() for domain in domains]
    assert first['domain'] == 'a.one.example' and first['changed'] is True
    assert first['tlsrpt']['name'] == '_smtp._tls.a.one.example' and first['sts'] is None and first['host'] is None
    assert [entry['host'] for entry in first['tlsa']] == ['mx.one.example']
    assert second == {'domain': 'b.one.example', 'changed': False, 'sts': None, 'tlsrpt': None, 'host': None, 'tlsa': []}
    assert len(provider.reads) == 1 and len(provider.writes) == 1


def test_the_tasks_state_is_every_kinds_unless_it_gives_its_own():
    [domain] = build_domains(domains_params(
        [{'domain': 'a.example', 'sts': {}, 'host': {'state': 'present', 'target': 'mta-sts.hoster.example'},
          'tlsa': [{'host': 'mx.a.example'}]}], tlsrpt={}, state='absent'))
    assert [(item.name, item.state) for item in domain.items] == [
        ('_mta-sts.a.example', 'absent'), ('_smtp._tls.a.example', 'absent'), ('mta-sts.a.example', 'present'),
        ('_25._tcp.mx.a.example', 'absent')]
