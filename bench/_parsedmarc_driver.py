"""parsedmarc's SMTP TLS report parser on every file under a directory; run with parsedmarc's own Python.

bench/tlsrpt_reports.py runs it as ``PARSEDMARC_VENV/bin/python bench/_parsedmarc_driver.py MODE DIRECTORY``.
MODE is one of:

- ``parser``: for each file, ``parsedmarc.extract_report_from_file_path`` (parsedmarc's own gunzip, bounded,
  then ``bytes.decode(errors='ignore')``) and ``parsedmarc.parse_smtp_tls_report_json`` (``json.loads``, its
  required-field checks, renaming into its own dict). Nothing is kept between files.
- ``cli``: what ``parsedmarc`` on the command line does with each file it is given: ``parse_report_file(path,
  offline=True)``, which gunzips, tries the file as an aggregate (XML) report first, then as an SMTP TLS
  report, then as a mail; every parsed report is kept in a list, as its CLI keeps them for its output.

It prints JSON: ``{"seconds": wall time of the loop, "cpu_seconds": its CPU time, "files", "reports", "policies", "failure_details",
"successful_sessions", "failed_sessions", "errors": count, "first_errors": {path: message} for the first five}``.
"""

import json
import sys
import time

import parsedmarc

# The same walk as the floor's (this file's folder is first on sys.path; the module needs only the stdlib).
from tlsrpt_reports import report_files


def parse_tls_report(path):
    return parsedmarc.parse_smtp_tls_report_json(parsedmarc.extract_report_from_file_path(path))


def parse_as_cli(path):
    parsed = parsedmarc.parse_report_file(path, offline=True)
    if parsed['report_type'] != 'smtp_tls':
        raise ValueError('read as a %s report' % parsed['report_type'])
    return parsed['report']


def main():
    mode, directory = sys.argv[1:3]
    parse = {'parser': parse_tls_report, 'cli': parse_as_cli}[mode]
    kept = []
    counts = dict.fromkeys(('files', 'reports', 'policies', 'failure_details', 'successful_sessions',
                            'failed_sessions', 'errors'), 0)
    first_errors = {}
    begin, cpu = time.monotonic(), time.process_time()
    for path in report_files(directory):
        counts['files'] += 1
        try:
            report = parse(path)
        except Exception as exc:  # parsedmarc raises its own errors and whatever json and zlib raise
            counts['errors'] += 1
            if len(first_errors) < 5:
                first_errors[path] = str(exc)
            continue
        counts['reports'] += 1
        for policy in report['policies']:
            counts['policies'] += 1
            counts['failure_details'] += len(policy.get('failure_details', ()))
            counts['successful_sessions'] += policy['successful_session_count']
            counts['failed_sessions'] += policy['failed_session_count']
        if mode == 'cli':
            kept.append(report)
    counts['seconds'], counts['cpu_seconds'] = time.monotonic() - begin, time.process_time() - cpu
    counts['first_errors'] = first_errors
    json.dump(counts, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main())
