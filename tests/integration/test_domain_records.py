"""mailsec.mta_sts.domain_records through real ansible-playbook runs, on every provider: a domain's whole
MTA-STS set (``_mta-sts``, ``_smtp._tls``, ``mta-sts`` and the MX host's TLSA) in one run.

The floor the issue asks for is one read and at most one write per zone for all of a domain's names. Both are
counted where they arrive: the DNS proxy in front of Knot (an AXFR or the queries of a zone, not the SOA
queries that find it), the Route 53 proxy in front of moto (ListResourceRecordSets pages, change batches),
the Cloudflare stand-in (record listings, batches) and the zone files on disk (a rewrite per zone; a file is
read once by construction). Records are read back at the server or on disk. Run with ``-s`` for the counts.

There is no MX behind the TLSA hosts, so the serving check is off; the TLSA guard has its own tests.
"""

from tests.integration.test_tlsa_providers import canonical, run

MODULE = 'mailsec.mta_sts.domain_records'
TTL = 300
TLSA_DATA = '3 1 1 ' + '5e' * 32
ADDRESSES = ['127.0.0.10', '2001:db8::10']


def names(domain):
    return {'sts': '_mta-sts.' + domain, 'tlsrpt': '_smtp._tls.' + domain, 'host': 'mta-sts.' + domain,
            'tlsa': '_25._tcp.mx1.' + domain}


def entry(domain, policy_id):
    return {
        'domain': domain,
        'sts': {'id': policy_id},
        'tlsrpt': {'rua': ['mailto:tlsrpt@' + domain]},
        'host': {'addresses': ADDRESSES},
        'tlsa': [{'host': 'mx1.' + domain, 'records': [TLSA_DATA]}],
    }


def task(backend, domains):
    args = backend.module_args()
    args.update(domains=domains, ttl=TTL, serving_check={'enabled': False})
    return {'name': 'under test', MODULE: args}


def joined(backend, name):
    return sorted(b''.join(value).decode() for value in backend.strings(name))


def live(backend, domain):
    """What the server (or the file) holds at the domain's four names, read without the collection's code."""
    at = names(domain)
    return {
        'sts': joined(backend, at['sts']),
        'tlsrpt': joined(backend, at['tlsrpt']),
        'host': backend.typed(at['host'], 'A', 'AAAA', 'CNAME'),
        'tlsa': sorted(canonical(text) for text in backend.typed(at['tlsa'], 'TLSA')['TLSA']),
    }


def published(domain, policy_id):
    return {
        'sts': ['mta-sts note', 'v=STSv1; id=%s;' % policy_id],
        'tlsrpt': ['v=TLSRPTv1; rua=mailto:tlsrpt@%s' % domain],
        'host': {'A': ['127.0.0.10'], 'AAAA': ['2001:db8::10'], 'CNAME': []},
        'tlsa': [TLSA_DATA],
    }


def test_whole_set_of_two_domains_one_read_and_at_most_one_write_per_zone(backend, domain, workdir):
    beta = domain.replace('.alpha.example', '.beta.example')
    domains = [domain, beta]
    zones = len(domains)
    for each in domains:
        # Beside the record: a TXT the module must never touch.
        backend.seed(names(each)['sts'], ['mta-sts note'], ttl=TTL)
    before = dict((each, live(backend, each)) for each in domains)
    wanted = [entry(each, '20261202a') for each in domains]

    planned, counted = run(backend, 'check + diff', [task(backend, wanted)], check=True, diff=True, workdir=workdir)
    assert planned.returncode == 0, planned
    assert planned.result['changed'] is True
    assert counted['writes'] == 0 and counted['reads'] in (None, zones)
    assert dict((each, live(backend, each)) for each in domains) == before
    for each in domains:
        for name in names(each).values():
            assert name in planned.output, (name, planned.output[-3000:])

    applied, counted = run(backend, 'publish four kinds', [task(backend, wanted)], workdir=workdir)
    assert applied.returncode == 0, applied
    assert applied.result['changed'] is True
    assert counted['writes'] == zones and counted['reads'] in (None, zones)
    for each in domains:
        assert live(backend, each) == published(each, '20261202a')
    by_domain = dict((result['domain'], result) for result in applied.result['results'])
    assert sorted(by_domain) == sorted(domains)
    for result in by_domain.values():
        assert result['changed'] is True
        assert all(result[kind]['changed'] for kind in ('sts', 'tlsrpt', 'host'))
        assert [tlsa['changed'] for tlsa in result['tlsa']] == [True]

    again, counted = run(backend, 're-run', [task(backend, wanted)], workdir=workdir)
    assert again.returncode == 0 and again.result['changed'] is False, again
    assert counted['writes'] == 0 and counted['reads'] in (None, zones)

    # A new id for one domain: its zone gets one write, the other zone none.
    changed = [entry(domain, '20261202b'), entry(beta, '20261202a')]
    moved, counted = run(backend, 'new id in one zone', [task(backend, changed)], workdir=workdir)
    assert moved.returncode == 0 and moved.result['changed'] is True, moved
    assert counted['writes'] == 1 and counted['reads'] in (None, zones)
    assert live(backend, domain) == published(domain, '20261202b')
    assert live(backend, beta) == published(beta, '20261202a')


def test_a_conflict_in_one_kind_writes_nothing_anywhere(backend, domain, workdir):
    beta = domain.replace('.alpha.example', '.beta.example')
    first = [entry(domain, 'first1'), dict(entry(beta, 'first1'), tlsrpt=None)]
    setup, _counts = run(backend, 'setup', [task(backend, first)], workdir=workdir)
    assert setup.returncode == 0, setup
    # A CNAME where the TLS-RPT record of the second domain goes (a kind the setup left alone): a delegation
    # the module must not overwrite.
    backend.seed_cname(names(beta)['tlsrpt'], 'tlsrpt.hoster.example')
    before = dict((each, live(backend, each)) for each in (domain, beta))
    refused, counted = run(backend, 'CNAME at _smtp._tls', [task(backend, [entry(domain, 'second2'), entry(beta, 'second2')])],
                           workdir=workdir)
    assert refused.returncode != 0, refused
    assert refused.result.get('conflict') is True, refused.result
    assert 'CNAME' in refused.result['msg'] and names(beta)['tlsrpt'] in refused.result['msg'], refused.result['msg']
    assert counted['writes'] == 0
    assert dict((each, live(backend, each)) for each in (domain, beta)) == before
