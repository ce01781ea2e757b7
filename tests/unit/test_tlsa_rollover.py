"""The TLSA rollover logic (pure): every step, every refusal, resumption across runs, a next key that changes.

Every call takes ``now``, so the times are fixed and each expected moment is worked out by hand: TTL 3600, so
the wait after next became visible everywhere is two hours.
"""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa_rollover import load_entry, rollover_step

HOST = 'mx1.example.com'
A = '3 1 1 ' + 'a' * 64
B = '3 1 1 ' + 'b' * 64
B2 = '3 1 1 ' + 'c' * 64
OTHER = '3 1 1 ' + 'd' * 64
T0 = '2026-12-01T10:00:00Z'
T1 = '2026-12-01T11:00:00Z'
T2 = '2026-12-01T12:00:00Z'
FAILED = 'failed'
PRIMARY = '127.0.0.1'
SECONDARY = '127.0.0.2'


def observed(primary, secondary=None, matched=None, spki=None, error=None, ttl=3600, probe=True):
    """A tlsa_info result: the records at each authoritative server (FAILED: the server did not answer; the
    secondary answers as the primary unless told) and what the MX serves."""
    servers = {}
    for address, records in ((PRIMARY, primary), (SECONDARY, primary if secondary is None else secondary)):
        if records == FAILED:
            servers[address] = {'records': [], 'ttl': None, 'error': 'timed out'}
        else:
            servers[address] = {'records': list(records), 'ttl': ttl if records else None, 'error': None}
    result = {'host': HOST, 'servers': servers, 'ttl': ttl}
    if probe:
        result['serving'] = {'matched': list(matched or []), 'served_spki_sha256': spki, 'error': error}
    return result


def step(entry, observation, now=T0, current=A, following=B):
    return rollover_step(entry, {'current': current, 'next': following}, observation, now)


def rollover_entry(since=None, switched_at=None, current=A, following=B, ttl=3600):
    return {'current': current, 'next': following, 'ttl': ttl, 'next_visible_since': since, 'switched_at': switched_at}


# --- the steps in order ---

def test_first_run_publishes_next_beside_current():
    result = step(None, observed([A], matched=[A]))
    assert result['step'] == 'publish-next'
    assert result['records'] == [A, B]
    assert result['entry'] == rollover_entry()
    assert 'missing at 127.0.0.1, 127.0.0.2' in result['reason']
    assert result['host'] == HOST and not result['blocked'] and result['wait_until'] is None


def test_next_at_one_server_only_is_not_visible_and_names_the_lagging_one():
    result = step(rollover_entry(), observed([A, B], secondary=[A], matched=[A]))
    assert result['step'] == 'publish-next'
    assert 'missing at 127.0.0.2' in result['reason'] and '127.0.0.1' not in result['reason']
    assert result['entry']['next_visible_since'] is None


def test_a_failed_server_counts_as_not_visible():
    result = step(rollover_entry(), observed([A, B], secondary=FAILED, matched=[A]))
    assert result['step'] == 'publish-next'
    assert 'missing at 127.0.0.2' in result['reason']


def test_next_visible_everywhere_starts_the_two_ttl_wait():
    result = step(rollover_entry(), observed([A, B], matched=[A]), now=T0)
    assert result['step'] == 'wait'
    assert result['entry']['next_visible_since'] == T0
    assert result['wait_until'] == T2
    assert result['records'] == [A, B]


def test_a_wait_that_outlives_a_run_resumes_from_next_visible_since():
    first = step(rollover_entry(), observed([A, B], matched=[A]), now=T0)
    later = step(first['entry'], observed([A, B], matched=[A]), now=T1)
    assert later['step'] == 'wait'
    assert later['wait_until'] == T2
    assert later['entry']['next_visible_since'] == T0
    just_before = step(later['entry'], observed([A, B], matched=[A]), now='2026-12-01T11:59:59Z')
    assert just_before['step'] == 'wait'
    assert step(later['entry'], observed([A, B], matched=[A]), now=T2)['step'] == 'switch'


def test_switch_after_two_ttls():
    result = step(rollover_entry(since=T0), observed([A, B], matched=[A]), now=T2)
    assert result['step'] == 'switch'
    assert result['records'] == [A, B]
    assert 'it serves current now' in result['reason']
    assert result['entry'] == rollover_entry(since=T0)


def test_the_wait_uses_the_highest_ttl_ever_seen():
    # The TTL was lowered to 60 during the rollover: resolvers may still hold the RRset for the old hour.
    result = step(rollover_entry(since=T0, ttl=3600), observed([A, B], matched=[A], ttl=60), now=T1)
    assert result['step'] == 'wait'
    assert result['wait_until'] == T2
    assert result['entry']['ttl'] == 3600


def test_next_dropping_out_at_a_server_restarts_the_wait():
    result = step(rollover_entry(since=T0), observed([A, B], secondary=[A], matched=[A]), now=T2)
    assert result['step'] == 'publish-next'
    assert result['entry']['next_visible_since'] is None
    assert result['records'] == [A, B]


def test_retire_old_once_the_mx_serves_next():
    result = step(rollover_entry(since=T0), observed([A, B], matched=[B]), now='2026-12-01T12:05:00Z')
    assert result['step'] == 'retire-old'
    assert result['records'] == [B]
    assert result['entry']['switched_at'] == '2026-12-01T12:05:00Z'
    assert result['entry']['next_visible_since'] == T0


def test_done_when_only_next_is_published_and_served():
    entry = rollover_entry(since=T0, switched_at='2026-12-01T12:05:00Z')
    result = step(entry, observed([B], matched=[B]), now='2026-12-01T12:10:00Z')
    assert result['step'] == 'done'
    assert result['records'] == [B]
    assert result['entry'] == {'current': B, 'next': None, 'ttl': 3600, 'next_visible_since': None,
                               'switched_at': '2026-12-01T12:05:00Z'}


def test_done_stays_done_before_and_after_the_inventory_catches_up():
    done = {'current': B, 'next': None, 'ttl': 3600, 'next_visible_since': None, 'switched_at': T2}
    # The inventory still says current A, next B.
    assert step(done, observed([B], matched=[B]), now=T2)['step'] == 'done'
    # The inventory made B current.
    again = step(done, observed([B], matched=[B]), now=T2, current=B, following=None)
    assert again['step'] == 'done' and again['entry'] == done and again['records'] == [B]


def test_inventory_promoting_next_before_the_end_finishes_the_rollover():
    # The entry remembers A, so its record is not dropped before the MX serves B.
    result = step(rollover_entry(since=T0), observed([A, B], matched=[A]), now=T2, current=B, following=None)
    assert result['step'] == 'switch'
    assert result['records'] == [A, B]


def test_same_key_in_current_and_next_needs_no_rollover():
    result = step(None, observed([A], matched=[A]), following=A)
    assert result['step'] == 'done'
    assert result['entry']['next'] is None


# --- refusals ---

def test_no_switch_before_two_ttls_even_if_asked_late_in_the_same_run():
    result = step(rollover_entry(since=T1), observed([A, B], matched=[A]), now=T2)
    assert result['step'] == 'wait'
    assert result['wait_until'] == '2026-12-01T13:00:00Z'


def test_no_retire_old_while_the_mx_serves_current():
    # Long after the wait, but the MTA was not switched: old stays.
    result = step(rollover_entry(since=T0), observed([A, B], matched=[A]), now='2026-12-09T00:00:00Z')
    assert result['step'] == 'switch'
    assert A in result['records']


def test_no_retire_old_when_the_served_key_is_unknown():
    for observation in (observed([A, B], probe=False), observed([A, B], error='connection refused')):
        result = step(rollover_entry(since=T0), observation, now='2026-12-09T00:00:00Z')
        assert result['step'] == 'switch'
        assert result['records'] == [A, B]
    assert 'probe_mx' in step(rollover_entry(since=T0), observed([A, B], probe=False), now=T2)['reason']
    assert 'connection refused' in step(rollover_entry(since=T0), observed([A, B], error='connection refused'),
                                        now=T2)['reason']


def test_the_mx_serving_next_before_it_is_everywhere_is_urgent_and_keeps_current():
    result = step(rollover_entry(), observed([A, B], secondary=[A], matched=[B]))
    assert result['step'] == 'publish-next'
    assert result['records'] == [A, B]
    assert 'defer mail now' in result['reason']


def test_current_the_mx_stops_serving_is_never_retired_on_that_account():
    # The MX serves neither key (someone put another certificate on it): nothing is removed, and the switch to the
    # next key (visible long enough) is what repairs DANE.
    result = step(rollover_entry(since=T0), observed([A, B], matched=[], spki='e' * 64), now=T2)
    assert result['step'] == 'switch'
    assert result['records'] == [A, B]
    assert 'a key no published record matches' in result['reason']


def test_current_missing_at_a_server_while_served_is_published_again():
    result = step(rollover_entry(since=T0), observed([A, B], secondary=[B], matched=[A]), now=T2)
    assert result['step'] == 'publish-next'
    assert result['records'] == [A, B]
    assert 'current is missing at 127.0.0.2' in result['reason']
    assert result['entry']['next_visible_since'] == T0


def test_next_that_changes_mid_rollover_starts_over_and_keeps_the_served_key():
    # The MTA already serves B when the inventory's next becomes B2: B stays published (served), A stays (current).
    switched = rollover_entry(since=T0, switched_at=T2)
    result = step(switched, observed([A, B], matched=[B]), now='2026-12-02T00:00:00Z', following=B2)
    assert result['step'] == 'publish-next'
    assert result['records'] == [A, B2, B]
    assert result['entry'] == rollover_entry(following=B2)
    # B2 visible everywhere: a fresh wait from now, B still kept.
    waited = step(result['entry'], observed([A, B, B2], matched=[B]), now='2026-12-02T01:00:00Z', following=B2)
    assert waited['step'] == 'wait'
    assert waited['wait_until'] == '2026-12-02T03:00:00Z'
    assert waited['records'] == [A, B2, B]


def test_next_that_changes_before_the_switch_restarts_the_wait():
    result = step(rollover_entry(since=T0), observed([A, B, B2], matched=[A]), now=T2, following=B2)
    assert result['step'] == 'wait'
    assert result['entry']['next_visible_since'] == T2
    assert B not in result['records']


def test_steady_state_first_publication_then_done():
    first = step(None, observed([], matched=[], spki='a' * 64), following=None)
    assert first['step'] == 'publish-next'
    assert first['records'] == [A]
    assert 'no next key wanted' in first['reason']
    assert step(first['entry'], observed([A], matched=[A]), following=None)['step'] == 'done'


def test_steady_state_refuses_when_the_mx_serves_another_key():
    result = step(None, observed([OTHER], matched=[OTHER]), following=None)
    assert result['step'] == 'wait' and result['blocked']
    assert result['records'] == [OTHER]
    assert 'roll over' in result['reason']


def test_steady_state_retires_other_records_only_when_current_is_served():
    assert step(None, observed([A, OTHER], matched=[A]), following=None)['records'] == [A]
    assert step(None, observed([A, OTHER], matched=[A]), following=None)['step'] == 'retire-old'
    unknown = step(None, observed([A, OTHER], probe=False), following=None)
    assert unknown['blocked'] and unknown['records'] == [A, OTHER]


def test_a_rollover_given_up_before_the_switch_retires_next_once_current_is_served():
    # The inventory dropped next while the MX still serves current: the next record goes, the entry forgets it.
    result = step(rollover_entry(since=T0), observed([A, B], matched=[A]), now=T2, following=None)
    assert (result['step'], result['records']) == ('retire-old', [A])
    assert result['entry'] == {'current': A, 'next': None, 'ttl': 3600, 'next_visible_since': None, 'switched_at': None}


# --- bad input, named by its path ---

@pytest.mark.parametrize('entry, field', [
    ({'current': A, 'next': B, 'next_visible_since': 'yesterday'}, 'tlsa_rollover_state.mx1.example.com.next_visible_since'),
    ({'current': A, 'next': B, 'switched_at': 5}, 'tlsa_rollover_state.mx1.example.com.switched_at'),
    ({'current': '3 1 1 zz', 'next': B}, 'tlsa_rollover_state.mx1.example.com.current'),
    ({'current': A, 'next': '3 1 1 ' + 'b' * 10}, 'tlsa_rollover_state.mx1.example.com.next'),
    ({'current': A, 'ttl': -1}, 'tlsa_rollover_state.mx1.example.com.ttl'),
    ({'current': A, 'ttl': True}, 'tlsa_rollover_state.mx1.example.com.ttl'),
    ({'next': B}, 'tlsa_rollover_state.mx1.example.com.current'),
    ({'current': A, 'next': A}, 'tlsa_rollover_state.mx1.example.com.next'),
    ({'current': A, 'next_visible_since': T0}, 'tlsa_rollover_state.mx1.example.com.next_visible_since'),
    ({'current': A, 'colour': 'red'}, 'tlsa_rollover_state.mx1.example.com'),
    (['not', 'a', 'mapping'], 'tlsa_rollover_state.mx1.example.com'),
])
def test_malformed_entries_are_named_by_their_path(entry, field):
    with pytest.raises(ValidationError) as caught:
        step(entry, observed([A], matched=[A]))
    assert caught.value.field == field


@pytest.mark.parametrize('wanted, field', [
    ({'next': B}, 'wanted.current'),
    ({'current': 'A'}, 'wanted.current'),
    ({'current': A, 'next': 5}, 'wanted.next'),
    ({'current': A, 'nxt': B}, 'wanted'),
])
def test_malformed_wanted_is_named(wanted, field):
    with pytest.raises(ValidationError) as caught:
        rollover_step(None, wanted, observed([A], matched=[A]), T0)
    assert caught.value.field == field


def test_malformed_observed_and_now_are_named():
    with pytest.raises(ValidationError) as caught:
        step(None, {'host': HOST})
    assert caught.value.field == 'observed.servers'
    bad = observed([A], matched=[A])
    bad['servers'][PRIMARY]['records'] = ['3 1 1 xyz']
    with pytest.raises(ValidationError) as caught:
        step(None, bad)
    assert caught.value.field == 'observed.servers["127.0.0.1"].records[0]'
    with pytest.raises(ValidationError) as caught:
        step(None, observed([A], matched=[A]), now='soon')
    assert caught.value.field == 'now' and 'now(utc=true' in caught.value.rule


def test_now_before_next_visible_since_is_refused():
    with pytest.raises(ValidationError) as caught:
        step(rollover_entry(since=T2), observed([A, B], matched=[A]), now=T0)
    assert caught.value.field == 'now'


def test_entries_come_out_canonical():
    spelled = {'current': A.upper().replace('3 1 1 ', '3  1 1 '), 'next': None, 'ttl': 60,
               'next_visible_since': None, 'switched_at': '2026-12-01T11:00:00+01:00'}
    assert load_entry(spelled, 'here') == {'current': A, 'next': None, 'ttl': 60, 'next_visible_since': None,
                                           'switched_at': T0}
    assert load_entry({}, 'here') is None and load_entry(None, 'here') is None


# --- the filter, through a real Templar ---

def test_filter_in_a_template():
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    variables = {'entry': rollover_entry(since=T0), 'wanted': {'current': A, 'next': B},
                 'seen': observed([A, B], matched=[A])}
    templar = Templar(loader=DataLoader(), variables=variables)
    result = templar.template(trust_as_template("{{ entry | mailsec.mta_sts.tlsa_rollover(wanted, seen, '%s') }}" % T2))
    assert result['step'] == 'switch' and result['records'] == [A, B]
    # Without now the controller's clock decides: long after T0 + 2 TTL.
    assert templar.template(trust_as_template('{{ (entry | mailsec.mta_sts.tlsa_rollover(wanted, seen)).step }}')) == 'switch'
    with pytest.raises(AnsibleError, match=r'tlsa_rollover_state\.mx1\.example\.com\.ttl'):
        templar.template(trust_as_template("{{ {'current': wanted.current, 'ttl': 'x'} "
                                           "| mailsec.mta_sts.tlsa_rollover(wanted, seen) }}"))
