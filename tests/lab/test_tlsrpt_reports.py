"""The demo's TLS-RPT reports (tests/lab/tlsrpt_reports.py) are what the collection reads: strict RFC 8460 reports,
one a day per organisation and domain over the window, whose counts the enforce gate judges as intended."""

import datetime
import os

from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import parse_report
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_summary import enforce_gate, summarize
from tests.lab.tlsrpt_reports import ORGANIZATIONS, write_reports

TODAY = datetime.date(2026, 12, 2)
NOW = datetime.datetime(2026, 12, 2, 9, 0, tzinfo=datetime.timezone.utc)
GOOD = {'domain': 'good.example', 'policy': {'mode': 'testing', 'mx': ['mx1.good.example'], 'max_age': 86400},
        'successful': 300}
BAD = {'domain': 'bad.example', 'policy': {'mode': 'testing', 'mx': ['mx1.bad.example'], 'max_age': 86400},
       'successful': 300, 'failures': [{'result-type': 'certificate-not-trusted', 'receiving-mx-hostname': 'mx1.bad.example',
                                        'receiving-ip': '127.0.0.23', 'failed-session-count': 40}]}


def reports(tmp_path, days=14):
    paths = write_reports(str(tmp_path), [GOOD, BAD], days=days, today=TODAY)
    parsed = []
    for path in paths:
        with open(path, 'rb') as handle:
            parsed.append(parse_report(handle.read()))
    return paths, parsed


def test_one_report_a_day_per_organisation_and_domain_each_parsing_strictly(tmp_path):
    paths, parsed = reports(tmp_path)
    assert len(paths) == 2 * len(ORGANIZATIONS) * 14
    assert len({(r['organization_name'], r['report_id']) for r in parsed}) == len(paths)
    first = min(r['date_range']['start'] for r in parsed)
    last = max(r['date_range']['end'] for r in parsed)
    # The 14 full UTC days before today, nothing of today.
    assert (first, last) == ('2026-11-18T00:00:00Z', '2026-12-01T23:59:59Z')
    assert os.path.basename(paths[0]).count('!') == 3


def test_the_gate_passes_the_clean_domain_and_refuses_the_failing_one(tmp_path):
    _paths, parsed = reports(tmp_path)
    summary = summarize(parsed)
    good = enforce_gate(summary, 'good.example', dict(GOOD['policy'], mode='enforce'), now=NOW)
    bad = enforce_gate(summary, 'bad.example', dict(BAD['policy'], mode='enforce'), now=NOW)
    assert good['passed'], good
    assert not bad['passed']
    # 40 failed of 340 a day: 11.76 %, and a forbidden result type.
    assert any('11.76 %' in reason for reason in bad['reasons']), bad['reasons']
    assert any('certificate-not-trusted' in reason for reason in bad['reasons']), bad['reasons']
