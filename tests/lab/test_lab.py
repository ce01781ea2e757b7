"""Tests of the DNS lab itself: Knot on loopback, TSIG updates, the counting proxy.

They need ``knotd`` (Debian package ``knot``) and skip without it.
"""

import base64
import os
import shutil
import socket
import subprocess
import sys
import time

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone
import pytest

from .__main__ import _is_our_knotd
from .dnsproxy import CountingDnsProxy, classify
from . import knot
from .knot import KnotLab, LabError, free_port

pytestmark = pytest.mark.skipif(shutil.which('knotd') is None and not os.path.exists(
    '/usr/sbin/knotd'), reason='knotd (Debian package knot) not installed')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZONES = ['alpha.example', 'beta.example']
# _KNOT_NOTIFY_NOTE: after a DDNS change Knot 3.2 plans a NOTIFY one
# (whole) second ahead, and a further update of the same zone that arrives
# in that second waits for it: up to ~1 s.  Tests that update spread their
# updates over zones, or stay within one second, to stay quick; correctness
# does not depend on it.


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with KnotLab(tmp_path_factory.mktemp('knot'), ZONES) as running:
        yield running


@pytest.fixture
def proxy(lab):
    with CountingDnsProxy(lab.address, lab.port) as running:
        yield running


def _update(zone, keyring=None, name='probe'):
    update = dns.update.UpdateMessage(zone + '.', keyring=keyring,
                                      keyalgorithm=dns.tsig.HMAC_SHA256)
    update.add(f'{name}.{zone}.', 300, 'TXT', '"probe"')
    return update


def _early_in_a_second():
    """Leave enough of the current wall-clock second for a few quick updates
    of one zone, so they do not cross into the second of Knot's planned
    NOTIFY (see _KNOT_NOTIFY_NOTE)."""
    fraction = time.time() % 1
    if fraction > 0.7:
        time.sleep(1.01 - fraction)


def _random_keyring(name):
    secret = base64.b64encode(os.urandom(32)).decode()
    return dns.tsigkeyring.from_text({name: ('hmac-sha256', secret)})


# -- Knot --------------------------------------------------------------------

def test_serves_minimal_zones(lab):
    assert lab.zones == ZONES
    assert lab.key_algorithm == 'hmac-sha256'
    assert len(base64.b64decode(lab.key_secret)) == 32
    for zone in ZONES:
        soa = lab.query(f'{zone}.', 'SOA')
        assert soa == [f'ns1.{zone}. hostmaster.{zone}. 1 3600 900 604800 300']
        assert lab.query(f'{zone}.', 'NS') == [f'ns1.{zone}.']
        assert lab.query(f'ns1.{zone}.', 'A') == ['127.0.0.1']
        assert lab.query(f'{zone}.', 'MX') == [f'10 mx1.{zone}.']
    assert lab.query('nothing.alpha.example.', 'TXT') == []


def test_config_is_loopback_only_and_self_contained(lab):
    with open(lab.conf_path, encoding='ascii') as f:
        conf = f.read()
    assert f'listen: 127.0.0.1@{lab.port}' in conf
    assert '0.0.0.0' not in conf and '::' not in conf
    assert 'zonefile-sync: -1' in conf and 'journal-content: changes' in conf
    assert ('user: root:root' in conf) == (os.geteuid() == 0)
    for line in conf.splitlines():
        if any(k in line for k in ('rundir:', 'storage:')):
            assert str(lab.workdir) in line
    assert oct(os.stat(lab.conf_path).st_mode & 0o777) == '0o600'


def test_rejects_non_loopback_address(tmp_path):
    with pytest.raises(ValueError):
        KnotLab(tmp_path, ZONES, address='0.0.0.0')


def test_signed_update_is_applied(lab):
    lab.add_records('alpha.example', [
        '_mta-sts.alpha.example. 300 IN TXT "v=STSv1; id=a;"',
        '_smtp._tls.alpha.example. 300 TXT "v=TLSRPTv1; rua=mailto:r@alpha.example"',
    ])
    assert lab.query('_mta-sts.alpha.example.', 'TXT') == ['"v=STSv1; id=a;"']
    assert lab.query('_smtp._tls.alpha.example.', 'TXT') == [
        '"v=TLSRPTv1; rua=mailto:r@alpha.example"']
    # Updates land in the journal, the zone file is left alone.
    with open(os.path.join(lab.workdir, 'zones', 'alpha.example.zone'), encoding='ascii') as f:
        assert '_mta-sts' not in f.read()


def test_wrong_secret_is_rejected(lab):
    # Knot answers NOTAUTH/BADSIG unsigned; dnspython turns that into an exception.
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.tcp(_update('beta.example', _random_keyring(lab.key_name), 'badsig'),
                      lab.address, port=lab.port, timeout=5)
    assert lab.query('badsig.beta.example.', 'TXT') == []


def test_unknown_key_and_unsigned_update_are_rejected(lab):
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.query.tcp(_update('beta.example', _random_keyring('stranger'), 'badkey'),
                      lab.address, port=lab.port, timeout=5)
    response = dns.query.tcp(_update('beta.example', None, 'unsigned'),
                             lab.address, port=lab.port, timeout=5)
    assert response.rcode() == dns.rcode.NOTAUTH
    assert lab.query('unsigned.beta.example.', 'TXT') == []


def test_stop_leaves_no_process(tmp_path):
    lab = KnotLab(tmp_path, ['gamma.example'])
    lab.start()
    pid = lab.pid
    assert os.path.exists(f'/proc/{pid}')
    lab.stop()
    assert not os.path.exists(f'/proc/{pid}')
    assert not lab.is_running()
    # The port is free again.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((lab.address, lab.port))
    lab.stop()   # idempotent


def test_start_failure_raises_with_log(tmp_path):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(('127.0.0.1', port))
        lab = KnotLab(tmp_path, ['delta.example'], port=port)
        with pytest.raises(LabError, match='address already in use'):
            lab.start()
    assert not lab.is_running()


def test_picked_port_taken_meanwhile_is_retried(tmp_path, monkeypatch):
    taken, free = free_port(), free_port()
    picks = iter([taken, free])
    monkeypatch.setattr(knot, 'free_port', lambda address: next(picks))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(('127.0.0.1', taken))
        with KnotLab(tmp_path, ['epsilon.example']) as lab:
            assert lab.port == free
            assert lab.query('epsilon.example.', 'MX') == ['10 mx1.epsilon.example.']


def test_two_hundred_zones_start_quickly(tmp_path):
    zones = [f'z{i:03d}.example' for i in range(200)]
    with KnotLab(tmp_path, zones) as lab:
        assert lab.startup_seconds < 5
        assert lab.query('z199.example.', 'MX') == ['10 mx1.z199.example.']


# -- proxy -------------------------------------------------------------------

def test_classify():
    assert classify(dns.message.make_query('a.example.', 'TXT').to_wire()) == ('QUERY', 'TXT')
    assert classify(_update('a.example').to_wire()) == ('UPDATE', 'SOA')


def test_proxy_counts_udp_query(proxy):
    query = dns.message.make_query('alpha.example.', 'SOA')
    response = dns.query.udp(query, '127.0.0.1', port=proxy.listen_port, timeout=5)
    assert response.answer[0].name.to_text() == 'alpha.example.'
    counts = proxy.counts()
    assert counts['QUERY'] == 1 and counts['QUERY/SOA'] == 1
    assert counts['UPDATE'] == 0 and counts['QUERY/AXFR'] == 0


def test_proxy_counts_several_tcp_messages_on_one_connection(lab, proxy):
    with socket.create_connection(('127.0.0.1', proxy.listen_port), timeout=5) as sock:
        for name in ('a', 'b'):
            query = dns.message.make_query(f'{name}.alpha.example.', 'TXT')
            dns.query.send_tcp(sock, query)
            reply = dns.query.receive_tcp(sock)[0]
            assert reply.id == query.id
        # Signed: the reply verifies only if the proxy left every byte alone.
        # beta: alpha had an update moments ago (see _KNOT_NOTIFY_NOTE).
        update = _update('beta.example', lab.keyring, 'viaproxy')
        dns.query.send_tcp(sock, update)
        reply = dns.query.receive_tcp(sock, keyring=lab.keyring, request_mac=update.mac)[0]
        assert reply.rcode() == dns.rcode.NOERROR
    assert lab.query('viaproxy.beta.example.', 'TXT') == ['"probe"']
    counts = proxy.counts()
    assert counts['QUERY/TXT'] == 2 and counts['QUERY'] == 2
    assert counts['UPDATE'] == 1 and counts['UPDATE/SOA'] == 1
    proxy.reset()
    assert proxy.counts()['QUERY'] == 0


def test_proxy_forwards_multi_message_axfr(tmp_path):
    # A zone of its own, fresh for updates (see _KNOT_NOTIFY_NOTE).
    # 2 x 150 TXT records of 400 bytes: more than one 64 KiB AXFR message.
    long_txt = ' '.join(['x' * 200] * 2)
    with KnotLab(tmp_path, ['axfr.example']) as lab, \
            CountingDnsProxy(lab.address, lab.port) as proxy:
        _early_in_a_second()
        for batch in range(2):
            lab.add_records('axfr.example', [
                f'r{batch}-{i}.axfr.example. 300 IN TXT {long_txt}' for i in range(150)])
        messages = list(dns.query.xfr('127.0.0.1', 'axfr.example.', port=proxy.listen_port,
                                      keyring=lab.keyring, keyalgorithm=dns.tsig.HMAC_SHA256,
                                      timeout=10))
        assert len(messages) > 1
        zone = dns.zone.from_xfr(iter(messages))
        assert len(zone.nodes) == 302   # apex, ns1 and the 300 TXT owners
        counts = proxy.counts()
        assert counts['QUERY/AXFR'] == 1 and counts['QUERY'] == 1


def test_proxy_counts_garbage_and_keeps_going(proxy):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b'\x00\x01\x02', ('127.0.0.1', proxy.listen_port))
    query = dns.message.make_query('beta.example.', 'SOA')
    dns.query.udp(query, '127.0.0.1', port=proxy.listen_port, timeout=5)
    counts = proxy.counts()
    assert counts['MALFORMED'] == 1 and counts['QUERY/SOA'] == 1


# -- CLI ---------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, '-m', 'tests.lab', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)


def test_cli_up_status_down(tmp_path):
    workdir = str(tmp_path / 'lab')
    up = _cli('up', '--dir', workdir, '--zone', 'alpha.example', '--zone', 'beta.example')
    assert up.returncode == 0, up.stderr
    try:
        env = subprocess.run(
            ['bash', '-c', f'. {workdir}/lab.env && echo "$LAB_DNS_SERVER $LAB_DNS_PORT '
             '$LAB_TSIG_NAME $LAB_TSIG_ALGORITHM $LAB_ZONES"'],
            capture_output=True, text=True, check=True).stdout.split()
        assert env[0] == '127.0.0.1' and env[2:] == [
            'mailsec-lab', 'hmac-sha256', 'alpha.example', 'beta.example']
        query = dns.message.make_query('beta.example.', 'SOA')
        assert dns.query.udp(query, env[0], port=int(env[1]), timeout=5).answer
        assert _cli('status', '--dir', workdir).returncode == 0
        assert _cli('up', '--dir', workdir, '--zone', 'alpha.example').returncode == 1
    finally:
        with open(os.path.join(workdir, 'knotd.pid'), encoding='ascii') as f:
            pid = int(f.read())
        down = _cli('down', '--dir', workdir)
    assert down.returncode == 0, down.stderr
    # Detached knotd is not our child: it may linger as a zombie until its
    # new parent reaps it, but it must no longer run.
    assert not _is_our_knotd(pid, workdir)
    assert _cli('status', '--dir', workdir).returncode == 3
    assert _cli('down', '--dir', workdir).returncode == 0
