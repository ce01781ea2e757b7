"""Wall time of a drift check over N lab domains: one validate lookup call with its reports, beside a loop of one policy_info task per domain.

The lab is tests/integration/bulk_lab.py (as bench/validate_bulk.py uses it), on loopback addresses of its own:
Knot with one zone per domain, nginx serving a valid enforce policy for every ``mta-sts.<domain>``, certificates
from a lab CA, and tests/lab/latency.py delaying every DNS answer and every HTTPS server flight by ``--delay-ms``.
Every domain is in sync, so each run must report N domains passed.

For each N, one ``ansible-playbook`` process each (wall time of the whole process, startup included):

* one call: ``query('mailsec.mta_sts.validate', *domains)`` in one ``set_fact``, then the drift_report outputs
  (JSON, JUnit XML, Markdown) written with ``copy``, the short text table printed, and an assert on drift_failures
  (best of ``--rounds``);
* loop: one ``mailsec.mta_sts.policy_info`` task per domain (``loop``), then the same outputs from the loop's
  results. Only up to ``--loop-max`` domains: it costs Ansible's per-task price once per domain.

The reports of each run are read back: the JSON must count N domains passed, the JUnit XML 5 N test cases.
Usage: .venv/bin/python bench/drift.py [--domains 20,200,1000] [--loop-max 200] [--delay-ms 20]
"""

import argparse
import json
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import link_collection  # noqa: E402
from tests.integration.bulk_lab import BulkLab  # noqa: E402
from tests.integration.playbook import run_playbook  # noqa: E402
from tests.integration.validation_lab import policy_text  # noqa: E402

# Away from the tests' lab and from bench/validate_bulk.py's (127.0.0.2/.3), so either can run beside this.
WEB_ADDRESS = '127.0.0.6'        # proxy :443 -> nginx :8443; every mta-sts.<domain> A record
DNS_ADDRESS = '127.0.0.7'        # the delaying forwarder and Knot, each on a free port
OUTPUTS = (('json', 'drift.json'), ('junit', 'drift.junit.xml'), ('markdown', 'drift.md'))


def inventory(domains):
    """The domains as an inventory lists them: the desired policy (what the lab serves) and the rua."""
    return [{'domain': domain, 'policy': policy_text(domain), 'rua': ['mailto:tlsrpt@' + domain]} for domain in domains]


def report_tasks(results, report_dir):
    """What a drift playbook does with the results: the three reports, the short table, and fail on any failure."""
    return [
        {'ansible.builtin.copy': {'content': "{{ %s | mailsec.mta_sts.drift_report('%s') }}" % (results, output_format),
                                  'dest': os.path.join(report_dir, name), 'mode': '0644'}}
        for output_format, name in OUTPUTS
    ] + [
        {'ansible.builtin.debug': {'msg': "{{ (%s | mailsec.mta_sts.drift_report('text')).splitlines()[-1] }}" % results}},
        {'ansible.builtin.assert': {'that': "%s | mailsec.mta_sts.drift_failures | length == 0" % results, 'quiet': True}},
    ]


def one_call_tasks(options, report_dir):
    lookup = "{{ query('mailsec.mta_sts.validate', *mta_sts_domains, nameservers=%s, ca_path='%s', concurrency=%d) }}" % (
        json.dumps(options['nameservers']), options['ca_path'], options['concurrency'])
    return [{'ansible.builtin.set_fact': {'drift': lookup}}] + report_tasks('drift', report_dir)


def loop_tasks(options, report_dir):
    return [
        {'mailsec.mta_sts.policy_info': {'domains': ['{{ item }}'], 'nameservers': options['nameservers'],
                                         'ca_path': options['ca_path']},
         'loop': '{{ mta_sts_domains }}', 'loop_control': {'label': '{{ item.domain }}'}, 'register': 'checks'},
        {'ansible.builtin.set_fact': {'drift': "{{ checks.results | map(attribute='results') | flatten }}"}},
    ] + report_tasks('drift', report_dir)


def timed(tasks, items, workdir):
    """Wall time of one ansible-playbook run in ``workdir``, where its tasks write the reports."""
    os.makedirs(workdir, exist_ok=True)
    begin = time.monotonic()
    run = run_playbook(tasks, workdir=workdir, play_vars={'mta_sts_domains': items})
    seconds = time.monotonic() - begin
    if run.returncode != 0:
        raise SystemExit('playbook failed: %r' % (run,))
    check_reports(workdir, len(items))
    return seconds


def check_reports(report_dir, count):
    with open(os.path.join(report_dir, 'drift.json')) as handle:
        summary = json.load(handle)['summary']
    if summary['domains'] != count or summary['passed'] != count:
        raise SystemExit('the JSON report says %r, not %d domains passed' % (summary, count))
    cases = ET.parse(os.path.join(report_dir, 'drift.junit.xml')).getroot().findall('testsuite/testcase')
    if len(cases) != 5 * count:
        raise SystemExit('the JUnit report has %d test cases, not %d' % (len(cases), 5 * count))


def growth(table, counts, run):
    """Seconds per 1,000 more domains between the smallest and the largest count measured."""
    measured = [count for count in counts if run in table[count]]
    if len(measured) < 2:
        return None
    low, high = measured[0], measured[-1]
    return (table[high][run] - table[low][run]) * 1000.0 / (high - low)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', default='20,200,1000', help='comma-separated domain counts')
    parser.add_argument('--loop-max', type=int, default=200, help='largest count to time the loop at')
    parser.add_argument('--delay-ms', type=float, default=20.0)
    parser.add_argument('--concurrency', type=int, default=32)
    parser.add_argument('--rounds', type=int, default=2, help='one-call runs per count, the best kept (the loop runs once)')
    args = parser.parse_args()
    link_collection()
    counts = sorted(int(count) for count in args.domains.split(','))
    domains = ['drift%04d.example' % index for index in range(counts[-1])]
    items = inventory(domains)
    table = dict((count, {}) for count in counts)
    one_call, loop = 'one ansible-playbook run, one validate lookup call + reports', 'one policy_info task per domain (loop) + reports'
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as workdir:
        with BulkLab(workdir, domains, args.delay_ms, WEB_ADDRESS, DNS_ADDRESS) as lab:
            options = {'nameservers': lab.nameservers, 'ca_path': lab.ca_path, 'concurrency': args.concurrency}
            # Warm-up: Python's and Ansible's files in the page cache, not part of any figure.
            timed(one_call_tasks(options, os.path.join(workdir, 'warm')), items[:1], os.path.join(workdir, 'warm'))
            for count in counts:
                play_dir = os.path.join(workdir, 'one-%d' % count)
                # Other work on the machine slows a round now and then: the best of the rounds leaves it out.
                table[count][one_call] = min(timed(one_call_tasks(options, play_dir), items[:count], play_dir)
                                             for _round in range(args.rounds))
                print('%s, %d domains: %.1f s' % (one_call, count, table[count][one_call]), file=sys.stderr)
                if count <= args.loop_max:
                    play_dir = os.path.join(workdir, 'loop-%d' % count)
                    table[count][loop] = timed(loop_tasks(options, play_dir), items[:count], play_dir)
                    print('%s, %d domains: %.1f s' % (loop, count, table[count][loop]), file=sys.stderr)
    print('| run | ' + ' | '.join('%d domains (s)' % count for count in counts) + ' | growth (s per 1,000 domains) |')
    print('| --- |' + ' ---: |' * (len(counts) + 1))
    for run in (one_call, loop):
        slope = growth(table, counts, run)
        print('| %s | %s | %s |' % (run, ' | '.join('%.1f' % table[count][run] if run in table[count] else 'not run'
                                                    for count in counts), '-' if slope is None else '%.1f' % slope))
    print()
    print('Delay: %g ms per DNS answer and per HTTPS server flight; lookup concurrency %d; one-call runs: best of %d; '
          'load average %.1f before, %.1f after.' % (args.delay_ms, args.concurrency, args.rounds, load_before, os.getloadavg()[0]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
