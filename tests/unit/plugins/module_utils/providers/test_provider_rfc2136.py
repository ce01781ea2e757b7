"""Rfc2136Provider against a fake ``dns.query``: the messages it sends and what it makes of the answers."""

import base64

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.rfc2136 import Rfc2136Provider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRsetChange
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset, plan_name

SECRET = base64.b64encode(b'k' * 32).decode()


class Server:
    """Stands in for ``dns.query.tcp``: ``answer(message)`` returns a response or raises; every message is kept."""

    def __init__(self, answer):
        self.answer = answer
        self.sent = []

    def __call__(self, message, where, port=53, timeout=None, **kwargs):
        self.sent.append(message)
        return self.answer(message)


def _serve(monkeypatch, answer):
    server = Server(answer)
    monkeypatch.setattr(dns.query, 'tcp', server)
    return server


def _response(query, rcode=dns.rcode.NOERROR, answer=(), authority=(), aa=True):
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if aa:
        response.flags |= dns.flags.AA
    response.answer.extend(dns.rrset.from_text(*rr) for rr in answer)
    response.authority.extend(dns.rrset.from_text(*rr) for rr in authority)
    return response


def _provider(**kwargs):
    return Rfc2136Provider('192.0.2.53', 5300, kwargs.pop('key_name', 'lab-key'), kwargs.pop('key_secret', SECRET), **kwargs)


SOA = ('example.com.', 300, 'IN', 'SOA', 'ns1.example.com. h.example.com. 1 7200 3600 1209600 300')


def test_find_zone_reads_the_soa_in_the_authority_section_and_signs_every_query(monkeypatch):
    server = _serve(monkeypatch, lambda query: _response(query, dns.rcode.NXDOMAIN, authority=[SOA]))
    assert _provider().find_zone('_mta-sts.mail.example.com') == 'example.com'
    assert [message.keyname is not None for message in server.sent] == [True]


def test_find_zone_skips_a_cname_the_server_followed(monkeypatch):
    def answer(query):
        name = query.question[0].name.to_text()
        if name == '_mta-sts.example.com.':
            return _response(query, answer=[('_mta-sts.example.com.', 300, 'IN', 'CNAME', 'sts.provider.net.')],
                             authority=[('provider.net.', 300, 'IN', 'SOA', 'ns. h. 1 2 3 4 5')])
        return _response(query, answer=[SOA])
    _serve(monkeypatch, answer)
    assert _provider().find_zone('_mta-sts.example.com') == 'example.com'


def test_read_one_name_needs_an_authoritative_answer(monkeypatch):
    txt = ('_mta-sts.example.com.', 600, 'IN', 'TXT', '"v=STSv1; id=a;"', '"part1" "part2"')
    _serve(monkeypatch, lambda query: _response(query, answer=[txt]))
    rrset = _provider().read('example.com', ['_mta-sts.example.com'])['_mta-sts.example.com']
    assert sorted(rrset.values) == [(b'part1', b'part2'), (b'v=STSv1; id=a;',)] and rrset.ttl == 600
    _serve(monkeypatch, lambda query: _response(query, answer=[txt], aa=False))
    with pytest.raises(ProviderError, match='is not authoritative for it; give the primary server of its zone as server'):
        _provider().read('example.com', ['_mta-sts.example.com'])


def test_read_several_names_uses_one_transfer_and_falls_back_to_queries_when_refused(monkeypatch):
    def transfer(where, zone, **kwargs):
        assert kwargs['keyname'] == 'lab-key'
        message = dns.message.Message()
        message.answer.append(dns.rrset.from_text('_mta-sts.a.example.com.', 60, 'IN', 'TXT', '"v=STSv1; id=a;"'))
        message.answer.append(dns.rrset.from_text('_smtp._tls.a.example.com.', 60, 'IN', 'CNAME', 'R.Example.NET.'))
        return [message]
    monkeypatch.setattr(dns.query, 'xfr', transfer)
    server = _serve(monkeypatch, lambda query: pytest.fail('no query expected'))
    found = _provider().read('example.com', ['_mta-sts.a.example.com', '_smtp._tls.a.example.com'])
    assert found['_mta-sts.a.example.com'].values == [(b'v=STSv1; id=a;',)]
    assert found['_smtp._tls.a.example.com'].cname == 'r.example.net'
    assert server.sent == []

    def refused(where, zone, **kwargs):
        raise dns.xfr.TransferError(dns.rcode.REFUSED)
    monkeypatch.setattr(dns.query, 'xfr', refused)
    server = _serve(monkeypatch, _response)
    found = _provider().read('example.com', ['_mta-sts.a.example.com', '_smtp._tls.a.example.com'])
    assert len(server.sent) == 2 and all(rrset.values == [] for rrset in found.values())


def test_read_every_type_at_a_name_asks_any_over_tcp_when_transfers_are_refused(monkeypatch):
    def refused(where, zone, **kwargs):
        raise dns.xfr.TransferError(dns.rcode.REFUSED)
    monkeypatch.setattr(dns.query, 'xfr', refused)
    server = _serve(monkeypatch, lambda query: _response(query, answer=[
        ('mta-sts.example.com.', 300, 'IN', 'AAAA', '2001:DB8:0::10'),
        ('mta-sts.example.com.', 300, 'IN', 'MX', '10 mx.example.com.')]))
    found = _provider().read_rrsets('example.com', ['mta-sts.example.com'], None)['mta-sts.example.com']
    assert [message.question[0].rdtype for message in server.sent] == [dns.rdatatype.ANY]
    assert (found['AAAA'].values, found['MX'].values) == (['2001:db8::10'], ['10 mx.example.com.'])


def test_typed_update_deletes_before_it_adds_and_pins_what_was_read(monkeypatch):
    server = _serve(monkeypatch, _response)
    _provider().apply_rrsets('example.com', [
        RRsetChange('mta-sts.example.com', 'CNAME', None, [], 300, ['p.hoster.example']),
        RRsetChange('mta-sts.example.com', 'A', 300, ['192.0.2.1'], 300, [])])
    update = server.sent[0]
    assert [(rrset.rdtype, rrset.rdclass) for rrset in update.prerequisite] == [
        (dns.rdatatype.CNAME, dns.rdataclass.NONE), (dns.rdatatype.A, dns.rdataclass.IN)]
    assert [(rrset.rdtype, rrset.deleting, [rdata.to_text() for rdata in rrset]) for rrset in update.update] == [
        (dns.rdatatype.A, dns.rdataclass.NONE, ['192.0.2.1']), (dns.rdatatype.CNAME, None, ['p.hoster.example.'])]


def _change(before, wanted, name='_mta-sts.example.com'):
    rrset = TxtRRset(name, 300, [tuple(value.encode() for value in strings) for strings in before])
    return plan_name(rrset, wanted, lambda text: text.startswith('v=STSv1'), lambda a, b: a == b, 3600)


def test_apply_sends_one_signed_update_pinned_to_the_rrset_read(monkeypatch):
    server = _serve(monkeypatch, _response)
    _provider().apply('example.com', [_change([('v=STSv1; id=old;',), ('note',)], 'v=STSv1; id=new;'),
                                      _change([], 'v=STSv1; id=x;', '_mta-sts.b.example.com')])
    (update,) = server.sent
    assert update.opcode() == dns.opcode.UPDATE and update.keyname == dns.name.from_text('lab-key')
    text = update.to_text()
    # Prerequisites: the exact RRset read (present), or none there (absent).
    assert '_mta-sts.example.com. 0 IN TXT "v=STSv1; id=old;"' in text and '_mta-sts.example.com. 0 IN TXT "note"' in text
    assert '_mta-sts.example.com. 0 NONE TXT "v=STSv1; id=old;"' in text
    assert '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=new;"' in text
    assert '_mta-sts.b.example.com. NONE TXT\n' in text and '_mta-sts.b.example.com. 3600 IN TXT "v=STSv1; id=x;"' in text


@pytest.mark.parametrize('rcode', [dns.rcode.NXRRSET, dns.rcode.YXRRSET])
def test_a_failed_prerequisite_is_a_conflict(monkeypatch, rcode):
    _serve(monkeypatch, lambda update: _response(update, rcode))
    with pytest.raises(ConflictError) as error:
        _provider().apply('example.com', [_change([('v=STSv1; id=old;',)], 'v=STSv1; id=new;')])
    assert str(error.value) == ('update example.com at server 192.0.2.53 port 5300: the TXT records changed since they '
                                'were read (%s); nothing was applied, re-run' % dns.rcode.to_text(rcode))


def test_an_unsigned_refusal_of_a_query_is_asked_again_unsigned_to_name_the_cause(monkeypatch):
    def answer(query):
        if query.keyname is not None:
            raise dns.exception.FormError('response requires a TSIG but does not have one')
        return _response(query, dns.rcode.REFUSED, aa=False)
    server = _serve(monkeypatch, answer)
    with pytest.raises(ProviderError) as error:
        _provider().find_zone('_mta-sts.other.org')
    assert str(error.value) == ('query _mta-sts.other.org SOA: server 192.0.2.53 port 5300 refused the query for '
                                '_mta-sts.other.org (REFUSED): it does not serve that zone; check server, or give zone')
    assert [message.keyname is not None for message in server.sent] == [True, False]


def test_an_unsigned_refusal_of_an_update_is_never_sent_again_unsigned(monkeypatch):
    def answer(update):
        raise dns.exception.FormError('response requires a TSIG but does not have one')
    server = _serve(monkeypatch, answer)
    with pytest.raises(ProviderError, match="refused the update without checking key 'lab-key'"):
        _provider().apply('example.com', [_change([], 'v=STSv1; id=new;')])
    assert len(server.sent) == 1


@pytest.mark.parametrize('rcode, expected', [
    (dns.rcode.REFUSED, "refused the update (REFUSED): key 'lab-key' may not update zone example.com there"),
    (dns.rcode.NOTAUTH, 'is not the primary of zone example.com (NOTAUTH); give the primary as server'),
    (dns.rcode.SERVFAIL, 'answered SERVFAIL; nothing was applied'),
])
def test_update_refusals_say_what_to_check(monkeypatch, rcode, expected):
    _serve(monkeypatch, lambda update: _response(update, rcode))
    with pytest.raises(ProviderError, match=expected.replace('(', r'\(').replace(')', r'\)')):
        _provider().apply('example.com', [_change([], 'v=STSv1; id=new;')])


@pytest.mark.parametrize('failure, expected', [
    (dns.tsig.PeerBadKey, "does not know TSIG key 'lab-key' with algorithm hmac-sha256 (BADKEY); check key_name"),
    (dns.tsig.PeerBadSignature, "rejected TSIG key 'lab-key': the signature does not verify (BADSIG); check key_secret"),
    (dns.tsig.PeerBadTime, 'the clocks of this host and the server differ too much (BADTIME)'),
    (dns.exception.Timeout, 'no answer from server 192.0.2.53 port 5300 within 10.0 seconds'),
    (ConnectionRefusedError, 'refused the TCP connection: nothing listens there; check server and port'),
    (EOFError, 'closed the connection without answering'),
])
def test_transport_and_tsig_failures_say_what_to_check_without_the_secret(monkeypatch, failure, expected):
    def answer(query):
        raise failure()
    _serve(monkeypatch, answer)
    with pytest.raises(ProviderError) as error:
        _provider().find_zone('_mta-sts.example.com')
    assert expected in str(error.value)
    assert SECRET not in str(error.value)


def test_key_name_and_secret_go_together_and_a_bad_secret_is_not_shown():
    with pytest.raises(ProviderError, match='give both for TSIG, or neither'):
        Rfc2136Provider('192.0.2.53', key_name='k')
    with pytest.raises(ProviderError) as error:
        Rfc2136Provider('192.0.2.53', key_name='k', key_secret='not base64 !!')
    assert 'not base64' not in str(error.value).replace('not valid base64', '')


def test_settings_take_the_documented_defaults():
    provider = Rfc2136Provider.from_params({'server': '192.0.2.53'})
    assert (provider.port, provider.timeout, provider.keyring) == (53, 10.0, None)
