"""One class per DNS provider under test: the module options that reach it, and a
way to seed and inspect the live records that does not go through the collection's code.

Every backend counts the writes the provider received, measured at the server
(or on disk), never as reported by the module.
"""

import os
import textwrap

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

ZONES = ('alpha.example', 'beta.example')


def _zone_of(name):
    for zone in ZONES:
        if name == zone or name.endswith('.' + zone):
            return zone
    raise ValueError('%s is in no lab zone' % name)


def _quote(value):
    if isinstance(value, tuple):
        return ' '.join('"%s"' % part for part in value)
    return '"%s"' % value


class Backend:
    """Inspection common to all backends: ``txt(name)`` gives (ttl, [values as tuples of bytes]) read without our code."""

    def strings(self, name):
        return sorted(self.txt(name)[1])

    def typed(self, name, *rtypes):
        """``{rtype: sorted presentation texts}`` of the records at ``name``, read without our code (dnspython's form)."""
        return dict((rtype, sorted(self.records(name, rtype))) for rtype in rtypes)

    def ttl(self, name):
        return self.txt(name)[0]


class ZoneBackend(Backend):
    """Backends whose whole zone dnspython can read (``zone(name)``)."""

    def records(self, name, rtype):
        node = self.zone(_zone_of(name)).get_node(dns.name.from_text(name))
        rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rtype)) if node is not None else None
        return [rdata.to_text() for rdata in rdataset or []]

    def txt(self, name):
        node = self.zone(_zone_of(name)).get_node(dns.name.from_text(name))
        rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT) if node is not None else None
        if not rdataset:
            return None, []
        return rdataset.ttl, [tuple(rdata.strings) for rdata in rdataset]


class Rfc2136Backend(ZoneBackend):
    name = 'rfc2136'

    def __init__(self, knot, proxy):
        self.knot = knot
        self.proxy = proxy

    def module_args(self):
        return {
            'provider': 'rfc2136',
            'server': self.proxy.listen_address,
            'port': self.proxy.listen_port,
            'key_name': self.knot.key_name,
            'key_secret': self.knot.key_secret,
        }

    def seed(self, name, values, ttl=300):
        self.knot.add_records(_zone_of(name), ['%s. %d IN TXT %s' % (name, ttl, _quote(value)) for value in values])

    def seed_cname(self, name, target):
        self.knot.add_records(_zone_of(name), ['%s. 300 IN CNAME %s.' % (name, target)])

    def seed_record(self, name, rtype, text, ttl=300):
        self.knot.add_records(_zone_of(name), ['%s. %d IN %s %s' % (name, ttl, rtype, text)])

    def zone(self, zone):
        return self.knot.axfr(zone)

    def reset(self):
        self.proxy.reset()

    def writes(self):
        return self.proxy.counts().get('UPDATE', 0)

    def messages(self):
        counts = self.proxy.counts()
        return counts.get('QUERY', 0) + counts.get('UPDATE', 0)


class ZonefileBackend(ZoneBackend):
    name = 'zonefile'

    def __init__(self, directory):
        self.directory = directory
        for zone in ZONES:
            with open(self.path(zone), 'w') as handle:
                handle.write(textwrap.dedent('''\
                    ; %(zone)s, kept in git by the mail team
                    $TTL 3600
                    $ORIGIN %(zone)s.
                    @   IN SOA ns1 hostmaster (
                            2026112801 ; serial
                            7200       ; refresh
                            3600       ; retry
                            1209600    ; expire
                            300 )      ; minimum
                        IN NS ns1
                        IN MX 10 mx1
                    ns1 IN A 127.0.0.1
                    mx1 IN A 127.0.0.1
                    @   IN TXT "v=spf1 mx -all"
                    ''') % {'zone': zone})
        self._snapshot = {}
        self.reset()

    def path(self, zone):
        return os.path.join(self.directory, '%s.zone' % zone)

    def module_args(self):
        return {'provider': 'zonefile', 'zone_file': os.path.join(self.directory, '{zone}.zone')}

    def seed(self, name, values, ttl=300):
        with open(self.path(_zone_of(name)), 'a') as handle:
            for value in values:
                handle.write('%s. %d IN TXT %s\n' % (name, ttl, _quote(value)))
        self.reset()

    def seed_cname(self, name, target):
        self.seed_record(name, 'CNAME', target + '.')

    def seed_record(self, name, rtype, text, ttl=300):
        with open(self.path(_zone_of(name)), 'a') as handle:
            handle.write('%s. %d IN %s %s\n' % (name, ttl, rtype, text))
        self.reset()

    def zone(self, zone):
        return dns.zone.from_file(self.path(zone), origin=zone, relativize=False)

    def _state(self):
        state = {}
        for zone in ZONES:
            stat = os.stat(self.path(zone))
            state[zone] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return state

    def reset(self):
        self._snapshot = self._state()

    def writes(self):
        """Zone files rewritten since reset (the provider replaces a file to write it)."""
        now = self._state()
        return sum(1 for zone in ZONES if now[zone] != self._snapshot[zone])

    def messages(self):
        return self.writes()

    def texts(self):
        texts = {}
        for zone in ZONES:
            with open(self.path(zone)) as handle:
                texts[zone] = handle.read()
        return texts


def _presentation(rtype, text):
    """A record's data as an API returns it, in dnspython's presentation form (as ``ZoneBackend.records`` gives it)."""
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), text).to_text()


def _txt_strings(presentation):
    """A TXT value as an API returns it (quoted strings) to its character-strings, parsed by dnspython."""
    return tuple(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, presentation).strings)


class Route53Backend(Backend):
    """moto's server behind the fault proxy; writes counted at the proxy."""
    name = 'route53'

    def __init__(self, moto, proxy):
        self.moto = moto
        self.proxy = proxy
        self.client = moto.client()
        self.zone_ids = dict((zone, moto.create_zone(zone)) for zone in ZONES)

    def module_args(self):
        return {
            'provider': 'route53',
            'endpoint_url': self.proxy.endpoint_url,
            'aws_access_key_id': 'AKIDLAB',
            'aws_secret_access_key': 'lab-secret-key',
            'retry_max_seconds': 30,
        }

    def _sets(self, name):
        answer = self.client.list_resource_record_sets(HostedZoneId=self.zone_ids[_zone_of(name)], StartRecordName=name)
        return [rrset for rrset in answer['ResourceRecordSets'] if rrset['Name'].rstrip('.') == name]

    def _change(self, name, action, rrset):
        self.client.change_resource_record_sets(HostedZoneId=self.zone_ids[_zone_of(name)], ChangeBatch={
            'Changes': [{'Action': action, 'ResourceRecordSet': rrset}]})

    def seed(self, name, values, ttl=300):
        current = [rrset for rrset in self._sets(name) if rrset['Type'] == 'TXT']
        records = current[0]['ResourceRecords'] if current else []
        records = records + [{'Value': _quote(value)} for value in values]
        self._change(name, 'UPSERT', {'Name': name + '.', 'Type': 'TXT', 'TTL': ttl, 'ResourceRecords': records})

    def seed_cname(self, name, target):
        self.seed_record(name, 'CNAME', target + '.')

    def seed_record(self, name, rtype, text, ttl=300):
        self._change(name, 'CREATE', {'Name': name + '.', 'Type': rtype, 'TTL': ttl, 'ResourceRecords': [{'Value': text}]})

    def records(self, name, rtype):
        return [_presentation(rtype, record['Value']) for rrset in self._sets(name) if rrset['Type'] == rtype
                for record in rrset['ResourceRecords']]

    def txt(self, name):
        for rrset in self._sets(name):
            if rrset['Type'] == 'TXT':
                return rrset['TTL'], [_txt_strings(record['Value']) for record in rrset['ResourceRecords']]
        return None, []

    def reset(self):
        self.proxy.reset_counts()

    def writes(self):
        return self.proxy.writes()

    def messages(self):
        return sum(self.proxy.counts().values()) + sum(self.proxy.faults().values())

    def throttle(self, ratio=None, seed=0, writes_only=False, count=None):
        """Throttle a share of requests (Throttling and PriorRequestNotComplete, as Route 53 does)."""
        operations = ['ChangeResourceRecordSets'] if writes_only else None
        self.proxy.inject('Throttling', ratio=ratio, seed=seed, operations=operations, count=count)
        if not writes_only and ratio:
            self.proxy.inject('PriorRequestNotComplete', ratio=ratio / 3, seed=seed + 1, operations=['ChangeResourceRecordSets'])

    def faults(self):
        return sum(self.proxy.faults().values())

    def clear_faults(self):
        self.proxy.clear_faults()


class CloudflareBackend(Backend):
    """The Cloudflare v4 API stand-in; requests counted at the server."""
    name = 'cloudflare'
    token = 'lab-token-7c1e'

    def __init__(self, api):
        self.api = api
        for zone in ZONES:
            api.add_zone(zone)

    def module_args(self):
        return {'provider': 'cloudflare', 'api_token': self.token, 'base_url': self.api.base_url, 'retry_max_seconds': 30}

    def seed(self, name, values, ttl=300):
        for value in values:
            self.api.add_record(_zone_of(name), 'TXT', name, _quote(value), ttl=ttl)

    def seed_cname(self, name, target):
        self.api.add_record(_zone_of(name), 'CNAME', name, target, ttl=300)

    def seed_record(self, name, rtype, text, ttl=300):
        fields = {}
        if rtype == 'MX':
            # The API takes an MX's preference as its own field.
            preference, text = text.split()
            fields['priority'] = int(preference)
        if rtype == 'TLSA':
            # The API takes TLSA as a data object only, and derives the content.
            usage, selector, matching_type, certificate = text.split(None, 3)
            fields['data'] = {'usage': int(usage), 'selector': int(selector), 'matching_type': int(matching_type),
                              'certificate': ''.join(certificate.split())}
            text = None
        self.api.add_record(_zone_of(name), rtype, name, text and text.rstrip('.'), ttl=ttl, **fields)

    def records(self, name, rtype):
        records = self.api.records(_zone_of(name), name=name, type=rtype)
        if rtype in ('A', 'AAAA', 'CNAME', 'TLSA'):
            return [_presentation(rtype, record['content'] + ('.' if rtype == 'CNAME' else '')) for record in records]
        # The stand-in keeps no MX priority field: other types are compared as stored.
        return [record['content'] for record in records]

    def txt(self, name):
        records = self.api.records(_zone_of(name), name=name, type='TXT')
        if not records:
            return None, []
        ttls = set(record['ttl'] for record in records)
        return (ttls.pop() if len(ttls) == 1 else sorted(ttls)), [_txt_strings(record['content']) for record in records]

    def reset(self):
        self.api.reset_counts()

    def writes(self):
        return self.api.writes()

    def messages(self):
        return self.api.counts()['total']

    def throttle(self, ratio=None, seed=0, writes_only=False, count=None):
        """HTTP 429 with Retry-After on a share of requests, and some 502s, as Cloudflare's edge does."""
        methods = ('POST', 'PUT', 'PATCH', 'DELETE') if writes_only else None
        self.api.inject(429, ratio=ratio, seed=seed, retry_after=1, methods=methods, count=count)
        if not writes_only and ratio:
            self.api.inject(502, ratio=ratio / 3, seed=seed + 1)

    def faults(self):
        return self.api.counts()['faults']

    def clear_faults(self):
        self.api.clear_faults()
