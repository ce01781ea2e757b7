import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import (
    STS_RECORD, TLSRPT_RECORD, PublishError, build_items, publish,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset


class MemoryProvider(Provider):
    """Zones in a dict; records every call so tests can count reads and writes."""

    def __init__(self, zones, fail_zone=None):
        self.zones = zones            # {zone: {name: TxtRRset}}
        self.fail_zone = fail_zone
        self.calls = []

    def find_zone(self, name):
        self.calls.append(('find_zone', name))
        for zone in sorted(self.zones, key=len, reverse=True):
            if name.endswith('.' + zone):
                return zone
        raise ProviderError('no zone for %s' % name)

    def read(self, zone, names):
        self.calls.append(('read', zone, tuple(names)))
        return dict((name, self.zones[zone].get(name, TxtRRset(name))) for name in names)

    def apply(self, zone, changes):
        self.calls.append(('apply', zone, tuple(change.name for change in changes)))
        if zone == self.fail_zone:
            raise ProviderError('server said no')
        for change in changes:
            self.zones[zone][change.name] = TxtRRset(change.name, change.ttl, change.after)

    def count(self, kind):
        return sum(1 for call in self.calls if call[0] == kind)


def params(**overrides):
    base = dict(domain=None, domains=None, state='present', id=None, policy=None, rua=None)
    base.update(overrides)
    return base


def test_items_inherit_task_values_unless_they_have_their_own():
    items = build_items(params(domains=['a.example', {'domain': 'b.example', 'policy': {'mode': 'none', 'max_age': 0}},
                                        {'domain': 'c.example', 'state': 'absent'}], id='task1'), STS_RECORD)
    assert [item.wanted for item in items][0] == 'v=STSv1; id=task1;'
    assert items[1].extra['id'] != 'task1' and len(items[1].extra['id']) == 32
    assert items[2].wanted is None and items[2].state == 'absent'
    assert [item.name for item in items] == ['_mta-sts.a.example', '_mta-sts.b.example', '_mta-sts.c.example']


@pytest.mark.parametrize('options, message', [
    (dict(domains=[]), "domains []: give at least one domain"),
    (dict(domains=['a.example', 'A.example.'], id='x'), "domains[1].domain 'a.example': listed more than once"),
    (dict(domains=[{'domain': 'a.example', 'mode': 'x'}], id='x'), "domains[0].mode 'x': unknown key; allowed: domain, state, id, policy"),
    (dict(domains=[{'domain': 'a.example', 'state': 'gone'}], id='x'), "domains[0].state 'gone': must be present or absent"),
    (dict(domain='a.example'), "id None: id or policy is required with state=present"),
    (dict(domain='a.example', policy=['mode']), "policy ['mode']: must be a dict or the policy text"),
    (dict(domains=['a.example', {'domain': 'b.example', 'policy': {'mode': 'enforce', 'mx': ['*.*.example.com'], 'max_age': 1}}], id='x'),
     "domains[1].mx '*.*.example.com': a wildcard may only be the whole left-most label"),
])
def test_build_items_errors_name_the_field(options, message):
    with pytest.raises(ValidationError) as error:
        build_items(params(**options), STS_RECORD)
    assert str(error.value) == message


def test_tlsrpt_items_need_rua():
    with pytest.raises(ValidationError, match='rua is required'):
        build_items(params(domain='a.example'), TLSRPT_RECORD)


def test_managed_records_are_recognised_by_their_first_field():
    assert STS_RECORD.is_managed('v=STSv1; id=a;') and STS_RECORD.is_managed('v=STSv1 ;id=a')
    assert not STS_RECORD.is_managed('v=STSv10; id=a;') and not STS_RECORD.is_managed('x v=STSv1;')
    assert TLSRPT_RECORD.is_managed('v=TLSRPTv1;rua=mailto:a@b.example')
    assert not TLSRPT_RECORD.is_managed('v=STSv1; id=a;')


def test_publish_reads_and_writes_once_per_zone_and_not_at_all_when_nothing_changes():
    provider = MemoryProvider({'one.example': {}, 'two.example': {}})
    domains = ['a.one.example', 'b.one.example', 'c.two.example']
    publish(provider, build_items(params(domains=domains, id='x1'), STS_RECORD), STS_RECORD, 3600)
    assert provider.count('read') == 2 and provider.count('apply') == 2
    provider.calls = []
    items = publish(provider, build_items(params(domains=domains, id='x1'), STS_RECORD), STS_RECORD, 3600)
    assert provider.count('read') == 2 and provider.count('apply') == 0
    assert not any(item.change.changed for item in items)


def test_check_mode_plans_but_never_applies():
    provider = MemoryProvider({'one.example': {}})
    items = publish(provider, build_items(params(domain='a.one.example', id='x1'), STS_RECORD), STS_RECORD, 3600, check_mode=True)
    assert items[0].change.changed and provider.count('apply') == 0


def test_given_zone_skips_discovery_and_must_hold_every_name():
    provider = MemoryProvider({'one.example': {}})
    publish(provider, build_items(params(domain='a.one.example', id='x1'), STS_RECORD), STS_RECORD, 3600, zone='One.Example.')
    assert provider.count('find_zone') == 0
    with pytest.raises(ValidationError, match="zone 'one.example': _mta-sts.a.two.example is not inside it"):
        publish(provider, build_items(params(domain='a.two.example', id='x1'), STS_RECORD), STS_RECORD, 3600, zone='one.example')


def test_cname_stops_the_run_before_any_write():
    provider = MemoryProvider({'one.example': {'_mta-sts.b.one.example': TxtRRset('_mta-sts.b.one.example', cname='sts.provider.example')}})
    with pytest.raises(ValidationError) as error:
        publish(provider, build_items(params(domains=['a.one.example', 'b.one.example'], id='x1'), STS_RECORD), STS_RECORD, 3600)
    assert 'CNAME sts.provider.example' in str(error.value)
    assert provider.count('apply') == 0


def test_failure_in_a_later_zone_says_what_was_applied():
    provider = MemoryProvider({'one.example': {}, 'two.example': {}, 'three.example': {}}, fail_zone='two.example')
    items = build_items(params(domains=['a.one.example', 'b.two.example', 'c.three.example'], id='x1'), STS_RECORD)
    with pytest.raises(PublishError) as error:
        publish(provider, items, STS_RECORD, 3600)
    assert str(error.value) == ('zone two.example: server said no (already applied to zones one.example; '
                                'not attempted: three.example)')
    assert [item.applied for item in error.value.items] == [True, False, False]
