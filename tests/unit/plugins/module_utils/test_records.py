import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import (
    STS_RECORD, TLSRPT_RECORD, PublishError, build_items, publish, served_policy,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRset
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

    def read_rrsets(self, zone, names, rtypes):
        self.calls.append(('read', zone, tuple(names)))
        found = {}
        for name in names:
            seeded = self.zones[zone].get(name, TxtRRset(name))
            found[name] = {'TXT': RRset(name, 'TXT', seeded.ttl, seeded.values)}
            if seeded.cname:
                found[name]['CNAME'] = RRset(name, 'CNAME', 300, [seeded.cname])
        return found

    def apply_rrsets(self, zone, changes):
        self.calls.append(('apply', zone, tuple(change.name for change in changes)))
        if zone == self.fail_zone:
            raise ProviderError('server said no')
        for change in changes:
            seeded = self.zones[zone].get(change.name, TxtRRset(change.name))
            if change.rtype == 'TXT':
                seeded = TxtRRset(change.name, change.ttl, change.after, seeded.cname)
            else:
                seeded.cname = change.after[0] if change.after else None
            self.zones[zone][change.name] = seeded

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
    (dict(domains=[{'domain': 'a.example', 'mode': 'x'}], id='x'),
     "domains[0].mode 'x': unknown key; allowed: domain, state, id, policy, delegate_to, record_name"),
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


def test_cname_is_a_conflict_that_stops_the_run_before_any_write():
    provider = MemoryProvider({'one.example': {'_mta-sts.b.one.example': TxtRRset('_mta-sts.b.one.example', cname='sts.provider.example')}})
    with pytest.raises(ConflictError) as error:
        publish(provider, build_items(params(domains=['a.one.example', 'b.one.example'], id='x1'), STS_RECORD), STS_RECORD, 3600)
    assert str(error.value).startswith('_mta-sts.b.one.example is a CNAME to sts.provider.example (delegated')
    assert 'nothing was written' in str(error.value)
    assert provider.count('apply') == 0


def test_concurrent_edit_in_a_later_zone_is_a_conflict_naming_what_was_applied():
    class RacingProvider(MemoryProvider):
        def apply_rrsets(self, zone, changes):
            if zone == 'two.example':
                raise ConflictError('the TXT records changed since they were read; nothing was applied, re-run')
            MemoryProvider.apply_rrsets(self, zone, changes)

    provider = RacingProvider({'one.example': {}, 'two.example': {}})
    items = build_items(params(domains=['a.one.example', 'b.two.example'], id='x1'), STS_RECORD)
    with pytest.raises(PublishError) as error:
        publish(provider, items, STS_RECORD, 3600)
    assert isinstance(error.value.cause, ConflictError)
    assert str(error.value) == ('zone two.example: the TXT records changed since they were read; nothing was applied, '
                                're-run (already applied to zones one.example; not attempted: none)')
    assert [item.applied for item in error.value.items] == [True, False]


def test_failure_in_a_later_zone_says_what_was_applied():
    provider = MemoryProvider({'one.example': {}, 'two.example': {}, 'three.example': {}}, fail_zone='two.example')
    items = build_items(params(domains=['a.one.example', 'b.two.example', 'c.three.example'], id='x1'), STS_RECORD)
    with pytest.raises(PublishError) as error:
        publish(provider, items, STS_RECORD, 3600)
    assert str(error.value) == ('zone two.example: server said no (already applied to zones one.example; '
                                'not attempted: three.example)')
    assert [item.applied for item in error.value.items] == [True, False, False]


@pytest.mark.parametrize('policy, warning', [
    ({'mode': 'enforce', 'mx': ['mx.a.example'], 'max_age': 0}, 'a.example: max_age 0 is under a day (86400)'),
    ('version: STSv1\r\nmode: testing\r\nmx: mx.a.example\r\nmax_age: 3600\r\n', 'a.example: max_age 3600 is under a day'),
    ({'mode': 'enforce', 'mx': ['mx.a.example'], 'max_age': 86400}, 'a.example: max_age 86400 is under a week (604800) in enforce mode'),
    ({'mode': 'testing', 'mx': ['mx.a.example'], 'max_age': 86400}, None),
    ({'mode': 'none', 'max_age': 0}, None),
])
def test_short_max_age_gives_a_warning(policy, warning):
    item = build_items(params(domain='a.example', policy=policy), STS_RECORD)[0]
    if warning is None:
        assert item.warnings == []
    else:
        assert len(item.warnings) == 1 and item.warnings[0].startswith(warning)


def test_an_id_gives_no_max_age_warning_and_no_policy_result():
    item = build_items(params(domain='a.example', id='x1'), STS_RECORD)[0]
    assert item.warnings == [] and 'policy' not in item.extra


def test_u_label_domain_becomes_the_a_label_and_the_given_name_is_kept():
    items = build_items(params(domains=['B\u00fccher.example', 'plain.example'], id='x1'), STS_RECORD)
    assert items[0].domain == 'xn--bcher-kva.example' and items[0].name == '_mta-sts.xn--bcher-kva.example'
    assert items[0].extra['domain_unicode'] == 'B\u00fccher.example'
    assert 'domain_unicode' not in items[1].extra
    with pytest.raises(ValidationError, match='listed more than once'):
        build_items(params(domains=['b\u00fccher.example', 'xn--bcher-kva.example'], id='x1'), STS_RECORD)


@pytest.mark.parametrize('rua', ['https://r.example/t?a=1,mailto:x@example.com', ['https://r.example/t?a=1,2']])
def test_rua_with_a_comma_is_refused_in_either_shape(rua):
    with pytest.raises(ValidationError, match='a comma separates URIs in the record'):
        build_items(params(domain='a.example', rua=rua), TLSRPT_RECORD)


OLD = {'mode': 'testing', 'mx': ['mx.one.example'], 'max_age': 604800}
NEW = {'mode': 'enforce', 'mx': ['mx.one.example'], 'max_age': 604800}
URL = 'https://mta-sts.a.one.example/.well-known/mta-sts.txt'


def served(policy=None, **facts):
    base = {'url': URL, 'error': None, 'status': 200, 'truncated': False,
            'body': render_policy(policy).encode() if policy else None}
    base.update(facts)
    return base


def planned(state='present', policy='new', old='old'):
    # Names, not the dicts themselves, as defaults: a dict default would be shared between calls.
    policy = NEW if policy == 'new' else policy
    old = OLD if old == 'old' else old
    records = ['v=STSv1; id=%s;' % policy_id(old)] if old else []
    provider = MemoryProvider({'one.example': {'_mta-sts.a.one.example': TxtRRset('_mta-sts.a.one.example', 3600, [
        (value.encode(),) for value in records])}})
    values = dict(policy=policy) if state == 'present' else {}
    items = build_items(params(domain='a.one.example', state=state, **values), STS_RECORD)
    return publish(provider, items, STS_RECORD, 3600, check_mode=True)[0]


def test_live_policy_is_asked_only_before_a_removal_or_an_id_change():
    assert STS_RECORD.needs_live_policy(planned('absent'))
    assert STS_RECORD.needs_live_policy(planned())
    assert not STS_RECORD.needs_live_policy(planned('absent', old=None))
    assert not STS_RECORD.needs_live_policy(planned(policy=OLD))
    assert not STS_RECORD.needs_live_policy(planned(old=None))


@pytest.mark.parametrize('facts, warning', [
    (served(NEW), 'serves mode enforce (max_age 604800): senders that cached it keep applying it'),
    (served({'mode': 'none', 'max_age': 86400}), None),
    (served(status=404), 'could not be confirmed to be mode none (%s answered HTTP 404)' % URL),
    (served(error={'kind': 'dns', 'message': 'mta-sts.a.one.example has no address'}),
     'could not be confirmed to be mode none (%s: mta-sts.a.one.example has no address)' % URL),
    (served(body=b'<html>'), 'serves an invalid policy'),
])
def test_removal_warns_unless_the_live_policy_is_mode_none(facts, warning):
    item = planned('absent')
    STS_RECORD.judge_live(item, facts)
    if warning is None:
        assert item.warnings == []
    else:
        assert len(item.warnings) == 1 and warning in item.warnings[0]
        assert item.warnings[0].startswith('a.one.example: removing _mta-sts.a.one.example')
        assert item.warnings[0].endswith('RFC 8461 section 8.3: publish mode: none with a new id first, keep it for '
                                         'the old max_age, then remove the record')


def test_diff_shows_the_old_policy_when_the_host_still_serves_it():
    item = planned()
    STS_RECORD.judge_live(item, served(OLD))
    assert item.extra['previous_policy'] == render_policy(OLD)
    txt, policy = item.diff()
    assert policy['before_header'] == 'policy behind id %s' % policy_id(OLD)
    assert policy['after_header'] == 'policy behind id %s' % policy_id(NEW)
    assert policy['before'] == 'version: STSv1\nmode: testing\nmx: mx.one.example\nmax_age: 604800\n'
    assert policy['after'] == 'version: STSv1\nmode: enforce\nmx: mx.one.example\nmax_age: 604800\n'


@pytest.mark.parametrize('facts, note', [
    (served(NEW), 'not known (the policy host already serves the new policy, id %s)' % policy_id(NEW)),
    (served({'mode': 'none', 'max_age': 1}), 'not known (the policy host serves id %s)' % policy_id({'mode': 'none', 'max_age': 1})),
    (served(status=500), 'not known (%s answered HTTP 500)' % URL),
])
def test_diff_says_why_the_old_policy_is_not_known(facts, note):
    item = planned()
    STS_RECORD.judge_live(item, facts)
    assert 'previous_policy' not in item.extra
    assert item.diff()[1]['before'] == '# policy behind id %s: %s\n' % (policy_id(OLD), note)


def test_diff_says_when_the_look_up_was_turned_off():
    item = planned()
    STS_RECORD.skip_live(item, 'policy_check.enabled is false')
    assert item.diff()[1]['before'] == '# policy behind id %s: not looked up (policy_check.enabled is false)\n' % policy_id(OLD)


def test_served_policy_needs_a_complete_valid_200():
    assert served_policy(served(OLD)) == (render_policy(OLD), None)
    assert served_policy(served(OLD, truncated=True)) == (None, '%s serves more than 64 KiB' % URL)
