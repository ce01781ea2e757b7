"""mailsec.mta_sts.tlsa_record through real ansible-playbook runs, on every provider.

The same plays run against Knot (RFC 2136, behind the counting DNS proxy), zone
files, moto (behind the counting Route 53 proxy) and the Cloudflare stand-in.
Records are read back at the server or on disk, never taken from what the module
reports; requests are counted where they arrive. The budget is one read and at
most one write per zone per run. Run with ``-s`` to see the counts.

There is no MX behind these hosts, so the serving check is off here; the guard
has its own tests.
"""

import hashlib

import dns.name
import dns.rdatatype
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.playbook import run_playbook

MODULE = 'mailsec.mta_sts.tlsa_record'
TTL = 300
KEYS = [ec.generate_private_key(ec.SECP256R1()) for _key in range(3)]


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def data(key):
    """The 3 1 1 record data of a key, computed here from the DER SubjectPublicKeyInfo (RFC 6698 section 2.1)."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return '3 1 1 ' + hashlib.sha256(spki).hexdigest()


def spki_record(key):
    """3 1 0: the whole SubjectPublicKeyInfo, long enough for dnspython (and Knot) to write it in chunks."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return '3 1 0 ' + spki.hex()


def canonical(text):
    """Presentation text of a TLSA record as "u s m hex": chunks joined, lower case."""
    fields = text.split()
    return ' '.join(fields[:3] + [''.join(fields[3:]).lower()])


def task(backend, hosts, **options):
    args = backend.module_args()
    args.update(hosts=hosts, ttl=TTL, serving_check={'enabled': False}, **options)
    return {'name': 'under test', MODULE: args}


def requests(backend):
    """Reads and writes of record data that reached the server since the last reset (reads None: not countable)."""
    if backend.name == 'rfc2136':
        counts = backend.proxy.counts()
        # SOA queries find the zone of a name; every other query (AXFR included) reads records.
        return {'reads': counts['QUERY'] - counts['QUERY/SOA'], 'writes': counts['UPDATE']}
    if backend.name == 'route53':
        counts = backend.proxy.counts()
        return {'reads': counts['ListResourceRecordSets'], 'writes': backend.writes()}
    if backend.name == 'cloudflare':
        return {'reads': backend.api.counts()['GET dns_records'], 'writes': backend.writes()}
    return {'reads': None, 'writes': backend.writes()}


def serials(backend, zones):
    """The SOA serial of each zone, where the backend keeps one (a write must move it, a no-op must not)."""
    if backend.name not in ('rfc2136', 'zonefile'):
        return None
    return dict((zone, backend.zone(zone).find_rdataset(dns.name.from_text(zone), dns.rdatatype.SOA)[0].serial)
                for zone in zones)


def run(backend, label, tasks, **kwargs):
    backend.reset()
    result = run_playbook(tasks, **kwargs)
    counted = requests(backend)
    print('\n%-10s %-22s reads=%s writes=%s' % (backend.name, label, counted['reads'], counted['writes']))
    return result, counted


def test_tlsa_on_every_provider_one_read_and_at_most_one_write_per_zone(backend, domain, workdir):
    beta = domain.replace('.alpha.example', '.beta.example')
    current, following, other = KEYS
    keys = {'mx1.' + domain: (current, following), 'mx2.' + domain: (current, following), 'mx1.' + beta: (other, following)}
    names = dict((host, '_25._tcp.' + host) for host in keys)
    # Ready data beside the keys on one host: a long record, which servers and zone files write in chunks.
    ready = {'mx1.' + beta: [spki_record(other)]}
    zones = [domain.split('.', 1)[1], beta.split('.', 1)[1]]

    # Beside the TLSA: a TXT the module must never touch. Already there, written by hand in upper case:
    # mx2's next record, which the module must take as the same record (kept as it is, then removed as it is).
    backend.seed(names['mx1.' + domain], ['dane note'], ttl=TTL)
    backend.seed_record(names['mx2.' + domain], 'TLSA', data(following)[:6] + data(following)[6:].upper(), ttl=TTL)
    notes = backend.typed(names['mx1.' + domain], 'TXT')

    def expect(by_host):
        return dict((names[host], sorted(values + ready.get(host, []))) for host, values in by_host.items())

    def live():
        return dict((name, sorted(canonical(text) for text in backend.typed(name, 'TLSA')['TLSA'])) for name in names.values())

    def item(host, **keys_given):
        return dict(keys_given, host=host, **({'records': ready[host]} if host in ready else {}))

    both = [item(host, current=public_pem(now), next=public_pem(then)) for host, (now, then) in keys.items()]
    serial = serials(backend, zones)
    published, counted = run(backend, 'publish current+next', [task(backend, both)], workdir=workdir)
    assert published.returncode == 0, published
    assert published.result['changed'] is True
    assert dict((item['name'], sorted(item['after'])) for item in published.result['results']) == \
        expect(dict((host, [data(now), data(then)]) for host, (now, then) in keys.items()))
    [mx2] = [item for item in published.result['results'] if item['host'] == 'mx2.' + domain]
    assert mx2['before'] == [data(following)]
    assert live() == expect(dict((host, [data(now), data(then)]) for host, (now, then) in keys.items()))
    assert counted['writes'] == len(zones)
    assert counted['reads'] in (None, len(zones))
    if serial is not None:
        after = serials(backend, zones)
        assert all(after[zone] != serial[zone] for zone in zones), (serial, after)
        serial = after

    again, counted = run(backend, 're-run', [task(backend, both)], workdir=workdir)
    assert again.returncode == 0 and again.result['changed'] is False, again
    assert counted['writes'] == 0 and counted['reads'] in (None, len(zones))
    assert serials(backend, zones) == serial

    only_current = [item(host, current=public_pem(now)) for host, (now, _then) in keys.items()]
    retired, counted = run(backend, 'remove next', [task(backend, only_current)], workdir=workdir)
    assert retired.returncode == 0 and retired.result['changed'] is True, retired
    assert live() == expect(dict((host, [data(now)]) for host, (now, _then) in keys.items()))
    assert counted['writes'] == len(zones) and counted['reads'] in (None, len(zones))

    # A CNAME at the name sends TLSA look-ups elsewhere: refused, nothing written anywhere.
    aliased = 'mx3.' + domain
    backend.seed_cname('_25._tcp.' + aliased, 'tlsa.hoster.example')
    refused, counted = run(backend, 'CNAME at the name', [task(backend, only_current + [
        {'host': aliased, 'current': public_pem(current)}])], workdir=workdir)
    assert refused.returncode != 0
    assert 'CNAME' in refused.result['msg'] and '_25._tcp.' + aliased in refused.result['msg'], refused.result['msg']
    assert counted['writes'] == 0
    assert backend.typed('_25._tcp.' + aliased, 'TLSA', 'CNAME') == {'TLSA': [], 'CNAME': ['tlsa.hoster.example.']}

    removed, counted = run(backend, 'state=absent', [task(backend, list(keys), state='absent')], workdir=workdir)
    assert removed.returncode == 0 and removed.result['changed'] is True, removed
    assert live() == dict((name, []) for name in names.values())
    assert counted['writes'] == len(zones) and counted['reads'] in (None, len(zones))
    assert backend.typed(names['mx1.' + domain], 'TXT') == notes and notes['TXT']
