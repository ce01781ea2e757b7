"""The DANE socketmap (roles/postfix/files/mailsec_dane_policy.py): the decision and the wire protocol.

``decide`` gets a fake lookup built from a small table of answers; the protocol
tests feed bytes through the real ``serve`` loop. The live tests against unbound
and Postfix's own socketmap client are in tests/postfix/test_dane_policy_live.py.
"""

import importlib.util
import io
import time
import os

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.conftest import REPO
from tests.unit.plugins.module_utils.test_live import nameservers  # noqa: F401 pylint: disable=unused-import

SCRIPT = os.path.join(REPO, 'roles', 'postfix', 'files', 'mailsec_dane_policy.py')
_spec = importlib.util.spec_from_file_location('mailsec_dane_policy', SCRIPT)
policy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(policy)

SHA256 = bytes(range(32))
DANE_EE = (3, 1, 1, SHA256)
DANE_TA = (2, 0, 1, SHA256)


def ok(records, secure=True, aliased=False):
    return policy.Answer('ok', secure, records, aliased, None)


def nodata(secure=True):
    return policy.Answer('nodata', secure, [], False, None)


NXDOMAIN = policy.Answer('nxdomain', True, [], False, None)
SERVFAIL = policy.Answer('fail', False, [], False, '127.0.0.1:53 SERVFAIL')


def dane_host(host, tlsa=(DANE_EE,)):
    """The answers of an MX host that DANE can use."""
    return {('_25._tcp.' + host, 'TLSA'): ok(list(tlsa)), (host, 'A'): ok(['192.0.2.1']), (host, 'AAAA'): nodata()}


class FakeDns(object):
    """Answers from a table; records each question so tests can see what was asked."""

    def __init__(self, *tables):
        self.table = {}
        for table in tables:
            self.table.update(table)
        self.asked = []

    def __call__(self, name, rdtype):
        self.asked.append((name, rdtype))
        return self.table[(name, rdtype)]


def two_mx(**changes):
    table = {('example.org', 'MX'): ok([(10, 'mx1.example.org'), (20, 'mx2.example.org')])}
    table.update(dane_host('mx1.example.org'))
    table.update(dane_host('mx2.example.org'))
    table.update(changes.get('table', {}))
    return FakeDns(table)


def test_every_mx_with_secure_usable_tlsa_is_dane_only():
    decision = policy.decide('example.org', two_mx())
    assert decision.reply == 'OK dane-only'
    assert 'mx1.example.org, mx2.example.org' in decision.why


def test_one_mx_without_tlsa_is_notfound_so_the_next_map_decides():
    lookup = two_mx(table={('_25._tcp.mx2.example.org', 'TLSA'): nodata()})
    decision = policy.decide('example.org', lookup)
    assert decision.reply == 'NOTFOUND '
    assert 'mx2.example.org has no TLSA records (nodata)' == decision.why


def test_tlsa_nxdomain_is_notfound():
    lookup = two_mx(table={('_25._tcp.mx1.example.org', 'TLSA'): NXDOMAIN})
    assert policy.decide('example.org', lookup).reply == 'NOTFOUND '


def test_insecure_mx_is_notfound_and_nothing_more_is_asked():
    lookup = two_mx(table={('example.org', 'MX'): ok([(10, 'mx1.example.org')], secure=False)})
    decision = policy.decide('example.org', lookup)
    assert decision == ('NOTFOUND ', 'example.org MX is not DNSSEC-secure')
    assert lookup.asked == [('example.org', 'MX')]


def test_insecure_tlsa_is_notfound():
    lookup = two_mx(table={('_25._tcp.mx1.example.org', 'TLSA'): ok([DANE_EE], secure=False)})
    decision = policy.decide('example.org', lookup)
    assert decision == ('NOTFOUND ', '_25._tcp.mx1.example.org TLSA is not DNSSEC-secure')


def test_insecure_address_records_are_notfound_because_postfix_would_not_use_the_tlsa():
    lookup = two_mx(table={('mx2.example.org', 'AAAA'): nodata(secure=False)})
    decision = policy.decide('example.org', lookup)
    assert decision == ('NOTFOUND ', 'mx2.example.org AAAA is not DNSSEC-secure')


def test_mx_host_that_is_an_alias_is_notfound():
    lookup = two_mx(table={('mx1.example.org', 'A'): ok(['192.0.2.9'], aliased=True)})
    decision = policy.decide('example.org', lookup)
    assert decision == ('NOTFOUND ', 'mx1.example.org is an alias (CNAME)')


@pytest.mark.parametrize('records', [
    [(0, 0, 1, SHA256)],                  # PKIX-TA: not for SMTP (RFC 7672 3.1.3)
    [(1, 1, 1, SHA256)],                  # PKIX-EE
    [(0, 0, 1, SHA256), (1, 1, 2, SHA256 * 2)],
    [(3, 1, 1, SHA256[:20])],             # SHA-256 digest of the wrong length
    [(3, 2, 1, SHA256)],                  # unknown selector
    [(3, 1, 9, SHA256)],                  # unknown matching type
    [(3, 0, 0, b'')],                     # full certificate, empty
])
def test_no_usable_tlsa_is_notfound(records):
    lookup = two_mx(table={('_25._tcp.mx1.example.org', 'TLSA'): ok(records)})
    decision = policy.decide('example.org', lookup)
    assert decision == ('NOTFOUND ', 'mx1.example.org has no usable TLSA record (usage 2 or 3)')


def test_one_usable_record_among_unusable_ones_is_enough():
    lookup = two_mx(table={('_25._tcp.mx1.example.org', 'TLSA'): ok([(1, 1, 1, SHA256), DANE_TA])})
    assert policy.decide('example.org', lookup).reply == 'OK dane-only'


def test_usable_tlsa_keeps_usages_2_and_3_with_known_parameters():
    records = [(3, 1, 1, SHA256), (2, 0, 2, SHA256 * 2), (3, 0, 0, b'\x30\x82'), (3, 1, 2, SHA256), (0, 1, 1, SHA256)]
    assert policy.usable_tlsa(records) == records[:3]


def test_mx_servfail_is_temp_so_postfix_defers():
    lookup = FakeDns({('example.org', 'MX'): SERVFAIL})
    decision = policy.decide('example.org', lookup)
    assert decision.reply == 'TEMP example.org MX lookup failed: 127.0.0.1:53 SERVFAIL'


def test_tlsa_servfail_is_temp():
    lookup = two_mx(table={('_25._tcp.mx2.example.org', 'TLSA'): SERVFAIL})
    decision = policy.decide('example.org', lookup)
    assert decision.reply == 'TEMP _25._tcp.mx2.example.org TLSA lookup failed: 127.0.0.1:53 SERVFAIL'


def test_a_host_that_is_surely_not_dane_wins_over_a_failed_lookup():
    lookup = two_mx(table={('_25._tcp.mx1.example.org', 'TLSA'): SERVFAIL,
                           ('_25._tcp.mx2.example.org', 'TLSA'): nodata()})
    assert policy.decide('example.org', lookup).reply == 'NOTFOUND '


def test_within_a_host_an_insecure_answer_wins_over_a_failed_one():
    lookup = two_mx(table={('_25._tcp.mx1.example.org', 'TLSA'): SERVFAIL,
                           ('mx1.example.org', 'A'): ok(['192.0.2.1'], secure=False)})
    assert policy.decide('example.org', lookup).reply == 'NOTFOUND '


def test_null_mx_is_notfound():
    lookup = FakeDns({('example.org', 'MX'): ok([(0, '.')])})
    assert policy.decide('example.org', lookup) == ('NOTFOUND ', 'example.org has a null MX (accepts no mail)')


def test_no_mx_means_the_domain_itself_is_the_mx_host():
    lookup = FakeDns({('example.org', 'MX'): nodata()}, dane_host('example.org'))
    assert policy.decide('example.org', lookup).reply == 'OK dane-only'
    assert ('_25._tcp.example.org', 'TLSA') in lookup.asked


def test_insecure_no_mx_is_notfound():
    lookup = FakeDns({('example.org', 'MX'): nodata(secure=False)})
    assert policy.decide('example.org', lookup).reply == 'NOTFOUND '


def test_nonexistent_domain_is_notfound():
    lookup = FakeDns({('example.org', 'MX'): NXDOMAIN})
    assert policy.decide('example.org', lookup) == ('NOTFOUND ', 'example.org does not exist')


def test_an_mx_host_named_twice_is_asked_once():
    lookup = FakeDns({('example.org', 'MX'): ok([(10, 'mx1.example.org'), (20, 'mx1.example.org')])},
                     dane_host('mx1.example.org'))
    assert policy.decide('example.org', lookup).reply == 'OK dane-only'
    assert lookup.asked.count(('_25._tcp.mx1.example.org', 'TLSA')) == 1


@pytest.mark.parametrize('key, domain', [
    ('example.org', 'example.org'),
    ('Example.ORG.', 'example.org'),
    ('mx-1.example.org', 'mx-1.example.org'),
    ('[mx.example.org]:25', None),
    ('[192.0.2.1]', None),
    ('.example.org', None),
    ('example..org', None),
    ('-bad.example.org', None),
    ('user@example.org', None),
    ('', None),
    ('a' * 64 + '.example', None),
    ('.'.join(['a' * 63] * 4), None),     # 255 characters: longer than a name may be
])
def test_plain_domain(key, domain):
    assert policy.plain_domain(key) == domain


# The wire: netstrings in and out, through the real loop.

def netstring(text):
    data = text.encode() if isinstance(text, str) else text
    return b'%d:%s,' % (len(data), data)


def run_serve(data, lookup=None):
    writer = io.BytesIO()
    logged = []
    status = policy.serve(io.BytesIO(data), writer, lambda: lookup or two_mx(),
                          lambda level, message: logged.append(message))
    return status, writer.getvalue(), logged


def test_several_requests_on_one_connection_until_eof():
    status, out, logged = run_serve(netstring('dane example.org') + netstring('dane [mx.example.org]:25')
                                    + netstring('dane Example.Org.'))
    assert status == 0
    assert out == netstring('OK dane-only') + netstring('NOTFOUND ') + netstring('OK dane-only')
    assert logged == []


def test_each_request_gets_a_fresh_lookup():
    made = []

    def new_lookup():
        made.append(two_mx())
        return made[-1]

    policy.serve(io.BytesIO(netstring('dane example.org') * 2), io.BytesIO(), new_lookup)
    assert len(made) == 2


def test_temp_is_sent_and_logged():
    status, out, logged = run_serve(netstring('dane example.org'), FakeDns({('example.org', 'MX'): SERVFAIL}))
    assert status == 0
    assert out == netstring('TEMP example.org MX lookup failed: 127.0.0.1:53 SERVFAIL')
    assert logged == ['dane example.org: TEMP example.org MX lookup failed: 127.0.0.1:53 SERVFAIL '
                      '(127.0.0.1:53 SERVFAIL)']


def test_an_error_inside_the_lookup_is_temp_not_a_traceback():
    status, out, _logged = run_serve(netstring('dane example.org') + netstring('dane example.org'), FakeDns({}))
    assert status == 0
    assert out == netstring('TEMP internal error: KeyError') * 2


@pytest.mark.parametrize('data, why', [
    (b'x:dane example.org,', 'malformed netstring length'),
    (b':,', 'malformed netstring length'),
    (b'123456:', 'malformed netstring length'),
    (b'10001:' + b'a' * 10001 + b',', 'request longer than 10000 bytes'),
    (b'16:dane example.org;', 'malformed netstring'),
    (b'16:dane exam', 'malformed netstring'),
    (b'16', 'connection closed inside a netstring length'),
    (netstring('example.org'), 'request is not "NAME KEY"'),
])
def test_malformed_input_gets_perm(data, why):
    status, out, logged = run_serve(data)
    assert status == 1
    assert out == netstring('PERM ' + why)
    assert logged == ['PERM ' + why]


def test_nothing_after_a_malformed_request_is_answered():
    status, out, _logged = run_serve(b'x:' + netstring('dane example.org'))
    assert status == 1
    assert out == netstring('PERM malformed netstring length')


def test_a_good_request_before_a_bad_one_is_answered():
    status, out, _logged = run_serve(netstring('dane example.org') + b'zz')
    assert status == 1
    assert out == netstring('OK dane-only') + netstring('PERM malformed netstring length')


def test_non_ascii_key_is_notfound():
    _status, out, _logged = run_serve(netstring('dane b\xc3\xbccher.example'.encode('latin-1')))
    assert out == netstring('NOTFOUND ')


# The reading of real DNS responses.

def response(name, rdtype, rrsets, rcode=dns.rcode.NOERROR, ad=True):
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    if ad:
        reply.flags |= dns.flags.AD
    for owner, rtype, *data in rrsets:
        reply.answer.append(dns.rrset.from_text(owner, 300, 'IN', rtype, *data))
    return reply


def test_read_answer_tlsa_with_ad():
    answer = policy.read_answer(response('_25._tcp.mx.example.org', 'TLSA',
                                         [('_25._tcp.mx.example.org.', 'TLSA', '3 1 1 ' + SHA256.hex())]),
                                '_25._tcp.mx.example.org', 'TLSA')
    assert answer == ('ok', True, [DANE_EE], False, None)


def test_read_answer_mx_lowercased_without_dot_and_no_ad():
    answer = policy.read_answer(response('example.org', 'MX', [('example.org.', 'MX', '10 MX1.Example.ORG.', '0 .')],
                                         ad=False), 'example.org', 'MX')
    assert answer == ('ok', False, [(10, 'mx1.example.org'), (0, '.')], False, None)


def test_read_answer_follows_a_cname_and_says_so():
    answer = policy.read_answer(response('mx.example.org', 'A', [('mx.example.org.', 'CNAME', 'host.example.net.'),
                                                                 ('host.example.net.', 'A', '192.0.2.7')]),
                                'mx.example.org', 'A')
    assert answer == ('ok', True, ['192.0.2.7'], True, None)


def test_read_answer_nodata_and_nxdomain_keep_the_ad_bit():
    assert policy.read_answer(response('example.org', 'MX', []), 'example.org', 'MX').status == 'nodata'
    nx = policy.read_answer(response('example.org', 'MX', [], rcode=dns.rcode.NXDOMAIN), 'example.org', 'MX')
    assert (nx.status, nx.secure) == ('nxdomain', True)


# DnsLookup against a nameserver on a loopback port: the DO bit goes out, the AD bit comes back.

def tlsa_reply(query, _count=None):
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AD
    reply.answer.append(dns.rrset.from_text(query.question[0].name, 300, 'IN', 'TLSA', '3 1 1 ' + SHA256.hex()))
    return reply


def test_dns_lookup_sets_do_and_reads_ad(nameservers):
    server = nameservers(tlsa_reply)
    lookup = policy.DnsLookup([server.address], timeout=5)()
    assert lookup('_25._tcp.mx.example.org', 'TLSA') == ('ok', True, [DANE_EE], False, None)
    assert server.queries[0].ednsflags & dns.flags.DO


def test_dns_lookup_servfail_names_the_server(nameservers):
    def servfail(query, _count):
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL)
        return reply
    server = nameservers(servfail)
    answer = policy.DnsLookup([server.address], timeout=5)()('example.org', 'MX')
    assert answer == ('fail', False, [], False, server.address + ' SERVFAIL')


def test_dns_lookup_asks_the_next_server_and_resends_after_a_loss(nameservers, monkeypatch):
    monkeypatch.setattr(policy, 'ATTEMPT_TIMEOUT', 0.2)
    silent = nameservers(lambda query, count: None)
    flaky = nameservers(lambda query, count: tlsa_reply(query) if count == 2 else None)
    lookup = policy.DnsLookup([silent.address, flaky.address], timeout=10)()
    started = time.monotonic()
    assert lookup('_25._tcp.mx.example.org', 'TLSA').status == 'ok'
    assert len(flaky.queries) == 2
    assert time.monotonic() - started < 3 * 0.2 + 0.5   # three attempts went unanswered


def test_dns_lookup_gives_up_at_the_request_deadline(nameservers):
    silent = nameservers(lambda query, count: None)
    lookup = policy.DnsLookup([silent.address], timeout=0.5)()
    started = time.monotonic()
    answer = lookup('example.org', 'MX')
    assert time.monotonic() - started < 1.5
    assert (answer.status, answer.reason) == ('fail', 'no answer within 0.5 s')


@pytest.mark.parametrize('text, server', [
    ('127.0.0.1', ('127.0.0.1', 53)), ('127.0.0.1:5300', ('127.0.0.1', 5300)), ('::1', ('::1', 53)),
    ('[::1]:5300', ('::1', 5300)),
])
def test_nameserver_option_forms(text, server):
    assert policy.DnsLookup([text]).servers == [server]


def test_query_option_prints_the_decision_and_why(nameservers, capsys):
    server = nameservers(lambda query, count: dns.message.make_response(query))   # NODATA, no AD
    assert policy.main(['--query', 'Example.ORG.', '--nameserver', server.address, '--timeout', '2']) == 0
    assert capsys.readouterr().out == 'NOTFOUND\texample.org MX is not DNSSEC-secure\n'
    assert server.queries[0].question[0].name.to_text() == 'example.org.'
