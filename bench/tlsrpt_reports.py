"""TLS-RPT reports: wall time and peak memory for 1,000 to 10,000 report files, ours beside parsedmarc and the floor.

Writes a deterministic mix of reports (seeded; see ``report_plan``) to a temporary directory: sizes from one
policy with no failure to many policies with about 500 failure details, about half gzip (``.json.gz``) and half
plain (``.json``), several organisations, each shaped as that kind of sender shapes its reports (``mx-host`` as a
list or a string, ``failure-reason-code`` or ``failure-error-code``, optional fields left out, unknown keys), and
about 1 % re-deliveries of an earlier report under another file name. The first N reports of the 10,000 are
the N-report set, so the counts differ only in how many files there are.

Each run is its own process, measured from outside (wall time and peak RSS, from ``os.wait4``):
- the floor: read every file, gunzip when gzip, ``json.loads``; nothing else;
- parsedmarc (in its own venv, bench/_parsedmarc_driver.py): its SMTP TLS report parser on every file;
- ours: the module's own path, ``_tlsrpt_sources.iter_path`` -> ``parse_report`` -> ``SummaryBuilder``;
- the module itself through ``ansible-playbook``, with all domains and with one (a small result).
Every run is repeated ``--repeat`` rounds; the table has the shortest times and the largest peak.

Usage: .venv/bin/python bench/tlsrpt_reports.py [--counts 1000,5000,10000] [--repeat 3] [--no-playbook]
       [--parsedmarc-venv .build/parsedmarc-venv]
       .venv/bin/python bench/tlsrpt_reports.py --generate DIR [--counts 10000]   (only write the reports)
"""

import argparse
import datetime
import functools
import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SEED = 8460
FIRST_DAY = datetime.date(2026, 9, 1)
DAYS = 91
DUPLICATE_SHARE = 0.01
# The version `make bench` pins in .build/parsedmarc-venv.
PARSEDMARC_VERSION = '11.1.0'

# Documentation ranges only (RFC 5737, RFC 3849): sending MTAs are many, receiving MX addresses few.
SENDER_NETWORKS = ('192.0.2.', '198.51.100.', '203.0.113.')
RESULT_TYPES = (
    ('certificate-expired', 8), ('certificate-host-mismatch', 10), ('certificate-not-trusted', 12),
    ('starttls-not-supported', 30), ('validation-failure', 10), ('sts-policy-fetch-error', 8),
    ('sts-policy-invalid', 3), ('sts-webpki-invalid', 3), ('tlsa-invalid', 4), ('dnssec-invalid', 2),
    ('dane-required', 1), ('unknown-new-result-type', 1),
)
REASON_CODES = ('CertificateNameMismatch', 'CertificateExpired', 'X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT',
                'X509_V_ERR_HOSTNAME_MISMATCH', 'StartTlsNotSupported', 'TLS handshake timeout')

# How each kind of sender writes its reports. domains: how many of POLICY_DOMAINS it sends to, so reports about.
SENDERS = (
    {'organization': 'Google Inc.', 'short': 'google.com', 'contact': 'smtp-tls-reporting@google.com',
     'domains': 50, 'report_id': '{start}_{domain}', 'mx_host': 'list', 'reason_key': None, 'tz': 'Z',
     'indent': None, 'optional': ('receiving-ip',), 'extra': {}},
    {'organization': 'Microsoft Corporation', 'short': 'microsoft.com', 'contact': 'tlsrpt-noreply@microsoft.com',
     'domains': 35, 'report_id': '{serial}+{domain}', 'mx_host': 'string', 'reason_key': 'failure-error-code',
     'tz': 'Z', 'indent': None, 'optional': ('receiving-ip', 'sending-mta-ip', 'receiving-mx-helo'), 'extra': {}},
    {'organization': 'Example Mail Provider AG', 'short': 'mailprovider.example', 'contact': 'postmaster@mailprovider.example',
     'domains': 20, 'report_id': '<{serial}.{domain}@mailprovider.example>', 'mx_host': 'list',
     'reason_key': 'failure-reason-code', 'tz': '+00:00', 'indent': 2,
     'optional': ('sending-mta-ip', 'receiving-ip', 'additional-information'), 'extra': {'x-reporter-version': '2.3'}},
    {'organization': 'ISP Net AS64500', 'short': 'isp.example', 'contact': 'mailto:tlsrpt@isp.example',
     'domains': 15, 'report_id': 'isp-{serial}', 'mx_host': 'absent', 'reason_key': None, 'tz': 'Z', 'indent': None,
     'optional': ('sending-mta-ip',), 'extra': {}},
    {'organization': 'tlsrpt-reporter at mx.sender.example', 'short': 'mx.sender.example',
     'contact': 'tlsrpt@sender.example', 'domains': 12, 'report_id': '{start}-{serial}@mx.sender.example',
     'mx_host': 'list', 'reason_key': 'failure-reason-code', 'tz': 'Z', 'indent': None,
     'optional': ('sending-mta-ip', 'receiving-ip', 'receiving-mx-hostname', 'receiving-mx-helo'), 'extra': {}},
    {'organization': 'Small Hoster', 'short': 'hoster.example', 'contact': 'abuse@hoster.example',
     'domains': 8, 'report_id': '{serial}', 'mx_host': 'string', 'reason_key': None, 'tz': 'Z', 'indent': 4,
     'optional': (), 'extra': {'report-version': 1}},
)

# The policy domains: the corpus's two and 58 more, each with two MX hosts.
POLICY_DOMAINS = ('example.com', 'example.net') + tuple('d%02d.example.org' % n for n in range(1, 59))


def mx_names(domain):
    return ['mx1.' + domain, 'mx2.' + domain]


def mx_address(domain, index):
    """A stable documentation address per MX host, so receiving IPs are few as on the real Internet."""
    return '2001:db8:%x::%d' % (POLICY_DOMAINS.index(domain) + 1, index + 1)


def sts_policy_string(domain, older):
    mode = 'testing' if older else 'enforce'
    mx = ['mail.' + domain] if older else mx_names(domain)
    return ['version: STSv1', 'mode: ' + mode] + ['mx: ' + name for name in mx] + ['max_age: 604800']


def weighted(rng, pairs):
    return rng.choices([pair[0] for pair in pairs], weights=[pair[1] for pair in pairs])[0]


def datetime_text(day, end, tz):
    moment = datetime.datetime.combine(day, datetime.time(23, 59, 59) if end else datetime.time(0, 0, 0))
    return moment.strftime('%Y-%m-%dT%H:%M:%S') + tz


def failure_detail(rng, sender, domain, mx_index, result_type):
    detail = {'result-type': result_type}
    mx = mx_names(domain)[mx_index]
    fields = {
        'sending-mta-ip': lambda: rng.choice(SENDER_NETWORKS) + str(rng.randrange(1, 255)),
        'receiving-ip': lambda: mx_address(domain, mx_index),
        'receiving-mx-hostname': lambda: mx,
        'receiving-mx-helo': lambda: mx,
        'additional-information': lambda: 'https://reports.mailprovider.example/tlsrpt/%d' % rng.randrange(10 ** 6),
    }
    for name in ('sending-mta-ip', 'receiving-mx-hostname', 'receiving-mx-helo', 'receiving-ip',
                 'additional-information'):
        if name not in sender['optional'] or rng.random() < 0.6:
            detail[name] = fields[name]()
    detail['failed-session-count'] = rng.randrange(1, 60)
    if sender['reason_key'] and rng.random() < 0.5:
        detail[sender['reason_key']] = rng.choice(REASON_CODES)
    return detail


def policy_entry(rng, sender, domain, policy_type, older, mx_index, failures):
    """One element of ``policies`` with ``failures`` failure details."""
    policy = {'policy-type': policy_type, 'policy-domain': domain}
    if policy_type == 'sts':
        policy['policy-string'] = sts_policy_string(domain, older)
        patterns = ['mail.' + domain] if older else mx_names(domain)
    elif policy_type == 'tlsa':
        # A domain's TLSA record stays the same from report to report, as its key does.
        policy['policy-string'] = ['3 1 1 ' + hashlib.sha256(mx_names(domain)[mx_index].encode()).hexdigest()]
        patterns = [mx_names(domain)[mx_index]]
    else:
        patterns = []
    if patterns and sender['mx_host'] == 'list':
        policy['mx-host'] = patterns
    elif patterns and sender['mx_host'] == 'string':
        policy['mx-host'] = patterns[0]
    if policy_type == 'sts':
        kinds = [pair for pair in RESULT_TYPES if not pair[0].startswith(('tlsa', 'dnssec', 'dane'))]
    elif policy_type == 'tlsa':
        kinds = [pair for pair in RESULT_TYPES if not pair[0].startswith('sts')]
    else:
        kinds = [('starttls-not-supported', 1), ('validation-failure', 1)]
    details = [failure_detail(rng, sender, domain, rng.randrange(2) if policy_type != 'tlsa' else mx_index,
                              weighted(rng, kinds)) for _detail in range(failures)]
    entry = {'policy': policy,
             'summary': {'total-successful-session-count': rng.randrange(0, 20000),
                         'total-failure-session-count': sum(d['failed-session-count'] for d in details)}}
    if details or rng.random() < 0.5:
        entry['failure-details'] = details
    return entry


@functools.lru_cache(maxsize=None)
def report_slots():
    """Every (sender, policy domain, day) there is a report about, in a seeded random order.

    A sender sends one report a day per policy domain (a Google-style report id is the day and the
    domain), so two different reports never share a slot, and the first N slots are the N-report set."""
    slots = [(sender, domain, day) for sender in SENDERS for domain in POLICY_DOMAINS[:sender['domains']]
             for day in range(DAYS)]
    random.Random(SEED).shuffle(slots)
    return slots


def report_plan(index):
    """(sender, report dict, gzip?) of report ``index``: the same every run, independent of the others."""
    rng = random.Random('%d:%d' % (SEED, index))
    sender, domain, day = report_slots()[index]
    day = FIRST_DAY + datetime.timedelta(days=day)
    size = rng.random()
    if size < 0.80:         # most reports: one policy, no or a few failures
        shapes = [('sts', False, 0, 0 if rng.random() < 0.6 else rng.randrange(1, 4))]
    elif size < 0.97:       # a busy domain: the current and an older policy, DANE on one MX, tens of failures
        shapes = [('sts', False, 0, rng.randrange(5, 40)), ('sts', True, 0, rng.randrange(0, 10)),
                  ('tlsa', False, rng.randrange(2), rng.randrange(0, 10))]
    else:                   # a large sender on a bad day: many policies, about 500 failure details
        shapes = [('sts', False, 0, rng.randrange(200, 300)), ('sts', True, 0, rng.randrange(50, 100))]
        shapes += [('tlsa', False, n % 2, rng.randrange(10, 30)) for n in range(rng.randrange(3, 10))]
        shapes += [('no-policy-found', False, 0, rng.randrange(0, 5))]
    report = {
        'organization-name': sender['organization'],
        'date-range': {'start-datetime': datetime_text(day, False, sender['tz']),
                       'end-datetime': datetime_text(day, True, sender['tz'])},
        'contact-info': sender['contact'],
        'report-id': sender['report_id'].format(start=datetime_text(day, False, 'Z'), domain=domain,
                                                serial=rng.getrandbits(60)),
        'policies': [policy_entry(rng, sender, domain, policy_type, older, mx_index, failures)
                     for policy_type, older, mx_index, failures in shapes],
    }
    report.update(sender['extra'])
    return sender, report, rng.random() < 0.5


def report_file(index):
    """(relative path, bytes) of file ``index``; about 1 % are an earlier report delivered again."""
    rng = random.Random('%d:file:%d' % (SEED, index))
    source = rng.randrange(index) if index and rng.random() < DUPLICATE_SHARE else index
    sender, report, compressed = report_plan(source)
    if source != index:
        compressed = not compressed
    text = json.dumps(report, indent=sender['indent'],
                      separators=(',', ': ') if sender['indent'] else (',', ':')).encode('utf-8')
    day = datetime.datetime.strptime(report['date-range']['start-datetime'][:10], '%Y-%m-%d')
    begin = int((day - datetime.datetime(1970, 1, 1)).total_seconds())
    name = '%s!%s!%d!%d!%05d.json' % (sender['short'], report['policies'][0]['policy']['policy-domain'],
                                      begin, begin + 86399, index)
    if compressed:
        return os.path.join(sender['short'], name + '.gz'), gzip.compress(text, mtime=0)
    return os.path.join(sender['short'], name), text


def generate(directory, count):
    """Write reports 0..count-1 under ``directory``; returns their paths relative to it, in order, and their bytes."""
    paths, written = [], 0
    for index in range(count):
        relative, data = report_file(index)
        path = os.path.join(directory, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(data)
        paths.append(relative)
        written += len(data)
    return paths, written


def link_first(source, paths, directory):
    """The first ``len(paths)`` reports of ``source`` as hard links under ``directory`` (no copy)."""
    for relative in paths:
        target = os.path.join(directory, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(os.path.join(source, relative), target)


def report_files(directory):
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            yield os.path.join(root, name)


def floor(directory):
    """Read, gunzip when gzip, json.loads: the least any reader must do. Counts what it loaded."""
    counts = dict.fromkeys(('files', 'reports', 'errors', 'policies', 'failure_details'), 0)
    for path in report_files(directory):
        counts['files'] += 1
        with open(path, 'rb') as handle:
            data = handle.read()
        if data[:2] == b'\x1f\x8b':
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
        report = json.loads(data)
        counts['reports'] += 1
        counts['policies'] += len(report['policies'])
        counts['failure_details'] += sum(len(policy.get('failure-details', ())) for policy in report['policies'])
    return counts


def _collection():
    from tests.conftest import link_collection
    link_collection()
    from ansible_collections.mailsec.mta_sts.plugins.module_utils import _tlsrpt_report, _tlsrpt_sources
    return _tlsrpt_report, _tlsrpt_sources


def _import_module():
    _collection()
    from ansible_collections.mailsec.mta_sts.plugins.modules import tlsrpt_report_info
    return tlsrpt_report_info


def walk(directory):
    """Only the directory walk of ours (read, gunzip under the size cap): the part the floor also does."""
    _tlsrpt_report, sources = _collection()
    counts = {'files': 0, 'errors': 0}
    for _source, data in sources.iter_path(directory, _tlsrpt_report.DEFAULT_MAX_BYTES):
        counts['files'] += 1
        counts['errors'] += isinstance(data, sources.ReportError)
    counts['reports'] = counts['files'] - counts['errors']
    return counts


def parse(directory):
    """The walk and ``parse_report`` (JSON decoding and RFC 8460 checks), no summary."""
    report, sources = _collection()
    counts = {'files': 0, 'reports': 0, 'errors': 0}
    for _source, data in sources.iter_path(directory, report.DEFAULT_MAX_BYTES):
        counts['files'] += 1
        try:
            report.parse_report(data)
            counts['reports'] += 1
        except (ValueError, TypeError):     # a ValidationError, or the ReportError of a file
            counts['errors'] += 1
    return counts


def ours(directory, domains=None):
    """The module's own path: its ``add_reports`` over ``iter_path``, then the summary and its Markdown."""
    report, sources = _collection()
    module = _import_module()
    builder = module.SummaryBuilder(domains=domains)
    module.add_reports(builder, sources.iter_path(directory, report.DEFAULT_MAX_BYTES), report.DEFAULT_MAX_BYTES)
    summary = builder.result()
    # What the module returns, serialised as exit_json does: its size is what Ansible then handles.
    result = json.dumps({'summary': summary, 'markdown': module.render_markdown(summary)})
    return dict(summary_counts(summary), result_mb=len(result) / 1e6)


def summary_counts(summary):
    domains = summary['domains'].values()
    return {'reports': summary['reports'], 'duplicates': summary['duplicates'], 'errors': len(summary['errors']),
            'first_errors': summary['errors'][:5],
            'successful_sessions': sum(d['successful_sessions'] for d in domains),
            'failed_sessions': sum(d['failed_sessions'] for d in domains)}


def playbook(directory, domains=None):
    """The module through a real ansible-playbook run; the counts are read from its returned summary."""
    from tests.conftest import link_collection
    from tests.integration.playbook import run_playbook
    link_collection()
    options = {'paths': [directory]}
    if domains:
        options['domains'] = domains
    run = run_playbook([{'name': 'read the reports', 'mailsec.mta_sts.tlsrpt_report_info': options,
                         'register': 'found'}])
    if run.returncode != 0:
        raise SystemExit('ansible-playbook failed: %r' % run)
    return summary_counts(run.result['summary'])


def ours_one_domain(directory):
    """Every report read and parsed, one domain summed up: a summary that stays small whatever the count."""
    return ours(directory, domains=[POLICY_DOMAINS[0]])


def playbook_one_domain(directory):
    """The playbook run with a small result: what the size of the result costs Ansible."""
    return playbook(directory, domains=[POLICY_DOMAINS[0]])


TIMES = ('seconds', 'cpu_seconds', 'process_seconds', 'process_cpu_seconds')
WORKERS = {'floor': floor, 'walk': walk, 'parse': parse, 'ours': ours, 'ours_one_domain': ours_one_domain,
           'playbook': playbook, 'playbook_one_domain': playbook_one_domain}


def work(name, directory):
    """Run inside the measured process: one worker, its counts and its loop time as JSON on stdout."""
    if name != 'floor' and not name.startswith('playbook'):
        _import_module()    # before the clock starts: the loop is timed, the imports count in the process time
    begin, cpu = time.monotonic(), time.process_time()
    counts = WORKERS[name](directory)
    # CPU time too: other work on a 2-core machine stretches the wall time, hardly the CPU time.
    counts['seconds'], counts['cpu_seconds'] = time.monotonic() - begin, time.process_time() - cpu
    if name.startswith('playbook'):
        counts['cpu_seconds'] = None    # this process only waited; the process CPU column has the run's
    json.dump(counts, sys.stdout)
    return 0


def measure(command):
    """Run ``command``: what it printed (JSON) with its process's wall and CPU seconds and peak RSS (MiB),
    each taken over it and its children."""
    begin = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO)
    output = process.stdout.read()
    process.stdout.close()
    # wait4, not wait: the rusage of this one child (and its waited-for descendants), where
    # getrusage(RUSAGE_CHILDREN) would give the largest of every child so far.
    status, usage = os.wait4(process.pid, 0)[1:]
    seconds = time.monotonic() - begin
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit('%s exited with %d' % (' '.join(command), process.returncode))
    found = json.loads(output)
    found.update(process_seconds=seconds, process_cpu_seconds=usage.ru_utime + usage.ru_stime,
                 peak_mib=usage.ru_maxrss / 1024.0)
    return found


def runs(parsedmarc_python):
    """(label, command line ending in the directory to read) for every measured run but the playbook."""
    ours_command = [sys.executable, os.path.abspath(__file__), '--worker']
    found = [('floor: gunzip + json.loads', ours_command + ['floor'])]
    if parsedmarc_python:
        driver = os.path.join(REPO, 'bench', '_parsedmarc_driver.py')
        found += [('parsedmarc %s parse_smtp_tls_report_json' % PARSEDMARC_VERSION,
                   [parsedmarc_python, driver, 'parser']),
                  ('parsedmarc %s parse_report_file, kept (its CLI)' % PARSEDMARC_VERSION,
                   [parsedmarc_python, driver, 'cli'])]
    found += [('mailsec.mta_sts, its stages: iter_path only', ours_command + ['walk']),
              ('mailsec.mta_sts, its stages: iter_path + parse_report', ours_command + ['parse']),
              ('mailsec.mta_sts: iter_path + parse_report + SummaryBuilder + Markdown (the module\'s path)',
               ours_command + ['ours']),
              ('mailsec.mta_sts, the same with domains: [%s]' % POLICY_DOMAINS[0], ours_command + ['ours_one_domain'])]
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--counts', default='1000,5000,10000')
    parser.add_argument('--repeat', type=int, default=3, help='rounds of every run; the shortest times are shown')
    parser.add_argument('--parsedmarc-venv', default=os.path.join(REPO, '.build', 'parsedmarc-venv'))
    parser.add_argument('--no-playbook', action='store_true', help='leave out the ansible-playbook runs')
    parser.add_argument('--generate', metavar='DIR', help='only write the largest count of reports to DIR')
    parser.add_argument('--worker', choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument('directory', nargs='?', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return work(args.worker, args.directory)
    counts = sorted(int(n) for n in args.counts.split(','))
    if counts[-1] > len(report_slots()):
        parser.error('--counts: at most %d reports (one per sender, policy domain and day)' % len(report_slots()))
    if args.generate:
        paths, size = generate(args.generate, counts[-1])
        print('%d report files, %.1f MB, in %s' % (len(paths), size / 1e6, args.generate))
        return 0
    parsedmarc_python = os.path.join(args.parsedmarc_venv, 'bin', 'python')
    if not os.path.exists(parsedmarc_python):
        print('no %s: the parsedmarc rows are left out' % parsedmarc_python, file=sys.stderr)
        parsedmarc_python = None
    table = []
    with tempfile.TemporaryDirectory(prefix='tlsrpt-bench-') as workdir:
        largest = os.path.join(workdir, str(counts[-1]))
        paths, size = generate(largest, counts[-1])
        print('%d report files, %.1f MB on disk' % (len(paths), size / 1e6), file=sys.stderr)
        directories = {counts[-1]: largest}
        for count in counts[:-1]:
            directories[count] = os.path.join(workdir, str(count))
            link_first(largest, paths[:count], directories[count])
        labelled = runs(parsedmarc_python)
        if not args.no_playbook:
            playbook_command = [sys.executable, os.path.abspath(__file__), '--worker']
            labelled += [('mailsec.mta_sts.tlsrpt_report_info through ansible-playbook', playbook_command + ['playbook']),
                         ('the same playbook with domains: [%s]' % POLICY_DOMAINS[0],
                          playbook_command + ['playbook_one_domain'])]
        measured = {}
        # Round after round of every run, not one run's repeats back to back: load that comes and goes
        # (a 2-core machine) then slows one round of everything, which the best of the rounds leaves out.
        for _round in range(args.repeat):
            for label, command in labelled:
                for count in counts:
                    found = measure(command + [directories[count]])
                    measured.setdefault((label, count), []).append(found)
                    print('%s, %d reports: %.2f s, %.1f MiB' % (
                        label, count, found['process_seconds'], found['peak_mib']), file=sys.stderr)
    for label, command in labelled:
        for count in counts:
            table.append((label, count, best_of(measured[(label, count)])))
            if table[-1][2]['errors']:
                print('%s, %d: %d errors, first: %r' % (label, count, table[-1][2]['errors'],
                                                        table[-1][2]['first_errors']), file=sys.stderr)
    print_table(table)
    return 0


def best_of(measured):
    """The shortest of each time (a slower run lost time to something else) and the largest peak."""
    found = dict(measured[0], peak_mib=max(run['peak_mib'] for run in measured))
    for key in TIMES:
        if found.get(key) is not None:
            found[key] = min(run[key] for run in measured)
    return found


def print_table(table):
    print('| run | report files | reports (duplicates) | errors | loop (s) | loop CPU (s) | process (s) '
          '| process CPU (s) | peak RSS (MiB) | result JSON (MB) |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for label, count, found in table:
        read = '%d' % found['reports']
        if 'duplicates' in found:
            read += ' (%d)' % found['duplicates']
        times = ['-' if found.get(key) is None else '%.2f' % found[key] for key in TIMES]
        print('| %s | %d | %s | %d | %s | %.0f | %s |' % (
            label, count, read, found['errors'], ' | '.join(times), found['peak_mib'],
            '%.1f' % found['result_mb'] if 'result_mb' in found else '-'))


if __name__ == '__main__':
    sys.exit(main())
