# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The drift check's reports: JSON, JUnit XML, a Markdown table for a CI job summary, and a short text table. Pure code.

The input is what the ``validate`` lookup (or ``policy_info``) returns, and optionally a TLS-RPT
summary (``tlsrpt_summary``). Each domain is judged in five checks (``CHECKS``): its TXT records,
its policy, its MX hosts, its certificates and whether it is in sync with the desired state.
A check fails on an error finding of its own, the certificates check also on a certificate with
fewer than ``expiry_days`` days left, and the in_sync check on drift.

Only named fields of a result are read, so nothing else that travels with it (module
options, anything a playbook merged in) can reach a report.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from ansible_collections.mailsec.mta_sts.plugins.module_utils._checks import days_left, utc
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import EXPIRY_WARNING_DAYS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import format_utc
from ansible_collections.mailsec.mta_sts.plugins.module_utils._markdown import cell as _cell, rate_cell as _rate_cell, table as _table

CHECKS = ('record', 'policy', 'mx', 'certificates', 'in_sync')
FORMATS = ('json', 'junit', 'markdown', 'text')
REPORT_VERSION = 1
# XML 1.0 allows no control characters but tab and the line ends, whatever the escaping.
_NOT_XML = re.compile(u'[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def check_of(code):
    """The check a finding code belongs to."""
    if code.startswith(('policy-certificate-', 'mx-certificate-')):
        return 'certificates'
    if code.startswith(('sts-', 'tlsrpt-')):
        return 'record'
    if code.startswith(('mx-', 'dane-')):
        return 'mx'
    return 'policy'   # policy-*, mode-*, max-age-*


def _expiry_days(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError('expiry_days', value, 'must be a whole number of days, 0 or more')
    return value


def _results(results):
    if not isinstance(results, (list, tuple)):
        raise ValidationError('results', results, 'must be the list the validate lookup or policy_info returns')
    for index, result in enumerate(results):
        if not isinstance(result, Mapping) or not isinstance(result.get('domain'), str):
            raise ValidationError('results[%d]' % index, result, 'must be a result of the validate lookup (a dict with domain)')
        for key in ('findings', 'drift', 'mx'):
            if not isinstance(result.get(key) or [], (list, tuple)):
                raise ValidationError('results[%d].%s' % (index, key), result.get(key), 'must be a list')
    return results


def _tlsrpt_domains(tlsrpt):
    """{domain: its totals} from a TLS-RPT summary; None when TLS-RPT is not a source."""
    if tlsrpt is None:
        return None
    if not isinstance(tlsrpt, Mapping) or not isinstance(tlsrpt.get('domains'), Mapping):
        raise ValidationError('tlsrpt', tlsrpt, 'must be a TLS-RPT summary (what tlsrpt_summary or tlsrpt_report_info returns)')
    return tlsrpt['domains']


def _certificates(result, now):
    """The certificates seen for a domain, soonest to expire first: its policy host's, and its MX hosts' when probed."""
    seen = []
    policy_certificate = result.get('policy_certificate')
    if isinstance(policy_certificate, Mapping) and policy_certificate.get('not_after'):
        seen.append(('mta-sts.' + result['domain'], policy_certificate['not_after']))
    for entry in result.get('mx') or []:
        if isinstance(entry, Mapping) and entry.get('not_after'):
            seen.append((entry.get('host'), entry['not_after']))
    certificates = []
    for host, not_after in seen:
        days = days_left({'not_after': not_after}, now)
        certificates.append({'host': host, 'not_after': not_after, 'days_left': None if days is None else math.floor(days)})
    return sorted(certificates, key=lambda item: (item['days_left'] is None, item['days_left'], item['host'] or ''))


def _drift_text(entry):
    return '%s is %s, wanted %s' % (entry.get('field'), json.dumps(entry.get('live')), json.dumps(entry.get('desired')))


def _tlsrpt_entry(domains, domain):
    if domains is None:
        return None
    totals = domains.get(domain)
    if not isinstance(totals, Mapping):
        return {'reports': 0, 'successful_sessions': 0, 'failed_sessions': 0, 'failure_rate': None}
    return dict((key, totals.get(key)) for key in ('reports', 'successful_sessions', 'failed_sessions', 'failure_rate'))


def judge_domain(result, now, expiry_days, tlsrpt_domains=None):
    """One domain of the report: what the lookup said, its certificates, and each check with its failures."""
    domain = result['domain']
    findings = [dict((key, finding.get(key)) for key in ('code', 'severity', 'message'))
                for finding in result.get('findings') or [] if isinstance(finding, Mapping)]
    drift = [dict((key, entry.get(key)) for key in ('field', 'desired', 'live'))
             for entry in result.get('drift') or [] if isinstance(entry, Mapping)]
    certificates = _certificates(result, now)
    failures = dict((check, []) for check in CHECKS)
    for finding in findings:
        if finding['severity'] == 'error':
            failures[check_of(finding['code'] or '')].append('%s: %s' % (finding['code'], finding['message']))
    for certificate in certificates:
        days = certificate['days_left']
        if days is not None and days < expiry_days:
            failures['certificates'].append('the certificate of %s expires at %s, in %d days (fewer than %d)'
                                            % (certificate['host'], certificate['not_after'], days, expiry_days))
    valid, in_sync = result.get('valid'), result.get('in_sync')
    if valid is False and in_sync is not True and not any(failures.values()):
        # No error finding, yet no policy applies (say, no record and no desired state): not what a check asks for.
        failures['record'].append('no valid MTA-STS policy: %s' % '; '.join(
            finding['message'] for finding in findings) if findings else 'no valid MTA-STS policy')
    if in_sync is False:
        failures['in_sync'] = [_drift_text(entry) for entry in drift] or ['not in sync with the desired state']
    checks = []
    for check in CHECKS:
        skipped = check == 'in_sync' and in_sync is None
        checks.append({'check': check, 'passed': not failures[check], 'skipped': skipped, 'failures': failures[check],
                       'findings': [finding for finding in findings if check_of(finding['code'] or '') == check]})
    return {
        'domain': domain,
        'passed': not any(failures.values()),
        'valid': valid,
        'in_sync': in_sync,
        'mode': result.get('mode'),
        'id': result.get('id'),
        'drift': drift,
        'findings': findings,
        'certificates': certificates,
        'certificate_days_left': certificates[0]['days_left'] if certificates else None,
        'tlsrpt': _tlsrpt_entry(tlsrpt_domains, domain),
        'checks': checks,
    }


def build_report(results, now, tlsrpt=None, expiry_days=EXPIRY_WARNING_DAYS):
    """The report as a dict: what every format renders."""
    now = utc(now, 'now')
    if now is None:
        raise ValidationError('now', now, 'the time the certificates are judged at is required')
    expiry_days = _expiry_days(expiry_days)
    tlsrpt_domains = _tlsrpt_domains(tlsrpt)
    domains = [judge_domain(result, now, expiry_days, tlsrpt_domains) for result in _results(results)]
    return {
        'version': REPORT_VERSION,
        'generated': format_utc(now),
        'expiry_days': expiry_days,
        'passed': all(domain['passed'] for domain in domains),
        'summary': {
            'domains': len(domains),
            'passed': sum(1 for domain in domains if domain['passed']),
            'failed': sum(1 for domain in domains if not domain['passed']),
            'in_sync': sum(1 for domain in domains if domain['in_sync'] is True),
            'drifted': sum(1 for domain in domains if domain['in_sync'] is False),
            'invalid': sum(1 for domain in domains if domain['valid'] is False),
        },
        'domains': domains,
    }


def failures(report):
    """Every failure of a report as a sentence naming the domain and the check; empty when the check passes."""
    return ['%s [%s]: %s' % (domain['domain'], check['check'], failure)
            for domain in report['domains'] for check in domain['checks'] for failure in check['failures']]


# --- the formats ---

def _xml_text(value):
    return _NOT_XML.sub(u'\ufffd', u'%s' % value)


def render_junit(report):
    """JUnit XML: a test suite per domain, a test case per check; a failure carries the check's failures and findings."""
    root = ET.Element('testsuites', {'name': 'mailsec.mta_sts drift', 'tests': str(len(report['domains']) * len(CHECKS)),
                                     'failures': str(sum(1 for domain in report['domains'] for check in domain['checks']
                                                         if not check['passed'])),
                                     'errors': '0', 'time': '0'})
    timestamp = report['generated'].rstrip('Z')
    for domain in report['domains']:
        suite = ET.SubElement(root, 'testsuite', {
            'name': _xml_text(domain['domain']), 'tests': str(len(domain['checks'])),
            'failures': str(sum(1 for check in domain['checks'] if not check['passed'])),
            'errors': '0', 'skipped': str(sum(1 for check in domain['checks'] if check['skipped'])),
            'timestamp': timestamp, 'time': '0'})
        for check in domain['checks']:
            case = ET.SubElement(suite, 'testcase', {'classname': _xml_text(domain['domain']), 'name': check['check'], 'time': '0'})
            # Error findings are failures already; the others go with them, or to the output of a passed check.
            findings = ['%s %s: %s' % (finding['severity'], finding['code'], finding['message'])
                        for finding in check['findings'] if finding['severity'] != 'error']
            if not check['passed']:
                failure = ET.SubElement(case, 'failure', {'message': _xml_text(check['failures'][0]), 'type': check['check']})
                failure.text = _xml_text('\n'.join(check['failures'] + (['', 'Other findings:'] + findings if findings else [])))
            elif check['skipped']:
                ET.SubElement(case, 'skipped', {'message': 'no desired state given'})
            elif findings:
                ET.SubElement(case, 'system-out').text = _xml_text('\n'.join(findings))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'


def _in_sync_cell(domain):
    if domain['in_sync'] is None:
        return '-'
    if domain['in_sync']:
        return 'yes'
    return '**no**: ' + '<br>'.join(_cell(_drift_text(entry)) for entry in domain['drift'])


def _findings_cell(domain):
    shown = [finding for finding in domain['findings'] if finding['severity'] in ('error', 'warning')]
    certificates = next(check for check in domain['checks'] if check['check'] == 'certificates')
    expiring = [failure for failure in certificates['failures'] if not failure.startswith(('policy-certificate-', 'mx-certificate-'))]
    cells = ['**%s** %s' % (finding['severity'], _cell('%s: %s' % (finding['code'], finding['message']))) for finding in shown]
    cells += ['**expiring** ' + _cell(failure) for failure in expiring]
    return '<br>'.join(cells) or 'none'


def _days_cell(domain):
    if not domain['certificates'] or domain['certificate_days_left'] is None:
        return '-'
    first = domain['certificates'][0]
    days = 'expired' if first['days_left'] < 0 else str(first['days_left'])
    return '%s (%s)' % (days, _cell(first['host']))


def _tlsrpt_cell(domain):
    if domain['tlsrpt'] is None:
        return '-'
    if not domain['tlsrpt']['reports']:
        return 'no reports'
    return _rate_cell(domain['tlsrpt']['failure_rate'])


def render_markdown(report):
    """GitHub-flavoured Markdown for a CI job summary: a line of counts, then a table row per domain."""
    summary = report['summary']
    lines = ['# MTA-STS drift', '',
             '**%s**: %d of %d domains pass, %d fail (%d in sync, %d drifted, %d without a valid policy). '
             'Checked at %s; certificates need %d days left.' % (
                 'pass' if report['passed'] else 'FAIL', summary['passed'], summary['domains'], summary['failed'],
                 summary['in_sync'], summary['drifted'], summary['invalid'], report['generated'], report['expiry_days']),
             '']
    lines += _table(['Domain', 'Result', 'Mode', 'In sync', 'Findings', 'Cert days left', 'TLS-RPT failure rate'],
                    ['---', '---', '---', '---', '---', '---:', '---:'],
                    [[_cell(domain['domain']), 'pass' if domain['passed'] else '**fail**', _cell(domain['mode']),
                      _in_sync_cell(domain), _findings_cell(domain), _days_cell(domain), _tlsrpt_cell(domain)]
                     for domain in report['domains']])
    return '\n'.join(lines) + '\n'


def render_text(report):
    """A short fixed-width table for a terminal: one line per domain, the failed checks named."""
    rows = [('DOMAIN', 'RESULT', 'MODE', 'IN SYNC', 'ERRORS', 'WARNINGS', 'CERT DAYS', 'FAILED CHECKS')]
    for domain in report['domains']:
        severities = [finding['severity'] for finding in domain['findings']]
        rows.append((domain['domain'], 'pass' if domain['passed'] else 'FAIL', domain['mode'] or '-',
                     {True: 'yes', False: 'no', None: '-'}[domain['in_sync']], str(severities.count('error')),
                     str(severities.count('warning')),
                     '-' if domain['certificate_days_left'] is None else str(domain['certificate_days_left']),
                     ', '.join(check['check'] for check in domain['checks'] if not check['passed']) or '-'))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ['  '.join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]
    summary = report['summary']
    lines.append('%d of %d domains pass' % (summary['passed'], summary['domains']))
    return '\n'.join(lines) + '\n'


def render(results, output_format='json', tlsrpt=None, now=None, expiry_days=EXPIRY_WARNING_DAYS):
    """The report in one of FORMATS, as text."""
    if output_format not in FORMATS:
        raise ValidationError('format', output_format, 'must be one of %s' % ', '.join(FORMATS))
    report = build_report(results, now, tlsrpt, expiry_days)
    if output_format == 'json':
        return json.dumps(report, indent=2, sort_keys=False) + '\n'
    return {'junit': render_junit, 'markdown': render_markdown, 'text': render_text}[output_format](report)
