"""Planning of the policy host's records and of delegation, against an in-memory typed provider."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import HOST_RECORD, STS_RECORD, build_items, publish
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRset, empty_rrsets


class TypedMemory(Provider):
    """One zone, ``{name: {rtype: [values]}}``; counts reads and writes."""

    def __init__(self, records, ttl=300):
        self.records = records
        self.ttl = ttl
        self.reads = self.writes = 0

    def find_zone(self, name):
        return 'one.example'

    def read_rrsets(self, zone, names, rtypes):
        self.reads += 1
        found = empty_rrsets(names, rtypes)
        for name in names:
            for rtype, values in self.records.get(name, {}).items():
                if values and (rtypes is None or rtype in rtypes or rtype == 'CNAME'):
                    found[name][rtype] = RRset(name, rtype, self.ttl, values)
        return found

    def apply_rrsets(self, zone, changes):
        self.writes += 1
        for change in changes:
            self.records.setdefault(change.name, {})[change.rtype] = list(change.after)


def host_params(**overrides):
    base = dict(domain=None, domains=None, state='present', addresses=None, target=None)
    base.update(overrides)
    return base


def sts_params(**overrides):
    base = dict(domain=None, domains=None, state='present', id=None, policy=None, delegate_to=None, record_name=None)
    base.update(overrides)
    return base


def test_addresses_split_into_a_and_aaaa_and_a_rerun_plans_nothing():
    provider = TypedMemory({'mta-sts.a.one.example': {'TXT': [(b'keep',)], 'MX': ['10 mx.one.example.']}})
    items = publish(provider, build_items(host_params(domain='a.one.example', addresses=['192.0.2.1', '2001:DB8::1', '192.0.2.1']),
                                          HOST_RECORD), HOST_RECORD, 300)
    assert items[0].result()['after'] == {'A': ['192.0.2.1'], 'AAAA': ['2001:db8::1'], 'CNAME': []}
    assert provider.records['mta-sts.a.one.example']['TXT'] == [(b'keep',)]
    again = publish(provider, build_items(host_params(domain='a.one.example', addresses=['2001:db8::1', '192.0.2.1']),
                                          HOST_RECORD), HOST_RECORD, 300)
    assert not again[0].changed and provider.writes == 1 and provider.reads == 2


def test_cname_beside_other_types_is_refused_naming_them_before_any_write():
    provider = TypedMemory({'mta-sts.a.one.example': {'A': ['192.0.2.1'], 'TXT': [(b'keep',)], 'MX': ['10 mx.one.example.']}})
    with pytest.raises(ConflictError) as error:
        publish(provider, build_items(host_params(domains=['b.one.example', 'a.one.example'], target='p.hoster.example'),
                                      HOST_RECORD), HOST_RECORD, 300)
    assert 'mta-sts.a.one.example holds MX, TXT;' in str(error.value) and 'nothing was written' in str(error.value)
    assert provider.writes == 0


def test_addresses_replace_a_cname_and_absent_removes_only_the_managed_types():
    provider = TypedMemory({'mta-sts.a.one.example': {'CNAME': ['old.hoster.example']}})
    [item] = publish(provider, build_items(host_params(domain='a.one.example', addresses=['192.0.2.7']), HOST_RECORD), HOST_RECORD, 300)
    assert item.result()['before']['CNAME'] == ['old.hoster.example'] and provider.records['mta-sts.a.one.example']['CNAME'] == []
    provider.records['mta-sts.a.one.example']['TXT'] = [(b'keep',)]
    publish(provider, build_items(host_params(domain='a.one.example', state='absent'), HOST_RECORD), HOST_RECORD, 300)
    left = provider.records['mta-sts.a.one.example']
    assert (left['A'], left['CNAME'], left['TXT']) == ([], [], [(b'keep',)])


@pytest.mark.parametrize('options, message', [
    (dict(domain='a.example', addresses=['192.0.2.1', 'nope']), "addresses[1] 'nope': must be an IPv4 or IPv6 address"),
    (dict(domain='a.example', addresses='192.0.2.1'), "addresses '192.0.2.1': must be a non-empty list"),
    (dict(domain='a.example', addresses=[]), "addresses []: must be a non-empty list"),
    (dict(domains=[{'domain': 'a.example', 'target': 'x.example', 'addresses': ['192.0.2.1']}]),
     "domains[0].target 'x.example': give addresses or target, not both"),
    (dict(domain='a.example'), "addresses None: addresses or target is required with state=present"),
    (dict(domain='a.example', target='a b'), "target 'a b': must be a DNS name"),
    (dict(domains=[{'domain': 'a.example', 'id': 'x'}], target='t.example'), "domains[0].id 'x': unknown key; allowed: domain, state, addresses, target"),
])
def test_host_input_errors_name_the_field(options, message):
    with pytest.raises(ValidationError) as error:
        build_items(host_params(**options), HOST_RECORD)
    assert str(error.value).startswith(message)


def test_delegation_publishes_the_cname_and_drops_the_managed_txt_in_one_write():
    provider = TypedMemory({'_mta-sts.a.one.example': {'TXT': [(b'v=STSv1; id=old1;',)]}})
    items = build_items(sts_params(domains=['a.one.example', {'domain': 'b.one.example', 'delegate_to': 'b.one.example._mta-sts.h.example'}],
                                   delegate_to='A.One.Example._mta-sts.H.example.', id='unused1'), STS_RECORD)
    publish(provider, items, STS_RECORD, 300)
    assert provider.writes == 1
    assert provider.records['_mta-sts.a.one.example'] == {'TXT': [], 'CNAME': ['a.one.example._mta-sts.h.example']}
    assert provider.records['_mta-sts.b.one.example']['CNAME'] == ['b.one.example._mta-sts.h.example']
    result = items[0].result()
    assert (result['delegated_to'], result['before'], result['after']) == ('a.one.example._mta-sts.h.example', ['v=STSv1; id=old1;'], [])
    assert 'id' not in result
    headers = [diff['before_header'] for diff in items[0].diff()]
    assert headers == ['_mta-sts.a.one.example CNAME (ttl None)', '_mta-sts.a.one.example TXT (ttl 300)']


def test_delegation_beside_unrelated_txt_is_refused_naming_it():
    provider = TypedMemory({'_mta-sts.a.one.example': {'TXT': [(b'v=STSv1; id=old1;',), (b'note',)]}})
    with pytest.raises(ConflictError, match='holds TXT "note" that is not a v=STSv1 record; nothing was written'):
        publish(provider, build_items(sts_params(domain='a.one.example', delegate_to='t.h.example'), STS_RECORD), STS_RECORD, 300)
    assert provider.writes == 0


def test_absent_removes_only_our_own_delegation():
    provider = TypedMemory({'_mta-sts.a.one.example': {'CNAME': ['other.h.example']}})
    [item] = publish(provider, build_items(sts_params(domain='a.one.example', delegate_to='t.h.example', state='absent'), STS_RECORD),
                     STS_RECORD, 3600)
    assert not item.changed and provider.writes == 0
    publish(provider, build_items(sts_params(domain='a.one.example', delegate_to='other.h.example', state='absent'), STS_RECORD),
            STS_RECORD, 300)
    assert provider.records['_mta-sts.a.one.example']['CNAME'] == []


def test_record_name_puts_the_txt_at_the_hosters_name():
    provider = TypedMemory({})
    [item] = publish(provider, build_items(sts_params(domain='c.example', record_name='c.example._mta-sts.one.example', id='abc1'),
                                           STS_RECORD), STS_RECORD, 300)
    assert item.name == 'c.example._mta-sts.one.example' and item.result()['record_name'] == item.name
    assert provider.records[item.name]['TXT'] == [(b'v=STSv1; id=abc1;',)]


@pytest.mark.parametrize('options, message', [
    (dict(domain='a.example', delegate_to='x.example', record_name='y.example'),
     "record_name 'y.example': give delegate_to (the customer side) or record_name (the hoster side), not both"),
    (dict(domain='a.example', delegate_to='bad name'), "delegate_to 'bad name': must be a DNS name"),
    (dict(domain='a.example', record_name='single', id='x'), "record_name 'single': must be a name in a zone"),
    (dict(domains=[{'domain': 'a.example', 'delegate_to': 'x..y'}]), "domains[0].delegate_to 'x..y': must be a DNS name"),
])
def test_delegation_input_errors_name_the_field(options, message):
    with pytest.raises(ValidationError) as error:
        build_items(sts_params(**options), STS_RECORD)
    assert str(error.value).startswith(message)


def test_delegation_replaces_a_cname_to_another_name():
    provider = TypedMemory({'_mta-sts.a.one.example': {'CNAME': ['old.h.example']}})
    [item] = publish(provider, build_items(sts_params(domain='a.one.example', delegate_to='new.h.example'), STS_RECORD), STS_RECORD, 300)
    assert item.result()['cname'] == {'before': ['old.h.example'], 'after': ['new.h.example']}
    assert provider.records['_mta-sts.a.one.example']['CNAME'] == ['new.h.example'] and provider.writes == 1
