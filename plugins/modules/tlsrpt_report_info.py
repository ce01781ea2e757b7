#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: tlsrpt_report_info
short_description: Read TLS-RPT reports from files and an IMAP mailbox, sum them up per domain, judge the enforce gate
version_added: 0.1.0
description:
  - Reads the aggregate reports (RFC 8460) that sending MTAs mail to the C(rua) of the C(_smtp._tls) record, from
    files and directories (O(paths)) and from an IMAP mailbox over TLS (O(imap)), and returns one summary per
    policy domain (RV(summary)), the same summary as Markdown (RV(markdown)) and, with O(enforce_gate), whether
    the evidence allows moving each listed domain to C(mode) V(enforce) (RV(gate)).
  - A report delivered twice (the same organisation and report id) counts once. A report that cannot be read or
    parsed is listed in RV(summary.errors) with its source and the reason, and the others are still read.
  - Reports are read one at a time, never all at once, so memory stays flat for any number of them.
  - Reports POSTed to an C(https:) rua are out of scope; store each POSTed body as a file and list that directory
    in O(paths).
  - Every option is checked before the mailbox is opened. With O(imap.move_to) or O(imap.state_file) the module
    changes the mailbox or the state file; otherwise it only reads.
extends_documentation_fragment:
  - mailsec.mta_sts.attributes
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
  action_group:
    description: Use C(group/mailsec.mta_sts.tlsrpt) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - mailsec.mta_sts.tlsrpt
options:
  paths:
    description:
      - Report files, mail files and directories on the host the task runs on (use C(delegate_to) for the
        controller's files).
      - A directory is read recursively, in sorted order, following symlinks (each directory once). Read are
        C(*.json) (a report), C(*.json.gz) and C(*.gz) (a gzip report), C(*.eml) and every file in a maildir's
        C(cur/) and C(new/) (a mail; never C(tmp/)); other files are skipped and counted in RV(skipped_files).
      - A file named here is read whatever its name; its content says whether it is JSON, gzip or a mail.
      - A path that does not exist fails the task before anything is read.
      - A report is an C(application/tlsrpt+json) or C(application/tlsrpt+gzip) part of a mail, or any attachment
        named C(*.json), C(*.json.gz) or C(*.gz) (some senders label it C(application/gzip) or
        C(application/octet-stream)); forwarded and nested parts are opened.
      - At least one of O(paths) and O(imap) is required.
    type: list
    elements: path
  imap:
    description:
      - An IMAP mailbox that receives the reports, read over TLS (IMAPS). Messages are fetched one at a time with
        C(BODY.PEEK[]), so reading alone never marks a message seen.
      - With O(imap.move_to), every message examined is moved there (those with errors too; the errors are listed
        in that run's RV(summary)). Without it but with O(imap.state_file), the UIDs seen are recorded there and
        skipped the next time. With neither, the mailbox is only read (to sum up an archive folder, say).
    type: dict
    suboptions:
      host:
        description: The IMAP server.
        type: str
        required: true
      port:
        description: The IMAPS port.
        type: int
        default: 993
      username:
        description: The login name.
        type: str
        required: true
      password:
        description: The password. Never logged, and never part of a message or a source label.
        type: str
        required: true
      mailbox:
        description: The folder to read.
        type: str
        default: INBOX
      move_to:
        description:
          - The folder processed messages are moved to; created when missing. C(MOVE) where the server has it,
            else C(COPY), C(\\Deleted) and C(UID EXPUNGE) of exactly those messages (plain C(EXPUNGE) on a server
            without C(UIDPLUS), which also removes messages another client flagged C(\\Deleted)).
          - Not with O(imap.state_file).
        type: str
      state_file:
        description:
          - A JSON file on the host the task runs on that records the UIDs already read (with the mailbox's
            C(UIDVALIDITY); a new UIDVALIDITY starts it afresh). Not with O(imap.move_to). Its directory must exist.
        type: path
      ca_file:
        description: CA certificates (PEM) to verify the server with, instead of the system's.
        type: path
      validate_certs:
        description: Verify the server's certificate and name. Turn off only for a test server.
        type: bool
        default: true
      timeout:
        description: Seconds to wait for the server on each operation.
        type: int
        default: 30
  since:
    description:
      - Only reports whose date range reaches into the window from this date on count; the others are counted in
        the summary as outside the window. V(YYYY-MM-DD) (midnight UTC) or an RFC 3339 date-time.
      - Mutually exclusive with O(days).
    type: str
  days:
    description:
      - The window starts at midnight UTC this many days before today (so V(1) is yesterday and today).
      - Mutually exclusive with O(since).
    type: int
  domains:
    description:
      - Only the policies about these domains count (compared without case and final dot); reports about other
        domains only are skipped. Default is every domain.
    type: list
    elements: str
  max_report_size:
    description:
      - The largest report, in bytes, after gunzip. A gzip stream is inflated only up to this size (a gzip bomb
        stops there); a plain report file past it, or a mail file past four times it, is refused without being read.
    type: int
    default: 10485760
  enforce_gate:
    description:
      - Judge, for each domain of O(enforce_gate.policies), whether the reports are evidence enough to move its
        policy to C(mode) V(enforce); the result is in RV(gate) and RV(gate_passed). The task itself does not fail;
        use RV(gate_passed) in an C(assert) or C(failed_when).
      - Only the C(sts) policy entries whose MX patterns equal those of the given policy count, so reports about
        an older policy are not taken as evidence. No report at all fails the gate.
      - The window is the O(enforce_gate.days) full UTC days before today, whatever O(since) and O(days) say
        (those only narrow what is read).
    type: dict
    suboptions:
      policies:
        description:
          - The policy about to be enforced, keyed by its domain; a policy is a dict as the
            P(mailsec.mta_sts.render_policy#filter) filter takes it, or the policy file's text. Only its MX
            patterns are compared. At least one domain; with O(domains), each must be among them.
        type: dict
        required: true
      min_sessions:
        description: The fewest sessions (successful and failed) that must have been reported in the window.
        type: int
        default: 100
      days:
        description:
          - The window, in full UTC days before today.
          - The gate judges the summary this run builds, so O(since) or O(days) starting later than this window
            leaves days out; the module then warns.
        type: int
        default: 14
      max_failure_rate:
        description: The highest share of failed sessions, in percent (0 to 100).
        type: float
        default: 1.0
      forbidden_result_types:
        description:
          - Result types (C(fnmatch) patterns) of which not one failure may have been reported in the window.
        type: list
        elements: str
        default: ['certificate-*', 'sts-*']
author:
  - mailsec maintainers (@mailsec)
seealso:
  - plugin: mailsec.mta_sts.tlsrpt_summary
    plugin_type: filter
  - plugin: mailsec.mta_sts.tlsrpt_enforce_gate
    plugin_type: filter
  - module: mailsec.mta_sts.tlsrpt_record
  - name: RFC 8460
    description: SMTP TLS Reporting.
    link: https://www.rfc-editor.org/rfc/rfc8460
'''

EXAMPLES = r'''
- name: Sum up the reports a mail filter saved under /srv/tlsrpt (files, .eml, a maildir)
  mailsec.mta_sts.tlsrpt_report_info:
    paths: [/srv/tlsrpt]
    days: 30
  register: tlsrpt

- name: Show the per-domain tables in the CI job summary
  ansible.builtin.copy:
    content: "{{ tlsrpt.markdown }}"
    dest: "{{ lookup('env', 'GITHUB_STEP_SUMMARY') }}"
    mode: '0644'
  delegate_to: localhost

- name: Read new reports from the rua mailbox and file them away
  mailsec.mta_sts.tlsrpt_report_info:
    imap:
      host: imap.example.com
      username: tlsrpt@example.com
      password: "{{ vault_tlsrpt_imap_password }}"
      move_to: Archive/tlsrpt
    domains: [example.com, example.net]
  register: tlsrpt

- name: Before enforce, the last 14 days of reports about the policy to enforce must be clean
  mailsec.mta_sts.tlsrpt_report_info:
    imap:
      host: imap.example.com
      username: tlsrpt@example.com
      password: "{{ vault_tlsrpt_imap_password }}"
      mailbox: Archive/tlsrpt
    days: 14
    enforce_gate:
      policies:
        example.com:
          mode: enforce
          mx: [mail.example.com, "*.mx.example.com"]
          max_age: 604800
      min_sessions: 100
      max_failure_rate: 1.0
  register: evidence

- name: Stop here unless the evidence allows enforce
  ansible.builtin.assert:
    that: evidence.gate_passed
    fail_msg: "{{ evidence.gate | dict2items | map(attribute='value.reasons') | flatten }}"
'''

RETURN = r'''
summary:
  description:
    - The reports summed up per policy domain (what the P(mailsec.mta_sts.tlsrpt_summary#filter) filter returns).
      docs/tlsrpt-reports.md describes every key.
  returned: always
  type: dict
  contains:
    reports:
      description: Reports counted (after duplicates, the window and the domains were applied).
      type: int
    duplicates:
      description: Reports seen again (same organisation and report id) and counted once.
      type: int
    skipped:
      description:
        - Reports read but not counted, C(outside_window) (their date range is before O(since)) and
          C(no_matching_domain) (none of their policies is about one of O(domains)).
      type: dict
      sample: {outside_window: 12, no_matching_domain: 0}
    organizations:
      description: The organisations that sent the counted reports, sorted.
      type: list
      elements: str
    window:
      description: C({since, until}) of the window, RFC 3339, null when open.
      type: dict
    errors:
      description: C({source, reason}) for each report, file or message that could not be read or parsed.
      type: list
      elements: dict
      sample:
        - source: /srv/tlsrpt/cur/1793491200.M1P2.mx:2,S part 2
          reason: "policies[0].summary.total-failure-session-count -1: must be a non-negative integer"
    domains:
      description:
        - Per policy domain, C(reports), C(organizations), C(first) and C(last) dates, C(successful_sessions),
          C(failed_sessions), C(failure_rate) (percent, null without sessions), C(failures_by_result_type),
          C(failures_by_receiving_mx) and C(policies) (one entry per policy string and MX patterns seen, with its
          own counts and a C(daily) series).
      type: dict
  sample:
    reports: 3
    duplicates: 1
    organizations: [Google Inc., Microsoft Corporation]
    window: {since: '2026-11-01T00:00:00Z', until: null}
    errors: []
    domains:
      example.com:
        reports: 3
        organizations: [Google Inc., Microsoft Corporation]
        first: '2026-11-01T00:00:00Z'
        last: '2026-11-02T23:59:59Z'
        successful_sessions: 1630
        failed_sessions: 5
        failure_rate: 0.31
        failures_by_result_type: {certificate-expired: 2, certificate-host-mismatch: 3}
        failures_by_receiving_mx:
          - {receiving_mx_hostname: mail.example.com, receiving_ip: 192.0.2.25, failed_sessions: 5}
        policies: []
markdown:
  description: The summary as Markdown, one table per domain, for a CI job summary or a ticket.
  returned: always
  type: str
gate:
  description:
    - Per domain of O(enforce_gate.policies), C(passed), C(reasons) (why not, in words), C(message), C(evidence)
      (the counts over the matching policies in the window) and C(ignored_policies) (entries that did not count, each
      with its reason).
  returned: when O(enforce_gate) is given
  type: dict
gate_passed:
  description: Every domain of O(enforce_gate.policies) passed the gate.
  returned: when O(enforce_gate) is given
  type: bool
skipped_files:
  description: Files under O(paths) that are not reports or mails by their name, and were not read.
  returned: always
  type: int
imap:
  description: What was read, moved and recorded in the mailbox (what would be, in check mode).
  returned: when O(imap) is given
  type: dict
  contains:
    mailbox:
      description: The mailbox as an RFC 5092 URL with its C(UIDVALIDITY) (no password).
      type: str
      sample: imap://tlsrpt%40example.com@imap.example.com:993/INBOX;UIDVALIDITY=1793491200
    uidvalidity:
      description: The mailbox's C(UIDVALIDITY).
      type: int
    messages:
      description: Messages in the mailbox.
      type: int
    new:
      description: Messages read in this run.
      type: int
    skipped:
      description: Messages not read again because O(imap.state_file) records them.
      type: int
    moved:
      description: Messages moved to O(imap.move_to).
      type: int
    recorded:
      description: UIDs added to O(imap.state_file).
      type: int
    move_to:
      description: O(imap.move_to).
      type: str
    created_folder:
      description: O(imap.move_to) did not exist and was created.
      type: bool
    state_file:
      description: O(imap.state_file).
      type: str
    state_reset:
      description: The state file was about another mailbox or C(UIDVALIDITY), so its UIDs were dropped.
      type: bool
    changed:
      description: The mailbox or the state file changed.
      type: bool
'''

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_imap import (
    ImapError, check_options as check_imap_options, read_mailbox)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_report import DEFAULT_MAX_BYTES, format_utc, parse_report
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_sources import (
    ReportError, iter_path, message_reports)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_summary import (
    DEFAULT_DAYS, DEFAULT_FORBIDDEN_RESULT_TYPES, DEFAULT_MAX_FAILURE_RATE, DEFAULT_MIN_SESSIONS, SummaryBuilder,
    enforce_gate, normalize_domain, parse_since, render_markdown, since_days_ago)

ARGUMENT_SPEC = dict(
    paths=dict(type='list', elements='path'),
    imap=dict(type='dict', options=dict(
        host=dict(type='str', required=True),
        port=dict(type='int', default=993),
        username=dict(type='str', required=True),
        password=dict(type='str', required=True, no_log=True),
        mailbox=dict(type='str', default='INBOX'),
        move_to=dict(type='str'),
        state_file=dict(type='path'),
        ca_file=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        timeout=dict(type='int', default=30),
    )),
    since=dict(type='str'),
    days=dict(type='int'),
    domains=dict(type='list', elements='str'),
    max_report_size=dict(type='int', default=DEFAULT_MAX_BYTES),
    enforce_gate=dict(type='dict', options=dict(
        policies=dict(type='dict', required=True),
        min_sessions=dict(type='int', default=DEFAULT_MIN_SESSIONS),
        days=dict(type='int', default=DEFAULT_DAYS),
        max_failure_rate=dict(type='float', default=DEFAULT_MAX_FAILURE_RATE),
        forbidden_result_types=dict(type='list', elements='str', default=list(DEFAULT_FORBIDDEN_RESULT_TYPES)),
    )),
)

# Judging an empty summary checks every gate option (and parses each policy) before any source is read.
NO_REPORTS = {'domains': {}}


def error_reason(exc):
    """A parse error as one line: the field and the rule, and the offending value when it is short."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    value = repr(exc.value)
    return '%s%s: %s' % (exc.field, ' ' + value if len(value) <= 80 else '', exc.rule)


def judge_gate(summary, gate, now):
    """The enforce gate's result for each domain of ``gate['policies']``."""
    limits = dict((name, gate[name]) for name in ('min_sessions', 'days', 'max_failure_rate', 'forbidden_result_types'))
    return dict((domain, enforce_gate(summary, domain, policy, now=now, policy_field='enforce_gate.policies.%s' % domain,
                                      **limits))
                for domain, policy in gate['policies'].items())


def summary_builder(params, now):
    """Check every option before any source is read, and return the SummaryBuilder they describe."""
    if params['max_report_size'] < 1:
        raise ValidationError('max_report_size', params['max_report_size'], 'must be a number of bytes of at least 1')
    # A mistyped path would otherwise only show as one entry of summary.errors, and a gate with no evidence.
    for index, path in enumerate(params['paths'] or []):
        if not os.path.exists(path):
            raise ValidationError('paths[%d]' % index, path, 'does not exist')
    if params['imap'] is not None:
        check_imap_options(params['imap'])
    since = None
    if params['since'] is not None:
        since = parse_since(params['since'], now)
    elif params['days'] is not None:
        since = since_days_ago(params['days'], now)
    builder = SummaryBuilder(since=since, domains=params['domains'])
    gate = params['enforce_gate']
    if gate is not None:
        if not gate['policies']:
            raise ValidationError('enforce_gate.policies', gate['policies'], 'must name at least one domain and its policy')
        for domain in gate['policies']:
            field = 'enforce_gate.policies.%s' % domain
            if builder.domains is not None and normalize_domain(domain, field) not in builder.domains:
                raise ValidationError(field, domain, 'is not among domains, so no report about it would be read')
        judge_gate(NO_REPORTS, gate, now)
    return builder


def add_reports(builder, found, max_bytes):
    """Parse and add each ``(source, report bytes | ReportError)``; a bad one is listed and the rest go on."""
    for source, report in found:
        if isinstance(report, ReportError):
            builder.add_error(source, str(report))
            continue
        try:
            builder.add(parse_report(report, max_bytes=max_bytes), source)
        # ValidationError, and UnicodeDecodeError or a JSON error should the parser let one through.
        except ValueError as exc:
            builder.add_error(source, error_reason(exc))


def mailbox_reports(messages, max_bytes):
    """``(source, report | ReportError)`` of each report in ``(source, message bytes)`` pairs."""
    for source, message in messages:
        if isinstance(message, ReportError):
            yield source, message
        else:
            yield from message_reports(source, message, max_bytes)


def run(module, now):
    params = module.params
    builder = summary_builder(params, now)
    max_bytes = params['max_report_size']
    skipped = []
    for path in params['paths'] or []:
        add_reports(builder, iter_path(path, max_bytes, skipped), max_bytes)
    result = dict(changed=False, skipped_files=len(skipped))
    if params['imap'] is not None:
        messages, finish = read_mailbox(params['imap'], max_bytes, module.check_mode)
        add_reports(builder, mailbox_reports(messages, max_bytes), max_bytes)
        imap = finish()
        diff = imap.pop('diff', None)
        result['changed'] = bool(imap.get('changed'))
        result['imap'] = imap
        if module._diff and diff:
            result['diff'] = diff
    summary = builder.result()
    result.update(summary=summary, markdown=render_markdown(summary))
    gate = params['enforce_gate']
    if gate is not None:
        gate_start = since_days_ago(gate['days'], now)
        if builder.since is not None and builder.since > gate_start:
            # The gate would still speak of its own days, with fewer of them read.
            module.warn('enforce_gate.days looks back to %s, but since/days start the summary at %s: the gate '
                        'judges only the reports from then on' % (format_utc(gate_start), format_utc(builder.since)))
        result['gate'] = judge_gate(summary, gate, now)
        result['gate_passed'] = all(item['passed'] for item in result['gate'].values())
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[('since', 'days')], required_one_of=[('paths', 'imap')])
    try:
        module.exit_json(**run(module, datetime.datetime.now(datetime.timezone.utc)))
    except ValidationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except ImapError as exc:
        module.fail_json(msg=str(exc), changed=exc.changed)


if __name__ == '__main__':
    main()
