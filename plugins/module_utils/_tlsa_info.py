# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A host's TLSA records as each authoritative server of its zone answers them, and which of them the MX serves.

A rollover may only move the MX to the next key once every authoritative server answers the next record (a sender's
resolver may ask any of them), so each server is asked on its own, directly and without recursion.

``check_options``, ``parse_hosts``, ``server_view`` and ``judge_host`` are pure; ``look`` does the I/O: it finds
the servers, asks them, and asks again until every host's records are visible everywhere or ``wait_timeout`` has
passed; then it probes the MX hosts when asked to.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live
from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import decode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._served import check_wait
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import judge_removal
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa_rollover import tlsa_text

try:
    import dns.exception
    import dns.flags
    import dns.rcode
    import dns.rdatatype
except ImportError:  # pragma: no cover - reported by _live.Resolver
    pass

MAX_TIMEOUT = 600
# Hosts looked at in parallel: each waits on its own servers, so one silent server does not eat the others' time.
CONCURRENCY = 16


def tlsa_name(host, port):
    """Where the TLSA records of ``host``'s SMTP service are (RFC 7672 section 2.2)."""
    return '_%d._tcp.%s' % (port, host)


def check_options(options):
    """Every option checked before any I/O; ValidationError naming the option and the rule."""
    hosts = parse_hosts(options.get('hosts'))
    port = options.get('port')
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValidationError('port', port, 'must be a TCP port, 1 to 65535')
    expect = options.get('expect') or []
    if not isinstance(expect, list):
        raise ValidationError('expect', expect, 'must be a list of TLSA data "usage selector matching-type hex"')
    expected = []
    for index, value in enumerate(expect):
        value = tlsa_text(value, 'expect[%d]' % index)
        if value not in expected:
            expected.append(value)
    for option in ('nameservers', 'resolvers'):
        for server in options.get(option) or []:
            try:
                _live.parse_nameserver(server)
            except _live.LiveError as exc:
                raise ValidationError(option, server, str(exc).split(': ', 1)[-1])
    timeout = options.get('timeout')
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValidationError('timeout', timeout, 'must be more than 0 and at most %d seconds' % MAX_TIMEOUT)
    check_wait(options.get('wait_timeout'), options.get('interval'))
    address = options.get('address')
    if address is not None:
        if not options.get('probe_mx'):
            raise ValidationError('address', address, 'is where the MX is probed: it needs probe_mx: true')
        if len(hosts) != 1:
            raise ValidationError('address', address, 'applies to one MX host: give a single host in hosts')
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValidationError('address', address, 'must be an IPv4 or IPv6 address')
    return hosts, expected


def parse_hosts(hosts):
    """The MX host names, canonical, each once; ValidationError naming ``hosts[i]``."""
    if not isinstance(hosts, list) or not hosts:
        raise ValidationError('hosts', hosts, 'give at least one MX host name')
    parsed = []
    for index, host in enumerate(hosts):
        host = normalize_domain(host, 'hosts[%d]' % index)
        if host in parsed:
            raise ValidationError('hosts[%d]' % index, hosts[index], 'is listed twice')
        parsed.append(host)
    return parsed


def server_key(server):
    """How a server is named in the results: its address, with the port only when it is not 53."""
    return server[0] if server[1] == 53 else _live.server_text(server)


def _tlsa_text(rdata):
    return '%d %d %d %s' % (rdata.usage, rdata.selector, rdata.mtype, binascii.hexlify(rdata.cert).decode('ascii'))


def zone_of(response):
    """The zone a response speaks for (the owner of its SOA), or None."""
    for rrset in (response.answer + response.authority) if response is not None else []:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset.name.to_text(omit_final_dot=True).lower()
    return None


def server_view(name, response, error):
    """One server's answer: ``{records, ttl, error}``. ``response``: the parsed response to the TLSA question
    (``_live`` parses it), None when ``error`` says why there is none."""
    if response is None:
        return {'records': [], 'ttl': None, 'error': error}
    if not response.flags & dns.flags.AA:
        # A referral, or a resolver's cached copy: not what this zone's servers hold.
        return {'records': [], 'ttl': None, 'error': 'not authoritative for %s (the answer has no AA bit)' % name}
    records = []
    ttl = None
    for rrset in response.answer:
        owner = rrset.name.to_text(omit_final_dot=True).lower()
        if owner != name:
            continue
        if rrset.rdtype == dns.rdatatype.CNAME:
            return {'records': [], 'ttl': None, 'error': 'a CNAME is at %s (to %s): TLSA is looked up at its target, '
                    'which is not checked here' % (name, rrset[0].target.to_text(omit_final_dot=True))}
        if rrset.rdtype == dns.rdatatype.TLSA:
            ttl = rrset.ttl
            for rdata in rrset:
                value = _tlsa_text(rdata)
                try:
                    value = tlsa_text(value, name)
                except ValidationError:
                    pass  # kept as served: a malformed record is still what the server answers
                if value not in records:
                    records.append(value)
    return {'records': sorted(records), 'ttl': ttl, 'error': None}


def judge_host(host, name, zone, servers, expect):
    """The host's result from each server's view: visible everywhere when at least one server answered and every
    server answers each record of ``expect`` (without ``expect``: each record any server answers)."""
    union = sorted(set(value for view in servers.values() for value in view['records']))
    wanted = list(expect) or union
    missing = {}
    for key, view in sorted(servers.items()):
        lacking = [value for value in wanted if view['error'] or value not in view['records']]
        if lacking:
            missing[key] = lacking
    ttls = [view['ttl'] for view in servers.values() if view['ttl'] is not None]
    visible = bool(servers) and bool(wanted) and not missing
    return {'host': host, 'name': name, 'zone': zone, 'servers': servers, 'ttl': max(ttls) if ttls else None,
            'records': union, 'expected': list(expect), 'visible_everywhere': visible, 'missing': missing,
            'reason': None if visible else _reason(name, servers, wanted, missing)}


def _reason(name, servers, wanted, missing):
    if not servers:
        return 'no authoritative server to ask for %s' % name
    if not wanted:
        return 'no server answers a TLSA record at %s' % name
    parts = []
    for key, lacking in sorted(missing.items()):
        error = servers[key]['error']
        parts.append('%s %s' % (key, error if error else 'lacks %s' % ', '.join(lacking)))
    return '%s: %s' % (name, '; '.join(parts))


def serving_facts(records, probe):
    """``{matched, served_spki_sha256, error}``: which of ``records`` the chain the MX served matches."""
    values = []
    for value in records:
        try:
            values.append(decode('TLSA', value))
        except ValueError:
            continue  # a malformed record a server answers matches no chain
    return judge_removal(values, [], probe)[0]


def _servers(resolver, given, name, deadline):
    """``(zone or None, servers)``: the given servers, or the zone's NS addresses found through the resolvers."""
    if given:
        return None, given
    try:
        return resolver.zone_servers(name, deadline)
    except (dns.exception.DNSException, OSError) as exc:
        return None, 'cannot find the authoritative servers of %s: %s' % (name, str(exc) or type(exc).__name__)


def _look_at(resolver, given, item, timeout, zone):
    """One look at one host: every server asked for the TLSA records, and for the SOA (which names the zone)
    while ``zone`` is not known from the NS lookup or an earlier look."""
    host, name, expect = item
    deadline = time.monotonic() + timeout
    found, servers = _servers(resolver, given, name, deadline)
    zone = zone or found
    if isinstance(servers, str):
        return dict(judge_host(host, name, zone, {}, expect), reason=servers)
    views = {}
    questions = [(name, 'TLSA')] + ([(name, 'SOA')] if zone is None else [])
    answers = _live.ask_each(servers, questions, deadline, timeout)
    for server in servers:
        response, error = answers[server][0]
        views[server_key(server)] = server_view(name, response, error)
        zone = zone or zone_of(response) or zone_of(answers[server][-1][0])
    return judge_host(host, name, zone, views, expect)


def look(hosts, port=25, expect=None, nameservers=None, resolvers=None, wait_timeout=0, interval=5.0, probe_mx=False,
         address=None, timeout=10.0, ca_path=None, sleep=time.sleep, clock=time.monotonic):
    """One result per host, in order, and whether every host's records are visible at every server.

    Hosts not visible everywhere are asked again every ``interval`` seconds until ``wait_timeout`` has passed
    since the first look; then each MX host is probed once, when ``probe_mx``.
    """
    parsed, expected = check_options(dict(hosts=hosts, port=port, expect=expect, nameservers=nameservers,
                                          resolvers=resolvers, wait_timeout=wait_timeout, interval=interval,
                                          probe_mx=probe_mx, address=address, timeout=timeout))
    given = [_live.parse_nameserver(server) for server in nameservers or []]
    if not _live.HAS_DNSPYTHON:
        raise _live.LiveError('tlsa_info needs the dnspython Python library: %s' % _live.DNSPYTHON_IMPORT_ERROR)
    # Only made when a name must be resolved: the system's resolver configuration may be missing where it is not.
    needed = not given or (probe_mx and not address)
    resolver = _live.Resolver(nameservers=resolvers, timeout=timeout) if needed else None
    items = [(host, tlsa_name(host, port), expected) for host in parsed]
    results = {}
    attempts = dict((host, 0) for host in parsed)
    stop = clock() + wait_timeout
    pending = items
    with ThreadPoolExecutor(max_workers=min(len(items), CONCURRENCY)) as pool:
        while True:
            for host, _name, _expect in pending:
                attempts[host] += 1
            zones = dict((host, results[host]['zone']) for host in results)
            for result in pool.map(lambda item: _look_at(resolver, given, item, timeout, zones.get(item[0])), pending):
                results[result['host']] = dict(result, attempts=attempts[result['host']])
            pending = [item for item in pending if not results[item[0]]['visible_everywhere']]
            remaining = stop - clock()
            if not pending or remaining <= 0:
                break
            sleep(min(interval, remaining))
        ordered = [results[host] for host in parsed]
        if probe_mx:
            probes = pool.map(lambda result: _live.probe_mx(resolver, result['host'], ca_path=ca_path, timeout=timeout,
                                                            addresses=[address] if address else None, port=port), ordered)
            for result, probe in zip(ordered, probes):
                result['serving'] = serving_facts(sorted(set(result['records']) | set(expected)), probe)
    for result in ordered:
        if result['reason'] and wait_timeout:
            result['reason'] += ' (still so after %d looks in %g s)' % (result['attempts'], wait_timeout)
    return ordered, all(result['visible_everywhere'] for result in ordered)
