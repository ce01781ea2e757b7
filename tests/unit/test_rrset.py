import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import (
    RRset, RRsetChange, collect, decode, empty_rrsets, encode, plan_rrset, read_value,
)

SHA256 = 'AB' * 32


@pytest.mark.parametrize('rtype, text, value, presentation', [
    ('A', ' 192.0.2.10 ', '192.0.2.10', '192.0.2.10'),
    ('AAAA', '2001:DB8:0:0:0:0:0:10', '2001:db8::10', '2001:db8::10'),
    ('CNAME', 'Policy.Hoster.Example.', 'policy.hoster.example', 'policy.hoster.example.'),
    ('CNAME', 'example.com._mta-sts.hoster.example', 'example.com._mta-sts.hoster.example', 'example.com._mta-sts.hoster.example.'),
    ('TLSA', '3 1 1 ' + SHA256[:32] + ' ' + SHA256[32:], (3, 1, 1, SHA256.lower()), '3 1 1 ' + SHA256.lower()),
    ('TLSA', '2 0 0 30820122', (2, 0, 0, '30820122'), '2 0 0 30820122'),
    ('TXT', '"v=STSv1; id=a;" "b\\034c"', (b'v=STSv1; id=a;', b'b"c'), '"v=STSv1; id=a;" "b\\"c"'),
])
def test_decode_gives_the_canonical_value_and_encode_its_presentation(rtype, text, value, presentation):
    assert decode(rtype, text) == value
    assert encode(rtype, value) == presentation
    assert decode(rtype, encode(rtype, value)) == value


@pytest.mark.parametrize('rtype, text, rule', [
    ('A', '192.0.2.300', "A value '192.0.2.300': must be an IPv4 address"),
    ('A', '2001:db8::1', "A value '2001:db8::1': must be an IPv4 address"),
    ('AAAA', '192.0.2.1', "AAAA value '192.0.2.1': must be an IPv6 address"),
    ('A', 10, "A value 10: must be a string"),
    ('CNAME', 'bad name.example', "CNAME value 'bad name.example': must be a DNS name"),
    ('CNAME', 'a..example', "CNAME value 'a..example': must be a DNS name"),
    ('CNAME', '-a.example', "CNAME value '-a.example': must be a DNS name"),
    ('CNAME', 'a' * 64 + '.example', 'at most 63 characters each'),
    ('TLSA', '3 1 1', 'must be "usage selector matching-type data"'),
    ('TLSA', '3 1 256 ab', 'must be numbers 0 to 255'),
    ('TLSA', '3 1 1 abc', 'an even number of digits'),
    ('TLSA', '3 1 1 zz', 'must be hexadecimal'),
    ('TLSA', '3 1 1 abcd', 'matching type 1 needs 64 hex digits, found 4'),
    ('TLSA', '3 1 2 ' + SHA256, 'matching type 2 needs 128 hex digits, found 64'),
    ('TXT', '"open', 'unterminated quoted string'),
    ('MX', '10 mx.example.', "record type 'MX': not one of TXT, A, AAAA, CNAME, TLSA"),
])
def test_invalid_values_are_refused_naming_the_rule(rtype, text, rule):
    with pytest.raises(ValueError) as error:
        decode(rtype, text)
    assert rule in str(error.value)


def test_encode_refuses_a_type_it_does_not_write():
    with pytest.raises(ValueError, match="record type 'MX'"):
        encode('MX', '10 mx.example.')


def test_types_not_written_are_read_as_their_text():
    assert read_value('MX', '10   mx1.example.') == '10 mx1.example.'
    assert read_value('A', '192.0.2.1') == '192.0.2.1'


def test_collect_keeps_wanted_types_and_any_cname_and_takes_a_duplicate_once():
    found = empty_rrsets(['a.example', 'b.example'], ('A',))
    collect(found, 'a.example', 'A', ('A',), 300, '192.0.2.1')
    collect(found, 'a.example', 'A', ('A',), 300, '192.0.2.1')
    collect(found, 'a.example', 'MX', ('A',), 300, '10 mx.example.')
    collect(found, 'b.example', 'CNAME', ('A',), 60, 'target.example')
    collect(found, 'elsewhere.example', 'A', ('A',), 60, '192.0.2.9')
    assert found['a.example']['A'].values == ['192.0.2.1'] and set(found['a.example']) == {'A'}
    assert found['b.example']['CNAME'].values == ['target.example'] and found['b.example']['A'].values == []
    everything = empty_rrsets(['a.example'], None)
    collect(everything, 'a.example', 'MX', None, 300, '10 mx.example.')
    assert list(everything['a.example']) == ['MX']


def test_a_value_keeps_its_own_ttl_where_the_backend_has_one_per_value():
    rrset = RRset('n', 'A')
    rrset.add('192.0.2.1', 300)
    rrset.add('192.0.2.2', 600)
    assert (rrset.ttl_of('192.0.2.1'), rrset.ttl_of('192.0.2.2'), rrset.ttl_of('other')) == (300, 600, 600)


def test_plan_in_any_order_is_no_change():
    rrset = RRset('n', 'A', 300, ['192.0.2.1', '192.0.2.2'])
    change = plan_rrset(rrset, ['192.0.2.2', '192.0.2.1'], 300)
    assert not change.changed and change.remove == [] and change.add == []
    assert change.after == ['192.0.2.1', '192.0.2.2']


def test_plan_adds_and_removes_only_what_differs():
    change = plan_rrset(RRset('n', 'A', 300, ['192.0.2.1', '192.0.2.2']), ['192.0.2.2', '192.0.2.3'], 300)
    assert (change.remove, change.add, change.after) == (['192.0.2.1'], ['192.0.2.3'], ['192.0.2.2', '192.0.2.3'])
    assert change.changed and change.before_ttl == 300


def test_plan_of_a_new_ttl_rewrites_the_whole_rrset():
    change = plan_rrset(RRset('n', 'A', 300, ['192.0.2.1']), ['192.0.2.1'], 3600)
    assert change.changed and change.remove == ['192.0.2.1'] and change.add == ['192.0.2.1']


def test_plan_of_values_with_different_ttls_rewrites_them_with_one():
    rrset = RRset('n', 'A')
    rrset.add('192.0.2.1', 300)
    rrset.add('192.0.2.2', 600)
    change = plan_rrset(rrset, ['192.0.2.1', '192.0.2.2'], 600)
    assert change.before_ttl is None and change.changed and change.add == ['192.0.2.1', '192.0.2.2']


def test_plan_to_nothing_and_from_nothing():
    gone = plan_rrset(RRset('n', 'CNAME', 300, ['t.example']), [], 300)
    assert (gone.remove, gone.add, gone.changed) == (['t.example'], [], True)
    new = plan_rrset(RRset('n', 'CNAME'), ['t.example'], 300)
    assert (new.before_ttl, new.remove, new.add) == (None, [], ['t.example'])
    assert not plan_rrset(RRset('n', 'CNAME'), [], 300).changed


def test_change_says_what_it_is():
    change = RRsetChange('n', 'AAAA', None, [], 300, ['2001:db8::1'])
    assert change.changed and change.rtype == 'AAAA' and "'2001:db8::1'" in repr(change)
