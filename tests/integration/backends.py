"""One class per DNS provider under test: the module options that reach it, and a
way to seed and inspect the live records that does not go through the collection's code.

Every backend counts the writes the provider received, measured at the server
(or on disk), never as reported by the module.
"""

import os
import textwrap

import dns.name
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
    """Inspection common to all backends; ``zone(name)`` gives a dnspython Zone read without our code."""

    def _rrset(self, name):
        node = self.zone(_zone_of(name)).get_node(dns.name.from_text(name))
        if node is None:
            return None
        return node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT)

    def strings(self, name):
        rdataset = self._rrset(name)
        return sorted(tuple(rdata.strings) for rdata in rdataset) if rdataset else []

    def ttl(self, name):
        rdataset = self._rrset(name)
        return rdataset.ttl if rdataset else None


class Rfc2136Backend(Backend):
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

    def zone(self, zone):
        return self.knot.axfr(zone)

    def reset(self):
        self.proxy.reset()

    def writes(self):
        return self.proxy.counts().get('UPDATE', 0)

    def messages(self):
        counts = self.proxy.counts()
        return counts.get('QUERY', 0) + counts.get('UPDATE', 0)


class ZonefileBackend(Backend):
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
        with open(self.path(_zone_of(name)), 'a') as handle:
            handle.write('%s. 300 IN CNAME %s.\n' % (name, target))
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
