import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._acme import plan_certificate_groups
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError


def groups(domains, limit, previous=None):
    return plan_certificate_groups(domains, limit, previous)['groups']


def test_first_plan_fills_groups_in_sorted_order():
    assert groups(['c.example', 'a.example', 'b.example'], 2) == {
        'group-0001': ['mta-sts.a.example', 'mta-sts.b.example'],
        'group-0002': ['mta-sts.c.example'],
    }


def test_domains_map_to_host_and_group_as_given():
    plan = plan_certificate_groups(['B\u00fccher.Example.', 'a.example'], 100)
    assert plan['domains'] == {
        'B\u00fccher.Example.': {'host': 'mta-sts.xn--bcher-kva.example', 'group': 'group-0001'},
        'a.example': {'host': 'mta-sts.a.example', 'group': 'group-0001'},
    }


def test_adding_a_domain_that_sorts_first_changes_one_group_only():
    before = groups(['b.example', 'c.example', 'd.example'], 2)
    after = groups(['a.example', 'b.example', 'c.example', 'd.example'], 2, before)
    changed = [name for name in after if after[name] != before.get(name)]
    assert changed == ['group-0002']
    assert after['group-0001'] == before['group-0001']
    assert after['group-0002'] == ['mta-sts.a.example', 'mta-sts.d.example']


def test_a_new_group_when_every_group_is_full():
    before = groups(['b.example', 'c.example'], 2)
    after = groups(['a.example', 'b.example', 'c.example'], 2, before)
    assert after == dict(before, **{'group-0002': ['mta-sts.a.example']})


def test_removing_a_domain_changes_its_group_and_the_room_is_used_next():
    before = groups(['a.example', 'b.example', 'c.example'], 2)
    removed = groups(['a.example', 'c.example'], 2, before)
    assert removed == {'group-0001': ['mta-sts.a.example'], 'group-0002': ['mta-sts.c.example']}
    added = groups(['a.example', 'c.example', 'z.example'], 2, removed)
    assert added == {'group-0001': ['mta-sts.a.example', 'mta-sts.z.example'], 'group-0002': ['mta-sts.c.example']}


def test_an_emptied_group_takes_new_names_first():
    before = groups(['a.example', 'b.example'], 1)
    after = groups(['b.example', 'c.example'], 1, before)
    assert after == {'group-0001': ['mta-sts.c.example'], 'group-0002': ['mta-sts.b.example']}


def test_an_emptied_group_is_dropped_and_its_number_not_reused():
    before = groups(['a.example', 'b.example'], 1)
    assert groups(['b.example'], 1, before) == {'group-0002': ['mta-sts.b.example']}
    assert groups(['b.example', 'c.example'], 1, {'group-0002': ['mta-sts.b.example']}) == {
        'group-0002': ['mta-sts.b.example'], 'group-0003': ['mta-sts.c.example']}


def test_a_lower_limit_moves_the_overflow_to_new_groups():
    before = groups(['a.example', 'b.example', 'c.example'], 3)
    after = groups(['a.example', 'b.example', 'c.example'], 2, before)
    assert after == {'group-0001': ['mta-sts.a.example', 'mta-sts.b.example'], 'group-0002': ['mta-sts.c.example']}


def test_same_input_same_plan():
    domains = ['d%d.example' % n for n in range(250)]
    first = groups(domains, 100)
    assert [len(members) for members in first.values()] == [100, 100, 50]
    assert groups(list(reversed(domains)), 100, first) == first


def test_foreign_group_names_in_the_previous_plan_are_ignored():
    assert groups(['a.example'], 2, {'mine': ['mta-sts.a.example']}) == {'group-0001': ['mta-sts.a.example']}


@pytest.mark.parametrize('limit', [0, 101, True, '2', None])
def test_limit_out_of_range(limit):
    with pytest.raises(ValidationError, match='limit'):
        plan_certificate_groups(['a.example'], limit)


def test_domain_twice_after_normalisation():
    with pytest.raises(ValidationError, match="'A.example.': is listed twice"):
        plan_certificate_groups(['a.example', 'A.example.'], 2)


def test_invalid_domain_is_named():
    with pytest.raises(ValidationError, match="domain 'bad': must have at least two labels"):
        plan_certificate_groups(['bad'], 2)
