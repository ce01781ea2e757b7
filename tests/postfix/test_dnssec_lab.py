"""The DNSSEC lab as every Postfix test sees it: through /etc/resolv.conf.

Queries go through the libc/dnspython resolver configuration the session
fixture bound over /etc/resolv.conf, never straight at a lab address, so
these tests prove what Postfix and the DANE policy server will see.
"""

import os
import subprocess
import sys
import time
import uuid

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from tests.lab.netns import outside_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEN_WITHIN = 5.0


@pytest.fixture
def resolver(dnssec_lab):
    """dnspython's default resolver, configured from /etc/resolv.conf, asking with DO
    (a validating resolver sets AD only for a query with DO or AD)."""
    res = dns.resolver.Resolver()
    assert res.nameservers == [dnssec_lab.resolver_address], 'not configured from the lab resolv.conf'
    res.use_edns(0, dns.flags.DO, 1232)
    res.lifetime = 5
    return res


def _ad(answer):
    return bool(answer.response.flags & dns.flags.AD)


def _unique_label():
    return f'h{uuid.uuid4().hex[:12]}'


def _poll(check, within=SEEN_WITHIN):
    """``check()`` until it returns a true value or ``within`` seconds pass; its last value."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_signed_zone_answers_with_ad(dnssec_lab, resolver):
    answer = resolver.resolve(dnssec_lab.signed_probe, 'SOA')
    assert _ad(answer)
    assert _ad(resolver.resolve(dnssec_lab.signed_probe, 'NS'))


def test_unsigned_zone_answers_without_ad(dnssec_lab, resolver):
    zone = dnssec_lab.unsigned_zones[0]
    answer = resolver.resolve(zone, 'SOA')
    assert answer.rrset is not None
    assert not _ad(answer)
    # Unsigned in Knot too: the missing AD is not a validation problem.
    assert dnssec_lab.knot.query(zone, 'DNSKEY') == []


def test_bogus_zone_is_servfail_though_knot_serves_it_signed(dnssec_lab, resolver):
    with pytest.raises(dns.resolver.NoNameservers) as failure:
        resolver.resolve(dnssec_lab.bogus_name, 'A')
    assert 'SERVFAIL' in str(failure.value)
    # Knot has the name, signed; with checking disabled unbound hands it out:
    # the SERVFAIL is the validator rejecting it, not a missing record.
    direct = dns.query.tcp(dns.message.make_query(dnssec_lab.bogus_name, 'A', want_dnssec=True),
                           dnssec_lab.knot.address, port=dnssec_lab.knot.port, timeout=5)
    assert {rrset.rdtype for rrset in direct.answer} == {dns.rdatatype.A, dns.rdatatype.RRSIG}
    unchecked = dns.resolver.Resolver()
    unchecked.use_edns(0, dns.flags.DO, 1232)
    unchecked.flags = dns.flags.RD | dns.flags.CD
    assert [rd.to_text() for rd in unchecked.resolve(dnssec_lab.bogus_name, 'A')] == ['127.0.0.1']


def test_added_record_is_signed_and_seen_through_libc(dnssec_lab, resolver):
    zone = dnssec_lab.signed_probe
    name = f'{_unique_label()}.{zone}'
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(name, 'A')
    dnssec_lab.add_records(zone, [f'{name} 300 IN A 127.0.0.9'])
    answer = _poll(lambda: _resolve_or_none(resolver, name, 'A'))
    assert answer is not None, f'{name} not seen within {SEEN_WITHIN} s'
    assert [rd.to_text() for rd in answer] == ['127.0.0.9']
    assert _ad(answer)
    # Knot's signature on it verifies with the key unbound trusts.
    _assert_signed_by_ksk(dnssec_lab, zone, name)
    # glibc (getent: what Postfix's own lookups go through) reads the same resolv.conf.
    getent = subprocess.run(['getent', 'hosts', name.rstrip('.')], capture_output=True,
                            text=True, timeout=10, check=False)
    assert getent.returncode == 0, getent
    assert getent.stdout.split()[0] == '127.0.0.9'

    dnssec_lab.remove_records(zone, [f'{name} 300 IN A 127.0.0.9'])
    assert _poll(lambda: _resolve_or_none(resolver, name, 'A') is None), f'{name} still answered'


def test_change_made_in_knot_alone_is_seen_within_seconds(dnssec_lab, resolver):
    # No flush: the resolver's short cache TTLs alone bound how stale it gets.
    zone = dnssec_lab.signed_probe
    name = f'{_unique_label()}.{zone}'
    dnssec_lab.knot.add_records(zone, [f'{name} 300 IN TXT "one"'])
    assert _poll(lambda: _txt(resolver, name) == ['"one"'])
    dnssec_lab.knot.remove_records(zone, [f'{name} 300 IN TXT "one"'])
    dnssec_lab.knot.add_records(zone, [f'{name} 300 IN TXT "two"'])
    began = time.monotonic()
    assert _poll(lambda: _txt(resolver, name) == ['"two"'])
    assert time.monotonic() - began < 4


def test_machine_resolv_conf_is_untouched(dnssec_lab):
    with open('/etc/resolv.conf', 'rb') as f:
        inside = f.read()
    with open(dnssec_lab.resolv_conf_path, 'rb') as f:
        assert inside == f.read()
    # Read through the root of a process outside our mount namespace (the
    # caller of scripts/lab-netns): the machine's file, as it was before the bind.
    outside_pid = outside_process('mnt')
    assert outside_pid is not None
    with open(f'/proc/{outside_pid}/root/etc/resolv.conf', 'rb') as f:
        outside = f.read()
    assert outside == dnssec_lab.machine_resolv_conf
    assert outside != inside
    assert dnssec_lab.workdir.encode() not in outside


def _in_machine_namespaces(argv):
    """Run ``argv`` in the network and mount namespaces of the machine (those
    of the process that started scripts/lab-netns)."""
    pid = outside_process('net')
    assert pid is not None and pid == outside_process('mnt')
    return subprocess.run(['nsenter', f'--net=/proc/{pid}/ns/net', f'--mount=/proc/{pid}/ns/mnt',
                           f'--wd={REPO}', *argv], capture_output=True, text=True, timeout=120, check=False)


def test_tests_refuse_to_run_outside_the_namespace():
    # --collect-only: even if the refusal failed, no server would start out there.
    run = _in_machine_namespaces([sys.executable, '-m', 'pytest', '--collect-only', '-q', '-p',
                                  'no:cacheprovider', 'tests/postfix/test_dnssec_lab.py'])
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run
    assert 'scripts/lab-netns' in run.stderr + run.stdout
    assert 'collected' not in run.stdout


def test_resolv_conf_bind_refused_outside_the_namespace(tmp_path):
    code = ('import sys\n'
            'from tests.lab.dnssec import DnssecLab\n'
            'lab = DnssecLab(sys.argv[1])\n'
            'try:\n'
            '    with lab.bind_resolv_conf():\n'
            '        print("BOUND")\n'
            'except RuntimeError as e:\n'
            '    print(e)\n')
    run = _in_machine_namespaces([sys.executable, '-c', code, str(tmp_path / 'never-started')])
    assert run.returncode == 0, run
    assert 'BOUND' not in run.stdout
    assert 'bind_resolv_conf only runs inside scripts/lab-netns' in run.stdout
    assert 'network interfaces other than lo' in run.stdout


def _resolve_or_none(resolver, name, rdtype):
    try:
        return resolver.resolve(name, rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None


def _txt(resolver, name):
    answer = _resolve_or_none(resolver, name, 'TXT')
    return sorted(rd.to_text() for rd in answer) if answer is not None else None


def _assert_signed_by_ksk(dnssec_lab, zone, name):
    direct = dns.query.tcp(dns.message.make_query(name, 'A', want_dnssec=True),
                           dnssec_lab.knot.address, port=dnssec_lab.knot.port, timeout=5)
    rrset = direct.find_rrset(direct.answer, dns.name.from_text(name), dns.rdataclass.IN,
                              dns.rdatatype.A)
    rrsig = direct.find_rrset(direct.answer, dns.name.from_text(name), dns.rdataclass.IN,
                              dns.rdatatype.RRSIG, dns.rdatatype.A)
    keys = {dns.name.from_text(zone): dns.rrset.from_rdata(zone, 300, dnssec_lab.knot.ksk(zone))}
    dns.dnssec.validate(rrset, rrsig, keys)
