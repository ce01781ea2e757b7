"""tlsa_info's parts: options refused before any I/O, each server's answer read from real DNS wire, the judgement
of a host from its servers, the served chain matched, and the bounded wait (against ports where nothing listens)."""

import socket

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import load_material, tlsa_value
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa_info import (
    check_options, judge_host, look, serving_facts, server_view, zone_of,
)
from tests.lab.pki import self_signed

NAME = '_25._tcp.mx1.example.com'
A = '3 1 1 ' + 'a' * 64
B = '3 1 1 ' + 'b' * 64
VALID = dict(hosts=['mx1.example.com'], port=25, expect=None, nameservers=None, resolvers=None, wait_timeout=0,
             interval=5, probe_mx=False, address=None, timeout=10)


@pytest.mark.parametrize('changes, field', [
    ({'hosts': []}, 'hosts'),
    ({'hosts': ['mx1.example.com', 'MX1.example.com.']}, 'hosts[1]'),
    ({'hosts': ['mx1.example.com', 'not a host']}, 'hosts[1]'),
    ({'port': 0}, 'port'),
    ({'expect': [A, '3 1 1 xyz']}, 'expect[1]'),
    ({'nameservers': ['ns1.example.com']}, 'nameservers'),
    ({'resolvers': ['127.0.0.1:99999']}, 'resolvers'),
    ({'timeout': 0}, 'timeout'),
    ({'wait_timeout': 3601}, 'wait_timeout'),
    ({'interval': 0}, 'interval'),
    ({'address': '192.0.2.25'}, 'address'),
    ({'address': '192.0.2.25', 'probe_mx': True, 'hosts': ['mx1.example.com', 'mx2.example.com']}, 'address'),
    ({'address': 'mx1.example.com', 'probe_mx': True}, 'address'),
])
def test_bad_options_are_named(changes, field):
    with pytest.raises(ValidationError) as caught:
        check_options(dict(VALID, **changes))
    assert caught.value.field == field


def test_options_come_out_canonical():
    hosts, expect = check_options(dict(VALID, hosts=['MX1.Example.COM.'], expect=[A.upper().replace('3 1 1 ', '3 1 1  '), A]))
    assert hosts == ['mx1.example.com'] and expect == [A]


def wire_response(*answer, rcode=dns.rcode.NOERROR, authoritative=True, soa=True, rdtype='TLSA'):
    """A response as a server sends it, parsed by _live as tlsa_info reads it."""
    query = dns.message.make_query(NAME, rdtype)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if not authoritative:
        response.flags &= ~dns.flags.AA
    else:
        response.flags |= dns.flags.AA
    for rrset in answer:
        response.answer.append(rrset)
    if soa and not answer:
        response.authority.append(dns.rrset.from_text('example.com.', 300, 'IN', 'SOA',
                                                      'ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300'))
    return _live._Response(response.to_wire())


def tlsa(ttl, *values):
    return dns.rrset.from_text(NAME + '.', ttl, 'IN', 'TLSA', *values)


def test_a_server_answering_records_with_their_ttl():
    view = server_view(NAME, wire_response(tlsa(600, B, A.upper())), None)
    assert view == {'records': [A, B], 'ttl': 600, 'error': None}


def test_a_server_without_records_and_the_zone_from_its_soa():
    for rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        response = wire_response(rcode=rcode)
        assert server_view(NAME, response, None) == {'records': [], 'ttl': None, 'error': None}
        assert zone_of(response) == 'example.com'
    assert zone_of(None) is None


def test_a_server_that_is_not_authoritative_or_has_a_cname_or_failed():
    assert 'no AA bit' in server_view(NAME, wire_response(tlsa(600, A), authoritative=False), None)['error']
    cname = dns.rrset.from_text(NAME + '.', 600, 'IN', 'CNAME', '_25._tcp.mx.hoster.example.')
    assert 'a CNAME is at %s (to _25._tcp.mx.hoster.example)' % NAME in server_view(NAME, wire_response(cname), None)['error']
    assert server_view(NAME, None, 'no answer') == {'records': [], 'ttl': None, 'error': 'no answer'}


def view(records, ttl=3600, error=None):
    return {'records': records, 'ttl': ttl if records else None, 'error': error}


def test_judge_names_the_lagging_server_and_what_it_lacks():
    servers = {'192.0.2.53': view([A, B]), '192.0.2.54': view([A], ttl=300)}
    result = judge_host('mx1.example.com', NAME, 'example.com', servers, [A, B])
    assert not result['visible_everywhere']
    assert result['missing'] == {'192.0.2.54': [B]}
    assert result['reason'] == '%s: 192.0.2.54 lacks %s' % (NAME, B)
    assert result['records'] == [A, B] and result['ttl'] == 3600
    both = judge_host('mx1.example.com', NAME, 'example.com', dict(servers, **{'192.0.2.54': view([A, B])}), [A, B])
    assert both['visible_everywhere'] and both['missing'] == {} and both['reason'] is None


def test_judge_without_expect_asks_every_server_to_agree():
    agreeing = {'192.0.2.53': view([A]), '192.0.2.54': view([A])}
    assert judge_host('mx1.example.com', NAME, None, agreeing, [])['visible_everywhere']
    empty = {'192.0.2.53': view([]), '192.0.2.54': view([])}
    assert judge_host('mx1.example.com', NAME, None, empty, [])['reason'] == 'no server answers a TLSA record at %s' % NAME


def test_judge_counts_a_failed_server_as_lacking_everything():
    servers = {'192.0.2.53': view([A]), '192.0.2.54': view([], error='answered REFUSED')}
    result = judge_host('mx1.example.com', NAME, None, servers, [A])
    assert result['missing'] == {'192.0.2.54': [A]}
    assert result['reason'] == '%s: 192.0.2.54 answered REFUSED' % NAME
    assert judge_host('mx1.example.com', NAME, None, {}, [A])['reason'] == 'no authoritative server to ask for %s' % NAME


def test_serving_facts_match_the_served_leaf():
    pair = self_signed(['mx1.example.com'])
    material = load_material(pair[0], 'certificate')
    served = '%d %d %d %s' % tlsa_value(material)
    facts = serving_facts([A, served, 'not tlsa'], {'chain_der': [material.der], 'error': None})
    assert facts['matched'] == [served]
    assert facts['served_spki_sha256'] == served.split()[3]
    failed = serving_facts([served], {'chain_der': None, 'error': {'kind': 'connect', 'message': 'refused'}})
    assert failed == {'matched': [], 'served_spki_sha256': None, 'error': 'refused'}


def _closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_the_wait_is_bounded_and_says_how_often_it_looked():
    # Nothing listens there: each look fails at once (ICMP port unreachable), so the loop runs on its interval.
    server = '127.0.0.1:%d' % _closed_port()
    results, all_visible = look(['mx1.example.com'], expect=[A], nameservers=[server], wait_timeout=1, interval=0.3,
                                timeout=2)
    assert not all_visible
    [result] = results
    assert result['attempts'] >= 3
    assert result['missing'] == {server: [A]}
    assert 'refused the query' in result['servers'][server]['error']
    assert result['reason'].endswith('(still so after %d looks in 1 s)' % result['attempts'])
