# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Summaries of normalised TLS-RPT reports (RFC 8460 §4), their Markdown, and the enforce gate. Pure code.

The input is what ``_tlsrpt_report.parse_report`` returns. SummaryBuilder takes
reports one at a time and keeps only aggregates and a digest per report key,
so a run over years of reports holds no report in memory. The gate judges a
summary alone: the per-day buckets of each policy entry are what let it look
at "the last D days" without the reports.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import fnmatch
import hashlib
import re

from collections.abc import Mapping

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import hostname_problem, strip_root
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._markdown import cell as _cell, rate_cell as _rate_cell, table as _table
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import parse_policy, policy_text
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import format_utc as format_time, utc_datetime

UTC = datetime.timezone.utc

DEFAULT_DAYS = 14
DEFAULT_MIN_SESSIONS = 100
DEFAULT_MAX_FAILURE_RATE = 1.0
# The result types that are lost mail once a policy is enforced: a certificate the sender
# rejects, or a policy it cannot fetch or read (RFC 8460 §4.3.2).
DEFAULT_FORBIDDEN_RESULT_TYPES = ('certificate-*', 'sts-*')

TIME_RULE = 'must be a date YYYY-MM-DD or an RFC 3339 date-time such as 2026-11-01T00:00:00Z'

_DATE = re.compile(r'([0-9]{4})-([0-9]{2})-([0-9]{2})')


# --- time ---

def parse_time(value, field):
    """An aware UTC datetime from a datetime, a date, 'YYYY-MM-DD' (midnight UTC) or an RFC 3339 date-time."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValidationError(field, value, 'must carry a time zone')
        return value.astimezone(UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValidationError(field, value, TIME_RULE)
    moment = utc_datetime(value)
    if moment is not None:
        return moment
    match = _DATE.fullmatch(value)
    try:
        if match:
            return datetime.datetime(int(match.group(1)), int(match.group(2)), int(match.group(3)), tzinfo=UTC)
    except ValueError:
        pass
    raise ValidationError(field, value, TIME_RULE)


def parse_since(value, now, field='since'):
    """The start of a window: 'YYYY-MM-DD' (midnight UTC) or RFC 3339; refused when after ``now``."""
    since = parse_time(value, field)
    if since > now:
        raise ValidationError(field, value, 'is in the future (now is %s); no report could count' % format_time(now))
    return since


def since_days_ago(days, now, field='days'):
    """Midnight UTC ``days`` days before the day of ``now``: the window start of a ``days`` option."""
    days = _positive_int(days, field)
    return datetime.datetime.combine(now.astimezone(UTC).date() - datetime.timedelta(days=days),
                                     datetime.time(), tzinfo=UTC)


# --- names ---

def normalize_domain(value, field='domain'):
    """A policy domain as summaries key it: lower case, no final dot."""
    if not isinstance(value, str):
        raise ValidationError(field, value, 'must be a domain name')
    name = strip_root(value).lower()
    problem = hostname_problem(name)
    if problem:
        raise ValidationError(field, value, problem)
    return name


def _domain_set(domains, field='domains'):
    if isinstance(domains, str):
        domains = [domains]
    if not isinstance(domains, (list, tuple, set, frozenset)):
        raise ValidationError(field, domains, 'must be a list of domain names')
    return frozenset(normalize_domain(name, '%s[%d]' % (field, index)) for index, name in enumerate(domains))


def _host_key(value):
    """A host name or MX pattern from a report, compared case-insensitively without a final dot.

    Lenient on purpose: a sender's odd spelling must not stop the summary, it just matches nothing.
    """
    return strip_root(value.strip()).lower() if isinstance(value, str) else value


def policy_mx_patterns(entry):
    """The MX patterns a report's policy entry names: ``mx_host``, else the ``mx:`` lines of ``policy_string``."""
    if entry['mx_host']:
        return sorted(set(_host_key(host) for host in entry['mx_host']))
    patterns = set()
    for line in entry['policy_string']:
        name, sep, value = line.partition(':')
        if sep and name.strip() == 'mx' and value.strip():
            patterns.add(_host_key(value))
    return sorted(patterns)


# --- the summary ---

def _is_text(value):
    return isinstance(value, str)


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_texts(value):
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


def _is_list(value):
    return isinstance(value, (list, tuple))


def _is_date_range(value):
    return isinstance(value, Mapping) and 'start' in value and 'end' in value


# The keys the summary reads, and what each must hold; parse_report always gives them.
_REPORT_SHAPE = (('organization_name', _is_text), ('report_id', _is_text), ('date_range', _is_date_range),
                 ('policies', _is_list))
_POLICY_SHAPE = (('policy_type', _is_text), ('policy_string', _is_texts), ('policy_domain', _is_text),
                 ('mx_host', _is_texts), ('successful_sessions', _is_count), ('failed_sessions', _is_count),
                 ('failure_details', _is_list))
_DETAIL_SHAPE = (('result_type', _is_text), ('failed_sessions', _is_count))
_SHAPE_RULE = 'must be a normalised report (what parse_tlsrpt_report returns); %s'


def _check_shape(value, shape, where):
    if not isinstance(value, Mapping):
        raise ValidationError(where, value, _SHAPE_RULE % 'this is not a mapping')
    for key, valid in shape:
        if key not in value:
            raise ValidationError(where, list(value), _SHAPE_RULE % 'the key %s is missing' % key)
        if not valid(value[key]):
            raise ValidationError('%s.%s' % (where, key), value[key], _SHAPE_RULE % 'this value has the wrong type')


def _count(counts, key, number):
    counts[key] = counts.get(key, 0) + number


def _merge_counts(counts, more):
    for key, number in more.items():
        counts[key] = counts.get(key, 0) + number


def _entry_counts(entry, where):
    """One policy entry, checked and reduced to what the totals add up.

    -> (successful, failed, failures by result type, {(receiving MX, IP): [failed, by result type]}).
    Its failure details are walked once here, not once per level of the summary: a report may carry hundreds.
    The walk tallies by (result type, MX, IP), one dict update a detail; the two views come from the tally,
    which has a few keys where the details are hundreds.
    """
    _check_shape(entry, _POLICY_SHAPE, where)
    tally = {}
    for number, detail in enumerate(entry['failure_details']):
        # Exact classes clear what parse_report gives at the cost of a comparison; anything else gets the
        # exact check (which accepts subclasses) and, when it is wrong, the message naming its place.
        try:
            result_type = detail['result_type']
            failed = detail['failed_sessions']
            key = (result_type, detail.get('receiving_mx_hostname'), detail.get('receiving_ip'))
            plain = result_type.__class__ is str and failed.__class__ is int and failed >= 0
        except (AttributeError, KeyError, TypeError):
            plain = False
        if not plain:
            _check_shape(detail, _DETAIL_SHAPE, '%s.failure_details[%d]' % (where, number))
            failed = detail['failed_sessions']
            key = (detail['result_type'], detail.get('receiving_mx_hostname'), detail.get('receiving_ip'))
        tally[key] = tally.get(key, 0) + failed
    by_result_type = {}
    by_receiving_mx = {}
    for (result_type, host, address), failed in tally.items():
        by_result_type[result_type] = by_result_type.get(result_type, 0) + failed
        # Keyed as sent; the host name is normalised once per distinct key, when the domain adds it up.
        row = by_receiving_mx.get((host, address))
        if row is None:
            row = by_receiving_mx[(host, address)] = [0, {}]
        row[0] += failed
        row[1][result_type] = row[1].get(result_type, 0) + failed
    return entry['successful_sessions'], entry['failed_sessions'], by_result_type, by_receiving_mx


def _sorted_counts(counts):
    return dict(sorted(counts.items()))


def failure_rate(successful, failed):
    """Percent of sessions that failed, 0..100; None when no session was reported."""
    sessions = successful + failed
    return failed * 100.0 / sessions if sessions else None


class _Totals(object):
    """Sessions, failures by result type, reports and organisations, and the dates seen: one level of a summary."""

    def __init__(self):
        self.reports = 0
        self.organizations = set()
        self.successful = 0
        self.failed = 0
        self.by_result_type = {}
        self.first = None
        self.last = None

    def add_report(self, organization, start, end):
        self.reports += 1
        self.organizations.add(organization)
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)

    def add_entry(self, counts):
        """Add what _entry_counts returned."""
        self.successful += counts[0]
        self.failed += counts[1]
        _merge_counts(self.by_result_type, counts[2])

    def counts(self):
        return {
            'reports': self.reports,
            'organizations': sorted(self.organizations),
            'successful_sessions': self.successful,
            'failed_sessions': self.failed,
            'failure_rate': failure_rate(self.successful, self.failed),
            'failures_by_result_type': _sorted_counts(self.by_result_type),
        }

    def result(self):
        counts = self.counts()
        counts['first'] = format_time(self.first) if self.first else None
        counts['last'] = format_time(self.last) if self.last else None
        return counts


class _PolicyTotals(_Totals):
    def __init__(self, policy_type, policy_string, mx_host):
        super(_PolicyTotals, self).__init__()
        self.policy_type = policy_type
        self.policy_string = policy_string
        self.mx_host = mx_host
        self.daily = {}

    def result(self):
        result = {'policy_type': self.policy_type, 'policy_string': list(self.policy_string),
                  'mx_host': list(self.mx_host)}
        result.update(super(_PolicyTotals, self).result())
        result['daily'] = []
        for date, totals in sorted(self.daily.items()):
            day = {'date': date}
            day.update(totals.counts())
            result['daily'].append(day)
        return result


class _DomainTotals(_Totals):
    def __init__(self):
        super(_DomainTotals, self).__init__()
        self.by_receiving_mx = {}
        self.policies = {}

    def add_entry(self, counts):
        super(_DomainTotals, self).add_entry(counts)
        for (host, address), (failed, by_result_type) in counts[3].items():
            key = (_host_key(host), address)
            row = self.by_receiving_mx.get(key)
            if row is None:
                row = self.by_receiving_mx[key] = [0, {}]
            row[0] += failed
            _merge_counts(row[1], by_result_type)

    def result(self):
        result = super(_DomainTotals, self).result()
        by_mx = sorted(self.by_receiving_mx.items(),
                       key=lambda item: (-item[1][0], item[0][0] or '', item[0][1] or ''))
        result['failures_by_receiving_mx'] = [
            {'receiving_mx_hostname': host, 'receiving_ip': address, 'failed_sessions': failed,
             'failures_by_result_type': _sorted_counts(by_result_type)}
            for (host, address), (failed, by_result_type) in by_mx]
        policies = [totals.result() for totals in self.policies.values()]
        # The newest policy first: it is the one a reader (and the gate) cares about.
        policies.sort(key=lambda item: (item['policy_type'], item['policy_string'], item['mx_host']))
        policies.sort(key=lambda item: item['last'], reverse=True)
        result['policies'] = policies
        return result


class SummaryBuilder(object):
    """Streams reports in one at a time; keeps aggregates + the dedupe keys, never the reports.

    ``since``/``until``: a report counts when its date range overlaps [since, until).
    The report's end is exclusive too, so a report that ends at midnight does not count
    for the day that starts then. A report that overlaps counts whole.
    ``domains``: only the policies about these domains count; a report with none is skipped.
    """

    def __init__(self, since=None, until=None, domains=None):
        self.since = None if since is None else parse_time(since, 'since')
        self.until = None if until is None else parse_time(until, 'until')
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValidationError('until', format_time(self.until),
                                  'must be later than since (%s)' % format_time(self.since))
        self.domains = None if domains is None else _domain_set(domains)
        self._seen = set()
        self._reports = 0
        self._duplicates = 0
        self._outside_window = 0
        self._no_matching_domain = 0
        self._organizations = set()
        self._errors = []
        self._domains = {}

    def _overlaps(self, start, end):
        if self.until is not None and start >= self.until:
            return False
        if self.since is not None:
            # A report of one instant (start == end) counts when that instant is in the window.
            return end > self.since or (start == end and start >= self.since)
        return True

    def add(self, report, source):
        """-> 'added' | 'duplicate' | 'outside-window' | 'no-matching-domain'.

        Dedupe key: (organization_name, report_id), among the reports that count.
        """
        _check_shape(report, _REPORT_SHAPE, source)
        start = parse_time(report['date_range']['start'], source + '.date_range.start')
        end = parse_time(report['date_range']['end'], source + '.date_range.end')
        if not self._overlaps(start, end):
            self._outside_window += 1
            return 'outside-window'
        entries = []
        for index, entry in enumerate(report['policies']):
            where = '%s.policies[%d]' % (source, index)
            if not isinstance(entry, Mapping) or not _is_text(entry.get('policy_domain')):
                _check_shape(entry, _POLICY_SHAPE, where)
            domain = _host_key(entry['policy_domain'])
            if self.domains is None or domain in self.domains:
                entries.append((domain, entry, where))
        if self.domains is not None and not entries:
            self._no_matching_domain += 1
            return 'no-matching-domain'
        # A fixed-size digest: the key set is the one thing that grows with the number of reports.
        key = hashlib.sha256(('%s\0%s' % (report['organization_name'], report['report_id']))
                             .encode('utf-8', 'surrogatepass')).digest()[:16]
        if key in self._seen:
            self._duplicates += 1
            return 'duplicate'
        # Tallied only now, for a report that counts; a bad entry still fails before anything is added.
        entries = [(domain, entry, _entry_counts(entry, where)) for domain, entry, where in entries]
        self._seen.add(key)
        organization = report['organization_name']
        self._reports += 1
        self._organizations.add(organization)
        day = start.date().isoformat()
        counted = set()
        for domain, entry, counts in entries:
            domain_totals = self._domains.get(domain)
            if domain_totals is None:
                domain_totals = self._domains[domain] = _DomainTotals()
            policy_key = (entry['policy_type'], tuple(entry['policy_string']),
                          tuple(sorted(set(_host_key(host) for host in entry['mx_host']))))
            policy_totals = domain_totals.policies.get(policy_key)
            if policy_totals is None:
                policy_totals = domain_totals.policies[policy_key] = _PolicyTotals(*policy_key)
            daily_totals = policy_totals.daily.get(day)
            if daily_totals is None:
                daily_totals = policy_totals.daily[day] = _Totals()
            # A report counts once per domain and per policy, however many entries it repeats.
            for totals in (domain_totals, policy_totals, daily_totals):
                if totals not in counted:
                    counted.add(totals)
                    totals.add_report(organization, start, end)
                totals.add_entry(counts)
        return 'added'

    def add_error(self, source, reason):
        """A report that did not parse: listed with its source, the others go on."""
        self._errors.append({'source': source, 'reason': reason})

    def result(self):
        return {
            'reports': self._reports,
            'duplicates': self._duplicates,
            'skipped': {'outside_window': self._outside_window, 'no_matching_domain': self._no_matching_domain},
            'organizations': sorted(self._organizations),
            'window': {'since': format_time(self.since) if self.since else None,
                       'until': format_time(self.until) if self.until else None},
            'errors': list(self._errors),
            'domains': dict((domain, totals.result()) for domain, totals in sorted(self._domains.items())),
        }


def summarize(reports, since=None, until=None, domains=None):
    """A list of normalised reports -> the summary (what the ``tlsrpt_summary`` filter returns)."""
    if not isinstance(reports, (list, tuple)):
        raise ValidationError('reports', reports, 'must be a list of normalised reports (parse_tlsrpt_report output)')
    builder = SummaryBuilder(since, until, domains)
    for index, report in enumerate(reports):
        builder.add(report, 'reports[%d]' % index)
    return builder.result()


# --- the enforce gate ---

def _positive_int(value, field):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, value, 'must be a whole number of at least 1')
    return value


def _rate_limit(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValidationError(field, value, 'must be a number of percent from 0 to 100')
    return float(value)


def _patterns(value, field):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError(field, value, 'must be a list of result types or fnmatch patterns such as certificate-*')
    return list(value)


def _policy_mx(policy, field):
    """The MX patterns of the policy about to be enforced: a dict as render_policy takes, or the policy text."""
    try:
        mx = sorted(set(parse_policy(policy_text(policy, field))['mx']))
    except ValidationError as exc:
        name = field if exc.field == field else '%s.%s' % (field, exc.field)
        raise ValidationError(name, exc.value, exc.rule)
    if not mx:
        # Only mode none may omit them, and a policy without MX patterns is nothing to enforce.
        raise ValidationError(field + '.mx', mx, 'the policy to enforce must list its mx patterns')
    return mx


def _percent(rate):
    return ('%.2f' % rate).rstrip('0').rstrip('.') + ' %'


def _plural(number, word):
    return '%d %s%s' % (number, word, '' if number == 1 else 's')


def _ignore_reason(entry, mx):
    if entry['policy_type'] == 'tlsa':
        return 'a DANE (tlsa) policy, not the MTA-STS policy the gate is about'
    if entry['policy_type'] == 'no-policy-found':
        return 'the senders found no policy (no-policy-found), so these sessions say nothing about the MTA-STS policy'
    if entry['policy_type'] != 'sts':
        return 'policy type %s is not sts' % entry['policy_type']
    seen = policy_mx_patterns(entry)
    if not seen:
        return 'the reports name no MX pattern (no mx-host, no mx: line in policy-string)'
    if seen != mx:
        return ('MX patterns %s differ from the policy\'s %s: reports about an older or another policy'
                % (', '.join(seen), ', '.join(mx)))
    return None


def _ignored(entry, reason):
    return {'policy_type': entry['policy_type'], 'policy_string': entry['policy_string'],
            'mx_host': entry['mx_host'], 'reports': entry['reports'],
            'first': entry['first'], 'last': entry['last'], 'reason': reason}


def enforce_gate(summary, domain, policy, min_sessions=DEFAULT_MIN_SESSIONS, days=DEFAULT_DAYS,
                 max_failure_rate=DEFAULT_MAX_FAILURE_RATE, forbidden_result_types=DEFAULT_FORBIDDEN_RESULT_TYPES,
                 now=None, option='enforce_gate', policy_field=None):
    """Whether a summary is evidence enough to move ``domain``'s policy to enforce.

    Counts the ``sts`` policy entries whose MX patterns equal the policy's, over the ``days``
    full UTC days before the day of ``now`` (required: the caller reads the clock). Passes when there is at
    least one such report, at least ``min_sessions`` sessions, a failure rate of at most
    ``max_failure_rate`` percent and no failure whose result type matches a pattern of
    ``forbidden_result_types``. Options are checked before anything is judged; errors name
    ``<option>.<name>``.
    """
    min_sessions = _positive_int(min_sessions, option + '.min_sessions')
    days = _positive_int(days, option + '.days')
    max_failure_rate = _rate_limit(max_failure_rate, option + '.max_failure_rate')
    forbidden = _patterns(forbidden_result_types, option + '.forbidden_result_types')
    domain = normalize_domain(domain, option + '.domain')
    mx = _policy_mx(policy, policy_field or '%s.policies.%s' % (option, domain))
    if not isinstance(summary, Mapping) or not isinstance(summary.get('domains'), Mapping):
        raise ValidationError('summary', summary, 'must be a summary (what tlsrpt_summary returns)')
    if now is None:
        raise ValidationError(option + '.now', now, 'is required: the gate judges the days before it')
    now = parse_time(now, option + '.now')

    today = now.date()
    first_day = (today - datetime.timedelta(days=days)).isoformat()
    last_day = (today - datetime.timedelta(days=1)).isoformat()
    span = 'over the last %s (%s to %s)' % (_plural(days, 'day'), first_day, last_day)

    totals = _Totals()
    ignored = []
    for entry in summary['domains'].get(domain, {}).get('policies', []):
        reason = _ignore_reason(entry, mx)
        in_window = [day for day in entry['daily'] if first_day <= day['date'] <= last_day]
        if reason is None and not in_window:
            reason = 'no report in the window: its reports cover %s to %s' % (entry['first'], entry['last'])
        if reason is not None:
            ignored.append(_ignored(entry, reason))
            continue
        for day in in_window:
            totals.reports += day['reports']
            totals.organizations.update(day['organizations'])
            totals.successful += day['successful_sessions']
            totals.failed += day['failed_sessions']
            for result_type, failed in day['failures_by_result_type'].items():
                _count(totals.by_result_type, result_type, failed)

    evidence = totals.counts()
    reports = totals.reports
    sessions = totals.successful + totals.failed
    forbidden_failures = dict((result_type, failed) for result_type, failed in evidence['failures_by_result_type'].items()
                              if failed and any(fnmatch.fnmatchcase(result_type, pattern) for pattern in forbidden))
    evidence.update({'sessions': sessions, 'forbidden_failures': forbidden_failures,
                     'window': {'first': first_day, 'last': last_day, 'days': days}, 'mx': mx})

    reasons = []
    if not reports:
        if domain not in summary['domains']:
            reasons.append('no TLS-RPT report about %s was read; without reports there is no evidence that senders '
                           'can deliver under enforce' % domain)
        else:
            reasons.append('no TLS-RPT report about %s\'s policy (mx: %s) %s; %d policy %s ignored (see ignored_policies)'
                           % (domain, ', '.join(mx), span, len(ignored), 'entry was' if len(ignored) == 1 else 'entries were'))
    else:
        if sessions < min_sessions:
            reasons.append('only %s reported for %s %s; at least %d are needed'
                           % (_plural(sessions, 'session'), domain, span, min_sessions))
        if sessions and evidence['failure_rate'] > max_failure_rate:
            reasons.append('%s of the %s reported for %s %s failed (%d); at most %s may fail'
                           % (_percent(evidence['failure_rate']), _plural(sessions, 'session'), domain, span,
                              totals.failed, _percent(max_failure_rate)))
        if forbidden_failures:
            reasons.append('sessions to %s failed with %s %s; none of %s may occur before enforce'
                           % (domain, ', '.join('%s (%d)' % item for item in sorted(forbidden_failures.items())),
                              span, ', '.join(forbidden)))
    passed = not reasons
    if passed:
        message = ('%s may go to enforce: %s in %s from %s %s, %s failed, no failure of a forbidden result type'
                   % (domain, _plural(sessions, 'session'), _plural(reports, 'report'),
                      _plural(len(evidence['organizations']), 'organisation'), span, _percent(evidence['failure_rate'])))
    else:
        message = '%s should not go to enforce yet: %s' % (domain, '; '.join(reasons))
    return {'domain': domain, 'passed': passed, 'reasons': reasons, 'message': message,
            'evidence': evidence, 'ignored_policies': ignored}


# --- Markdown (cells and tables: _markdown) ---


def _by_count(counts):
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _domain_markdown(domain, totals):
    lines = ['## ' + _cell(domain), '']
    lines += _table(
        ['Reports', 'Organisations', 'Successful sessions', 'Failed sessions', 'Failure rate', 'First', 'Last'],
        ['---:', '---', '---:', '---:', '---:', '---', '---'],
        [[str(totals['reports']), _cell(', '.join(totals['organizations'])), str(totals['successful_sessions']),
          str(totals['failed_sessions']), _rate_cell(totals['failure_rate']), _cell(totals['first']),
          _cell(totals['last'])]])
    lines += ['', '### Failures by result type', '']
    if totals['failures_by_result_type']:
        lines += _table(['Result type', 'Failed sessions'], ['---', '---:'],
                        [[_cell(name), str(count)] for name, count in _by_count(totals['failures_by_result_type'])])
    else:
        lines.append('No failure details reported.')
    if totals['failures_by_receiving_mx']:
        lines += ['', '### Failures by receiving MX', '']
        lines += _table(
            ['Receiving MX', 'Receiving IP', 'Failed sessions', 'Result types'], ['---', '---', '---:', '---'],
            [[_cell(row['receiving_mx_hostname']), _cell(row['receiving_ip']), str(row['failed_sessions']),
              _cell(', '.join('%s (%d)' % item for item in _by_count(row['failures_by_result_type'])))]
             for row in totals['failures_by_receiving_mx']])
    lines += ['', '### Policies seen', '']
    lines += _table(
        ['Type', 'Policy', 'MX patterns', 'Reports', 'Successful', 'Failed', 'First', 'Last'],
        ['---', '---', '---', '---:', '---:', '---:', '---', '---'],
        [[_cell(entry['policy_type']), _cell('; '.join(entry['policy_string']) or None),
          _cell(', '.join(policy_mx_patterns(entry)) or None), str(entry['reports']), str(entry['successful_sessions']),
          str(entry['failed_sessions']), _cell(entry['first']), _cell(entry['last'])]
         for entry in totals['policies']])
    return lines


def render_markdown(summary):
    """GitHub-flavoured Markdown of a summary: per domain its totals, failures and policies; then the errors."""
    if not isinstance(summary, Mapping) or not isinstance(summary.get('domains'), Mapping):
        raise ValidationError('summary', summary, 'must be a summary (what tlsrpt_summary returns)')
    window = summary['window']
    skipped = summary.get('skipped', {})
    lines = ['# TLS-RPT summary', '',
             '%s from %s counted; skipped: %s, %d outside the window, %d about other domains; '
             '%d could not be read.' % (
                 _plural(summary['reports'], 'report'), _plural(len(summary['organizations']), 'organisation'),
                 _plural(summary['duplicates'], 'duplicate'), skipped.get('outside_window', 0), skipped.get('no_matching_domain', 0),
                 len(summary['errors'])),
             '', 'Window: %s.' % (' '.join(part for part in (
                 window['since'] and 'from ' + window['since'], window['until'] and 'until ' + window['until'])
                 if part) or 'all dates')]
    if not summary['domains']:
        lines += ['', 'No report counted.']
    for domain, totals in summary['domains'].items():
        lines.append('')
        lines += _domain_markdown(domain, totals)
    if summary['errors']:
        lines += ['', '## Reports that could not be read', '']
        lines += _table(['Source', 'Reason'], ['---', '---'],
                        [[_cell(error['source']), _cell(error['reason'])] for error in summary['errors']])
    return '\n'.join(lines) + '\n'
