"""The resolver validation probe (plugins/module_utils/_dnssec.py): the judgement, the options, the questions.

``judge_probe`` is pure and tested with answers written out; ``probe_resolver``
asks nameservers on loopback ports that answer as a validating, a non-validating
and a silent resolver would. The probe against real unbound and Knot is in
tests/postfix/test_dane_policy_live.py.
"""

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnssec import judge_probe, parse_probe, probe_resolver
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from tests.unit.plugins.module_utils.test_live import nameservers  # noqa: F401 pylint: disable=unused-import

VALIDATED = {'rcode': 'NOERROR', 'ad': True, 'records': 13}
REFUSED_BOGUS = {'rcode': 'SERVFAIL', 'ad': False, 'records': 0}
WHERE = '127.0.0.1:53'


def judge(probe_answer=None, bogus_answer=None):
    return judge_probe(WHERE, 'ns:.', probe_answer or VALIDATED, 'www.bogus.example', bogus_answer or REFUSED_BOGUS)


def test_a_validating_resolver_has_no_problem():
    assert judge() == []


def test_no_ad_bit_on_the_probe():
    assert judge(probe_answer={'rcode': 'NOERROR', 'ad': False, 'records': 13}) == [
        'the resolver at 127.0.0.1:53 does not validate DNSSEC: no AD bit on its answer to ns:. (Postfix would '
        'treat every answer as insecure and never use TLSA records)']


def test_the_probe_refused_says_to_pick_a_reachable_signed_name():
    problems = judge(probe_answer={'rcode': 'SERVFAIL', 'ad': False, 'records': 0})
    assert problems == ['the resolver at 127.0.0.1:53 answers SERVFAIL to the DNSSEC probe ns:.: it cannot validate '
                        'that name (set dnssec_probe to a DNSSEC-signed name the resolver can reach, and check its '
                        'trust anchor)']


@pytest.mark.parametrize('bogus_answer, shown', [
    ({'rcode': 'NOERROR', 'ad': False, 'records': 1}, 'NOERROR'),
    ({'rcode': 'NOERROR', 'ad': True, 'records': 1}, 'NOERROR with the AD bit'),
    ({'rcode': 'NXDOMAIN', 'ad': False, 'records': 0}, 'NXDOMAIN'),
])
def test_a_broken_signature_accepted(bogus_answer, shown):
    assert judge(bogus_answer=bogus_answer) == [
        'the resolver at 127.0.0.1:53 answers a name with a broken signature: www.bogus.example gave %s instead '
        'of SERVFAIL, so forged answers would be accepted' % shown]


def test_no_answer_to_either_question_is_two_clear_lines():
    assert judge({'error': 'no answer within 5 s'}, {'error': 'no answer within 5 s'}) == [
        'the resolver at 127.0.0.1:53 did not answer the DNSSEC probe ns:.: no answer within 5 s',
        'the resolver at 127.0.0.1:53 did not answer the name with a broken signature www.bogus.example: '
        'no answer within 5 s']


@pytest.mark.parametrize('text, parsed', [
    ('ns:.', ('NS', '.')),
    ('soa:sts.example.', ('SOA', 'sts.example.')),
    ('SOA: sts.example', ('SOA', 'sts.example')),
])
def test_parse_probe(text, parsed):
    assert parse_probe(text) == parsed


@pytest.mark.parametrize('text', ['', None, 'ns', ':.', 'ns:', 'nosuchtype:.', 'ns:a..b'])
def test_parse_probe_refuses_naming_the_option(text):
    with pytest.raises(ValidationError, match="^dnssec_probe .*use Postfix's type:name form"):
        parse_probe(text)


@pytest.mark.parametrize('kwargs, field', [
    ({'bogus_name': ''}, 'bogus_name'),
    ({'bogus_name': 'a..b'}, 'bogus_name'),
    ({'nameservers': ['resolver.example']}, 'nameservers'),
])
def test_bad_options_fail_before_any_question(kwargs, field, nameservers):
    server = nameservers(lambda query, count: None)
    options = dict({'bogus_name': 'www.bogus.example', 'nameservers': [server.address]}, **kwargs)
    with pytest.raises(ValidationError, match='^%s ' % field):
        probe_resolver('ns:.', **options)
    assert server.queries == []


def resolver(validating):
    """Answers as a resolver would, with or without validation: the bogus name SERVFAILs only when validating."""
    def reply(query, _count):
        response = dns.message.make_response(query)
        name = query.question[0].name.to_text()
        if name == 'www.bogus.example.':
            if validating:
                response.set_rcode(dns.rcode.SERVFAIL)
            else:
                response.answer.append(dns.rrset.from_text(name, 60, 'IN', 'A', '192.0.2.1'))
        else:
            response.answer.append(dns.rrset.from_text(name, 60, 'IN', 'NS', 'ns1.sts.example.'))
            if validating and query.ednsflags & dns.flags.DO:
                response.flags |= dns.flags.AD
        return response
    return reply


def test_probe_resolver_every_server_validating(nameservers):
    servers = [nameservers(resolver(True)), nameservers(resolver(True))]
    assert probe_resolver('ns:sts.example.', 'www.bogus.example', [s.address for s in servers], timeout=2) == []
    assert all(query.ednsflags & dns.flags.DO for server in servers for query in server.queries)
    assert [len(server.queries) for server in servers] == [2, 2]


def test_probe_resolver_names_the_server_that_does_not_validate(nameservers):
    good, bad = nameservers(resolver(True)), nameservers(resolver(False))
    problems = probe_resolver('ns:sts.example.', 'www.bogus.example', [good.address, bad.address], timeout=2)
    assert [problem.split(':')[0] for problem in problems] == ['the resolver at 127.0.0.1'] * 2
    assert all(bad.address in problem for problem in problems)
    assert 'no AD bit on its answer to ns:sts.example.' in problems[0]
    assert 'www.bogus.example gave NOERROR instead of SERVFAIL' in problems[1]


def test_probe_resolver_silent_server(nameservers):
    silent = nameservers(lambda query, count: None)
    problems = probe_resolver('ns:.', 'www.bogus.example', [silent.address], timeout=0.6)
    assert problems == ['the resolver at %s did not answer the DNSSEC probe ns:.: no answer within 0.6 s' % silent.address,
                        'the resolver at %s did not answer the name with a broken signature www.bogus.example: '
                        'no answer within 0.6 s' % silent.address]
    probes = [query for query in silent.queries if query.question[0].name.to_text() == '.']
    assert len(probes) >= 2   # a lost packet is sent again within the timeout
