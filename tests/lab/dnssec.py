"""A DNSSEC lab on loopback: Knot signs, unbound validates.

``DnssecLab`` starts a Knot serving every lab zone (signed ones signed by
Knot itself) and a validating unbound on port 53 in front of it, with a
trust anchor for each signed zone read from Knot once it has signed.  One
signed zone, ``bogus_zone``, gets a wrong anchor, so every answer from it is
bogus: unbound answers SERVFAIL, as for a zone whose signatures are broken.
Unsigned zones are insecure (answers without AD).

``bind_resolv_conf()`` points the libc resolver (Postfix, dnspython's
default resolver, ``getent``) at that unbound by bind-mounting a lab
resolv.conf over /etc/resolv.conf: only inside a private mount namespace
(``scripts/lab-netns``), so the machine's own file is never touched.
"""

import contextlib
import os

import dns.dnssec

from .knot import KnotLab
from .netns import bind_mount
from .unbound import UnboundLab

RESOLV_CONF = '/etc/resolv.conf'


def _fqdn(zone):
    return zone.rstrip('.').lower() + '.'


def wrong_ds_anchor(zone, ksk):
    """A DS trust anchor for ``zone`` with the key tag and algorithm of its
    real key but a digest of nothing it has: a stale or mistyped DS."""
    real = dns.dnssec.make_ds(zone, ksk, 'SHA256')
    wrong = bytes(b ^ 0xff for b in real.digest)
    return f'{zone} DS {real.key_tag} {real.algorithm} {real.digest_type} {wrong.hex()}'


class DnssecLab:
    """Knot (every zone, on 127.0.0.1:``knot_port``) plus a validating
    unbound on ``resolver_address``:53.  A context manager; ``start()`` /
    ``stop()``."""

    def __init__(self, workdir, signed_zones=('sts.example.',), unsigned_zones=('plain.example.',),
                 bogus_zone='bogus.example.', resolver_address='127.0.0.1', knot_port=5300):
        if not signed_zones:
            raise ValueError('a DNSSEC lab needs at least one signed zone')
        self.workdir = os.path.abspath(workdir)
        self.signed_zones = [_fqdn(z) for z in signed_zones]
        self.unsigned_zones = [_fqdn(z) for z in unsigned_zones]
        self.bogus_zone = _fqdn(bogus_zone) if bogus_zone else None
        bogus = [self.bogus_zone] if self.bogus_zone else []
        self.knot = KnotLab(os.path.join(self.workdir, 'knot'),
                            self.signed_zones + self.unsigned_zones + bogus,
                            port=knot_port, signed_zones=self.signed_zones + bogus)
        self.resolver_address = resolver_address
        self.resolver = None
        self.signed_probe = self.signed_zones[0]
        self.bogus_name = f'www.{self.bogus_zone}' if self.bogus_zone else None
        self.resolv_conf_path = os.path.join(self.workdir, 'resolv.conf')
        # /etc/resolv.conf as it was before bind_resolv_conf covered it.
        self.machine_resolv_conf = None

    def trust_anchors(self):
        """unbound's ``trust-anchor`` lines: the real KSK of each signed
        zone, a wrong DS for the bogus zone."""
        anchors = [f'{zone} DNSKEY {self.knot.ksk(zone)}' for zone in self.signed_zones]
        if self.bogus_zone:
            anchors.append(wrong_ds_anchor(self.bogus_zone, self.knot.ksk(self.bogus_zone)))
        return anchors

    def start(self):
        self.knot.start()
        try:
            if self.bogus_name:
                # The name exists and is signed: its SERVFAIL is the anchor's doing.
                self.knot.add_records(self.bogus_zone, [f'{self.bogus_name} 300 IN A 127.0.0.1'])
            stubs = {zone: (self.knot.address, self.knot.port) for zone in self.knot.zones}
            self.resolver = UnboundLab(os.path.join(self.workdir, 'unbound'), stubs,
                                       self.trust_anchors(), address=self.resolver_address).start()
        except BaseException:
            self.knot.stop()
            raise
        with open(self.resolv_conf_path, 'w', encoding='ascii') as f:
            # trust-ad: glibc (2.31+) passes the AD bit on to Postfix only with it.
            f.write(f'# mailsec DnssecLab {self.workdir}\n'
                    f'nameserver {self.resolver_address}\n'
                    'options edns0 trust-ad\n')
        return self

    def stop(self):
        if self.resolver is not None:
            self.resolver.stop()
        self.knot.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def add_records(self, zone, lines):
        """Add records to ``zone`` (Knot signs them at once) and drop what
        unbound cached of the zone, so the next query sees them."""
        self.knot.add_records(zone, lines)
        self.flush(zone)

    def remove_records(self, zone, lines):
        self.knot.remove_records(zone, lines)
        self.flush(zone)

    def flush(self, name=None):
        """Forget unbound's cached answers for ``name`` and below (all when None)."""
        self.resolver.flush(name)

    @contextlib.contextmanager
    def bind_resolv_conf(self):
        """/etc/resolv.conf is the lab's (unbound only) until the block ends.

        Refused outside a private mount namespace: there the bind mount
        would change name resolution for the whole machine.
        """
        with open(RESOLV_CONF, 'rb') as f:
            self.machine_resolv_conf = f.read()
        with bind_mount(self.resolv_conf_path, RESOLV_CONF, 'DnssecLab.bind_resolv_conf'):
            yield self.resolv_conf_path
