import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import (
    RFC1035_TXT, TxtRRset, TxtText, join_value, parse_presentation, plan_name, split_value, to_presentation,
)


def test_split_value_keeps_strings_under_255_bytes():
    text = 'v=STSv1; id=x; ' + 'e' * 600
    strings = split_value(text)
    assert [len(s) for s in strings] == [255, 255, len(text) - 510]
    assert join_value(strings) == text


@pytest.mark.parametrize('strings', [
    (b'v=STSv1; id=abc;',),
    (b'say "hi" \\ there', b'second'),
    (b'\x00\xff\t',),
    (b'',),
])
def test_presentation_round_trip(strings):
    assert parse_presentation(to_presentation(strings)) == strings


def test_parse_presentation_bare_and_escapes():
    assert parse_presentation('abc "d e" \\065x') == (b'abc', b'd e', b'Ax')


def test_parse_presentation_rejects_long_string():
    with pytest.raises(ValueError):
        parse_presentation('"%s"' % ('a' * 256))


def test_route53_text_uses_octal_escapes_both_ways():
    route53 = TxtText(octal=True)
    assert route53.encode(('é'.encode(), b'"q"')) == '"\\303\\251" "\\"q\\""'
    assert route53.decode('"\\303\\251"') == ('é'.encode(),)
    assert RFC1035_TXT.encode(('é'.encode(),)) == '"\\195\\169"'
    assert RFC1035_TXT.decode('"\\195\\169"') == ('é'.encode(),)


def test_plain_text_is_taken_whole_and_quoted_text_parsed():
    plain = TxtText(plain=True)
    assert plain.decode('v=STSv1; id=a;') == (b'v=STSv1; id=a;',)
    assert plain.decode('"a" "b"') == (b'a', b'b')
    # Not valid presentation format: the value as it is.
    assert plain.decode('"unterminated') == (b'"unterminated',)
    with pytest.raises(ValueError):
        RFC1035_TXT.decode('"unterminated')


def test_ttl_of_is_the_rrset_ttl_unless_a_backend_keeps_one_per_value():
    assert TxtRRset('n', 300, [(b'a',)]).ttl_of((b'a',)) == 300


def _sts(text):
    return text.startswith('v=STSv1')


def _same(live, wanted):
    return live.replace(' ', '') == wanted.replace(' ', '')


def test_plan_add_keeps_other_values():
    rrset = TxtRRset('_mta-sts.example.com', 300, [(b'other',)])
    change = plan_name(rrset, 'v=STSv1; id=a;', _sts, _same, 300)
    assert change.changed
    assert change.remove == []
    assert change.add == [(b'v=STSv1; id=a;',)]
    assert change.after == [(b'other',), (b'v=STSv1; id=a;',)]


def test_plan_same_value_no_change_and_ttl_change_rewrites():
    rrset = TxtRRset('n', 300, [(b'v=STSv1;id=a',)])
    assert not plan_name(rrset, 'v=STSv1; id=a', _sts, _same, 300).changed
    change = plan_name(rrset, 'v=STSv1; id=a', _sts, _same, 60)
    assert change.changed and change.remove == change.add == [(b'v=STSv1;id=a',)]


def test_plan_collapses_duplicates_and_removes():
    rrset = TxtRRset('n', 300, [(b'v=STSv1; id=a;',), (b'keep',), (b'v=STSv1; id=b;',)])
    change = plan_name(rrset, 'v=STSv1; id=a;', _sts, _same, 300)
    assert change.remove == [(b'v=STSv1; id=a;',), (b'v=STSv1; id=b;',)]
    assert change.after == [(b'keep',), (b'v=STSv1; id=a;',)]
    gone = plan_name(rrset, None, _sts, _same, 300)
    assert gone.after == [(b'keep',)] and gone.managed_after == []
    assert not plan_name(TxtRRset('n'), None, _sts, _same, 300).changed
