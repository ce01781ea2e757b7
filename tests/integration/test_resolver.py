"""The validator's DNS on bad networks, and its round trips per domain.

A resolver that loses packets must not change a single finding; a dead one gives one bounded failure per
domain that names it; a port with nothing listening is told apart as refused. The round-trip count is a
count, not a benchmark: with 150 ms per round trip, timing tells 3 round trips from 4 with room to spare.
"""

import socket
import time

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._live import Resolver, fetch_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils._validator import validate
from tests.integration.bulk_lab import BulkLab
from tests.integration.playbook import run_playbook
from tests.lab.dnsproxy import CountingDnsProxy
from tests.lab.web import free_loopback_addresses

DOMAINS = ['loss%02d.example' % index for index in range(30)]
# Each query and each answer is lost with this share, so 36 % of the exchanges fail at the first send.
DROP = 0.2
ROUND_TRIP = 0.15


def _lab(tmp_path_factory, name, domains, delay_ms):
    web, dns = free_loopback_addresses(2)
    return BulkLab(str(tmp_path_factory.mktemp(name)), domains, delay_ms, web_address=web, dns_address=dns)


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with _lab(tmp_path_factory, 'bulk', DOMAINS, 0) as running:
        yield running


@pytest.fixture(scope='module')
def clean(lab):
    """The results through a resolver that loses nothing."""
    return validate(DOMAINS, nameservers=lab.nameservers, ca_path=lab.ca_path, concurrency=16)


@pytest.fixture
def lossy(lab):
    with CountingDnsProxy(*lab.forwarder, drop=DROP, seed=8461) as proxy:
        yield proxy


@pytest.fixture
def dead():
    """A resolver that takes every question and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        yield '127.0.0.1:%d' % sock.getsockname()[1]


@pytest.fixture
def closed():
    """A port with nothing listening (bound for a moment to find a free one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return '127.0.0.1:%d' % port


def codes(result):
    return [finding['code'] for finding in result['findings']]


def test_the_clean_run_is_all_valid(clean):
    assert [result['valid'] for result in clean] == [True] * len(DOMAINS)


def test_a_lossy_resolver_changes_no_finding(lab, clean, lossy):
    results = validate(DOMAINS, nameservers=['127.0.0.1:%d' % lossy.listen_port], ca_path=lab.ca_path, concurrency=16)
    dropped = lossy.dropped()
    assert dropped['query'] > 10 and dropped['answer'] > 10, dropped   # the loss really happened
    assert results == clean


def test_a_lossy_resolver_through_the_lookup_in_a_playbook(lab, clean, lossy, workdir):
    run = run_playbook([{'set_fact': {'found': "{{ query('mailsec.mta_sts.validate', *domains, nameservers=nameservers, "
                                               "ca_path=ca_path, concurrency=16) }}"}}],
                       workdir=workdir, play_vars={'domains': DOMAINS, 'ca_path': lab.ca_path,
                                                   'nameservers': ['127.0.0.1:%d' % lossy.listen_port]})
    assert run.returncode == 0, run
    found = run.results[0]['ansible_facts']['found']
    assert sum(lossy.dropped().values()) > 10
    assert [codes(result) for result in found] == [codes(result) for result in clean]
    assert [result['valid'] for result in found] == [True] * len(DOMAINS)


def test_a_dead_resolver_is_one_bounded_failure_per_domain(dead):
    timeout = 2.0
    started = time.monotonic()
    results = validate(DOMAINS[:3], nameservers=[dead], timeout=timeout)
    # Every question of a domain shares one deadline, so the three domains (in parallel) end together.
    assert time.monotonic() - started < 2 * timeout
    for result in results:
        assert result['valid'] is False
        [sts] = [f['message'] for f in result['findings'] if f['code'] == 'sts-dns-error']
        assert 'no answer from %s within the 2 s timeout' % dead in sts, sts


def test_a_port_with_nothing_listening_is_refused_not_timed_out(closed):
    started = time.monotonic()
    [result] = validate(['loss00.example'], nameservers=[closed], timeout=5)
    assert time.monotonic() - started < 2   # refused at once, not waited out
    [sts] = [f['message'] for f in result['findings'] if f['code'] == 'sts-dns-error']
    assert '%s refused the query' % closed in sts and 'no answer' not in sts, sts


def test_policy_info_names_each_server_and_what_it_did(dead, closed, workdir):
    options = {'domains': ['loss00.example'], 'nameservers': [closed, dead], 'timeout': 2}
    run = run_playbook([{'mailsec.mta_sts.policy_info': options}], workdir=workdir)
    assert run.returncode == 0, run
    [result] = run.result['results']
    [sts] = [f['message'] for f in result['findings'] if f['code'] == 'sts-dns-error']
    assert '%s refused the query' % closed in sts and 'no answer from %s within the 2 s timeout' % dead in sts, sts


def test_one_domain_costs_three_delayed_round_trips(tmp_path_factory):
    """DNS (every question at once), the TLS 1.3 handshake, the HTTP response: 3 delays at the proxy.

    The proxy does not delay the TCP handshake, so on a network this is 4 round trips.
    The fastest of three runs is taken, so a moment of load on the machine does not count.
    """
    with _lab(tmp_path_factory, 'rtt', ['rtt.example'], ROUND_TRIP * 1000) as lab:
        times = []
        for _run in range(3):
            started = time.monotonic()
            [result] = validate(['rtt.example'], nameservers=lab.nameservers, ca_path=lab.ca_path)
            times.append(time.monotonic() - started)
            assert result['valid'] is True and result['policy']['mode'] == 'enforce'
        # The count holds for TLS 1.3; TLS 1.2 would add a round trip to the handshake.
        assert fetch_policy(Resolver(lab.nameservers), 'rtt.example', lab.ca_path)['tls_version'] == 'TLSv1.3'
    assert 3 * ROUND_TRIP <= min(times) < 4 * ROUND_TRIP, times
