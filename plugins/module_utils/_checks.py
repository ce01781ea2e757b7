# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Findings and drift for one mail domain: the checks layer of the live validator.

Pure code: no I/O, no clock. The live-state layer gathers FACTS (the TXT lookups,
the MX lookup, the policy fetch and the MX probes, all done the way a strict
sending MTA does them); ``evaluate`` judges them, with an optional EXPECT
(desired state), into one RESULT with findings and drift. Every finding code is
listed in ``FINDINGS`` and documented in docs/findings.md; codes are public.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re

from collections.abc import Mapping

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._mx import matches, matches_any, normalize_pattern
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    MAX_AGE_MAX, MAX_AGE_RULE, MODES, parse_policy, policy_id, render_policy, validate_id,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import STS_RECORD, TLSRPT_RECORD
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt import validate_rua

SEVERITIES = ('error', 'warning', 'info')

ONE_DAY = 86400
ONE_WEEK = 604800
MAX_POLICY_BYTES = 64 * 1024
EXPIRY_WARNING_DAYS = 14
OLD_TLS = ('SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.0', 'TLSv1.1')

_UNPUBLISHED = 'info when no v=STSv1 record is published and EXPECT asks for none'

# code -> (severity, or a note naming each severity it can take and when; short description).
FINDINGS = {
    # The _mta-sts TXT record (RFC 8461 §3.1)
    'sts-dns-error': ('error', 'The _mta-sts TXT lookup failed, so senders cannot discover a policy.'),
    'sts-record-missing': ('info; error when EXPECT asks for a policy', 'No v=STSv1 TXT record: senders see no MTA-STS policy.'),
    'sts-record-multiple': ('error', 'More than one v=STSv1 record: senders treat the domain as having no policy.'),
    'sts-record-invalid': ('error', 'The v=STSv1 record breaks the grammar: senders see no policy.'),
    'sts-record-ignored': ('warning', 'A TXT record that looks like an STS record but does not start with "v=STSv1": senders ignore it.'),
    'sts-record-cname': ('info', '_mta-sts is a CNAME (delegation); the record was read at the end of the chain.'),
    'sts-record-multistring': ('info', 'The v=STSv1 record is split into several character-strings, which senders concatenate.'),
    # The policy fetch (RFC 8461 §3.3) and the policy file (§3.2)
    'policy-not-fetched': ('info', 'The policy was not fetched, so the domain cannot be shown valid.'),
    'policy-fetch-failed': ('error; ' + _UNPUBLISHED, 'The HTTPS fetch of the policy failed (DNS, connection, timeout, TLS or HTTP).'),
    'policy-certificate-invalid': ('error; ' + _UNPUBLISHED, 'The policy host certificate is not valid for mta-sts.<domain>, expired or untrusted.'),
    'policy-certificate-expiring': ('warning; ' + _UNPUBLISHED, 'The policy host certificate expires within 14 days.'),
    'policy-redirect': ('error; ' + _UNPUBLISHED, 'The policy URL answers with a redirect, which senders never follow.'),
    'policy-http-status': ('error; ' + _UNPUBLISHED, 'The policy URL answers with an HTTP status other than 200.'),
    'policy-too-large': ('error; ' + _UNPUBLISHED, 'The policy is larger than 64 KiB.'),
    'policy-invalid': ('error; ' + _UNPUBLISHED, 'The policy file breaks the grammar.'),
    'policy-content-type': ('warning; ' + _UNPUBLISHED, 'The policy is not served as text/plain.'),
    'policy-tls-old': ('warning; ' + _UNPUBLISHED, 'The policy host negotiated a TLS version below 1.2.'),
    'mode-testing': ('info', 'The policy is in testing mode: failures are only reported, mail is still delivered.'),
    'mode-none': ('info', 'The policy is in none mode: senders apply no MTA-STS restriction.'),
    'max-age-short': ('warning; ' + _UNPUBLISHED, 'max_age is under a day.'),
    'max-age-short-enforce': ('warning; ' + _UNPUBLISHED, 'Enforce mode with max_age under a week.'),
    # The MX hosts (RFC 8461 §4)
    'mx-lookup-failed': ('error', 'The MX lookup failed: MX coverage could not be checked.'),
    'mx-nxdomain': ('error', 'The domain does not exist (NXDOMAIN): no mail can be delivered to it.'),
    'mx-none': ('info', 'No MX records: senders use the domain itself as its MX (implicit MX), and it is checked as one.'),
    'mx-null': ('info; warning when other MX records are published too', 'A null MX: the domain accepts no mail.'),
    'mx-not-covered': ('error in enforce; warning in testing; ' + _UNPUBLISHED, 'An MX host that no mx pattern of the policy matches.'),
    'mx-pattern-unused': ('info', 'An mx pattern of the policy that matches none of the MX hosts.'),
    'mx-probe-failed': ('warning; error in enforce when STARTTLS was offered but TLS was never established',
                        'The STARTTLS probe of an MX host failed.'),
    'mx-starttls-missing': ('error in enforce; warning otherwise', 'An MX host does not offer STARTTLS.'),
    'mx-tls-failed': ('error in enforce; warning otherwise', 'The TLS handshake with an MX host failed after STARTTLS.'),
    'mx-certificate-invalid': ('error in enforce; warning otherwise', 'An MX host certificate is not valid for its name, expired or untrusted.'),
    'mx-certificate-expiring': ('warning', 'An MX host certificate expires within 14 days.'),
    'mx-tls-old': ('warning', 'An MX host negotiated a TLS version below 1.2.'),
    # The _smtp._tls TXT record (RFC 8460 §3)
    'tlsrpt-dns-error': ('error', 'The _smtp._tls TXT lookup failed, so senders cannot discover where to report.'),
    'tlsrpt-record-missing': ('info; warning when the published policy is in testing mode; error when EXPECT asks for rua',
                              'No v=TLSRPTv1 TXT record: senders send no TLS reports.'),
    'tlsrpt-record-multiple': ('error', 'More than one v=TLSRPTv1 record: senders treat the domain as having no TLS-RPT.'),
    'tlsrpt-record-invalid': ('error', 'The v=TLSRPTv1 record breaks the grammar: senders send no TLS reports.'),
    'tlsrpt-record-ignored': ('warning', 'A TXT record that looks like a TLS-RPT record but does not start with "v=TLSRPTv1": senders ignore it.'),
    'tlsrpt-record-cname': ('info', '_smtp._tls is a CNAME; the record was read at the end of the chain.'),
    'tlsrpt-record-multistring': ('info', 'The v=TLSRPTv1 record is split into several character-strings, which senders concatenate.'),
}


class _RecordRules(object):
    """How findings about one kind of TXT record are named and worded."""

    def __init__(self, kind, lookalike, cname_text, missing_text, multiple_text, invalid_text):
        self.kind = kind
        self.label = kind.label
        self.lookalike = re.compile(lookalike, re.IGNORECASE)
        self.cname_text = cname_text
        self.missing_text = missing_text
        self.multiple_text = multiple_text
        self.invalid_text = invalid_text

    def pick(self, sts_code, tlsrpt_code):
        # Both codes are written out at each call, so every finding code stays greppable in this file.
        return sts_code if self.kind is STS_RECORD else tlsrpt_code


# ``lookalike``: near misses of the version field ("v=stsv1", " v=STSv1", "v = STSv1"), almost always a typo.
_STS_RULES = _RecordRules(
    STS_RECORD, r'\s*v\s*=\s*stsv', '%s is delegated by CNAME: %s',
    'see no MTA-STS policy', 'treat the domain as having no policy (RFC 8461 §3.1)', 'see no policy')
_TLSRPT_RULES = _RecordRules(
    TLSRPT_RECORD, r'\s*v\s*=\s*tlsrptv', '%s is a CNAME: %s',
    'send no TLS reports', 'send no reports (RFC 8460 §3)', 'send no reports')
_DIGITS = re.compile(r'[0-9]{1,10}')

EXPECT_KEYS = ('mode', 'mx', 'max_age', 'id', 'policy', 'rua')
_STS_EXPECT_KEYS = ('mode', 'mx', 'max_age', 'id', 'policy')


# --- EXPECT ---

def _expect_max_age(value):
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_AGE_MAX:
        raise ValidationError('expect.max_age', value, MAX_AGE_RULE)
    return value


def _expect_mx(value):
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, (list, tuple)):
        raise ValidationError('expect.mx', value, 'must be a list of mx patterns')
    normalized = []
    for pattern in patterns:
        pattern = normalize_pattern(pattern, 'expect.mx')
        if pattern not in normalized:
            normalized.append(pattern)
    return normalized


def _expect_policy(value):
    """``(desired id, the parsed policy)`` for EXPECT's policy: a dict as render_policy takes, or the file's text."""
    try:
        if isinstance(value, Mapping):
            return policy_id(value), parse_policy(render_policy(value))
        if isinstance(value, (str, bytes)):
            return policy_id(value), parse_policy(value)
    except ValidationError as exc:
        # Core errors name their own field (mode, mx, "policy line 3"); say it came from EXPECT's policy.
        field = str(exc.field)
        raise ValidationError('expect.' + field if field.startswith('policy') else 'expect.policy.' + field, exc.value, exc.rule)
    raise ValidationError('expect.policy', value, 'must be a dict (as render_policy takes) or the policy text')


class Expected(dict):
    """A normalized EXPECT. Its ``policy`` is already an id, so it must not be normalized again."""


def normalize_expect(expect):
    """EXPECT validated and in canonical form: ``{field: desired value}`` for the drift fields.

    Keys with a None value count as not given. ``id`` and ``policy`` exclude each
    other; with ``policy`` the desired ``id`` and ``policy`` are both its
    policy_id, and mode, mx and max_age default to the policy's own (given
    separately they must agree with it, or the domain could never be in sync).
    ``mx`` and ``rua`` become lists without duplicates. Raises ValidationError.
    The result (an ``Expected``) is returned unchanged when passed again, so
    callers may validate every EXPECT up front and hand the results to evaluate().
    """
    if isinstance(expect, Expected):
        return expect
    if expect is None:
        return Expected()
    if not isinstance(expect, Mapping):
        raise ValidationError('expect', expect, 'must be a mapping with any of %s' % ', '.join(EXPECT_KEYS))
    for key in expect:
        if key not in EXPECT_KEYS:
            raise ValidationError('expect', key, 'unknown key; allowed: %s' % ', '.join(EXPECT_KEYS))
    given = dict((key, value) for key, value in expect.items() if value is not None)
    if 'id' in given and 'policy' in given:
        raise ValidationError('expect.id', given['id'], 'give id or policy, not both (the id of a policy is derived from it)')

    desired = {}
    if 'mode' in given:
        if not isinstance(given['mode'], str) or given['mode'] not in MODES:
            raise ValidationError('expect.mode', given['mode'], 'must be one of %s' % ', '.join(MODES))
        desired['mode'] = given['mode']
    if 'mx' in given:
        desired['mx'] = _expect_mx(given['mx'])
    if 'max_age' in given:
        desired['max_age'] = _expect_max_age(given['max_age'])
    if 'policy' in given:
        wanted_id, policy = _expect_policy(given['policy'])
        for key in ('mode', 'mx', 'max_age'):
            if key not in desired:
                desired[key] = policy[key]
            elif _differs(key, desired[key], policy[key]):
                raise ValidationError('expect.' + key, desired[key], 'contradicts expect.policy, which has %r' % (policy[key],))
        desired['id'] = wanted_id
        desired['policy'] = wanted_id
    if 'id' in given:
        desired['id'] = validate_id(given['id'], 'expect.id')
    if desired.get('mx') == [] and desired.get('mode', 'none') != 'none':
        raise ValidationError('expect.mx', [], 'at least one mx pattern is required unless mode is none')
    if 'rua' in given:
        desired['rua'] = validate_rua(given['rua'], 'expect.rua')
    return Expected((key, desired[key]) for key in EXPECT_KEYS if key in desired)


def _differs(field, desired, live):
    """Whether a live value differs from the desired one. mx and rua are sets: order and duplicates do not matter."""
    if live is None:
        return True
    if field in ('mx', 'rua'):
        return set(desired) != set(live)
    return desired != live


# --- small helpers over FACTS ---

def _text(string):
    return string if isinstance(string, str) else bytes(string).decode('utf-8', 'replace')


def _managed(txt, kind):
    return [text for text, _count in _txt_values(txt) if kind.is_managed(text)]


def _txt_values(txt):
    """Each TXT record at the name as ``(joined text, number of character-strings)``."""
    values = []
    for strings in txt.get('records') or []:
        if isinstance(strings, (str, bytes)):
            strings = [strings]
        values.append((''.join(_text(string) for string in strings), len(strings)))
    return values


def _utc(value, field):
    """A datetime in UTC from a datetime (naive means UTC) or an ISO 8601 string ("Z" allowed); None if unreadable."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(('Z', 'z')):
            text = text[:-1] + '+00:00'
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            if field:
                raise ValidationError(field, value, 'must be a datetime or an ISO 8601 date and time')
            return None
    if not isinstance(value, datetime.datetime):
        if field:
            raise ValidationError(field, value, 'must be a datetime or an ISO 8601 date and time')
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def _error_text(error):
    if not error:
        return None
    return '%s: %s' % (error.get('kind'), error.get('message'))


def _absence(txt, version):
    status = txt.get('status')
    if status == 'nxdomain':
        return 'the name does not exist (NXDOMAIN)'
    if status == 'nodata' or not txt.get('records'):
        return 'no TXT records'
    return 'no TXT record starts with %s' % version


def _chain(txt):
    return ' -> '.join([txt.get('name') or '?'] + list(txt.get('cname_chain') or []))


class _Evaluation(object):
    """The state of one evaluate() call; each _check_* method adds findings for one part of the facts."""

    def __init__(self, facts, desired, now):
        self.facts = facts
        self.domain = str(facts['domain']).lower().rstrip('.')
        self.desired = desired
        self.now = now
        self.findings = []
        self.record_id = None       # id of the one valid v=STSv1 record
        self.record_ok = False
        self.published = False      # whether senders may be applying a policy (see _gate)
        self.policy = None          # the served policy, when the fetch followed the rules and it parsed
        self.served_id = None       # policy_id of the served bytes
        self.fetch_ok = False
        self.rua = None
        self.mx = []

    def add(self, code, severity, message):
        self.findings.append({'code': code, 'severity': severity, 'message': message})

    def gate(self, severity):
        # Senders fetch a policy only after they see a v=STSv1 record (RFC 8461 §3.1, §5.1). With no
        # record, none expected and no DNS error hiding one, nothing about the policy can make mail
        # fail, so its problems are reported as info: a domain without MTA-STS is not in error.
        return severity if self.published else 'info'

    @property
    def mode(self):
        return self.policy['mode'] if self.policy else None

    @property
    def enforced(self):
        # Published, not valid: senders that cached the policy keep applying it after the record
        # breaks (RFC 8461 §5.1), so a broken record does not make an enforce policy harmless.
        return self.published and self.mode == 'enforce'

    # --- the _mta-sts record ---

    def check_sts_record(self):
        txt = self.facts['sts_txt']
        wants = any(key in self.desired for key in _STS_EXPECT_KEYS)
        self.published = bool(_managed(txt, STS_RECORD)) or wants or txt.get('status') == 'error'
        record = self.single_record(txt, _STS_RULES, 'error' if wants else 'info')
        if record is not None:
            self.record_id = record['id']
            self.record_ok = True

    # --- the policy fetch and the policy file ---

    def check_policy(self):
        fetch = self.facts.get('policy_fetch')
        if fetch is None:
            self.add('policy-not-fetched', 'info', 'the policy was not fetched, so the domain cannot be shown valid')
            return
        url = fetch.get('url') or 'https://mta-sts.%s/.well-known/mta-sts.txt' % self.domain
        version = fetch.get('tls_version')
        if version in OLD_TLS:
            self.add('policy-tls-old', self.gate('warning'),
                     '%s: negotiated %s; senders may refuse TLS below 1.2 (RFC 8996)' % (url, version))
        error = fetch.get('error')
        if error:
            code = 'policy-certificate-invalid' if error.get('kind') == 'certificate' else 'policy-fetch-failed'
            self.add(code, self.gate('error'), '%s: %s' % (url, _error_text(error)))
            return
        if not self.check_policy_certificate(url, fetch.get('certificate')):
            return
        status = fetch.get('status')
        if status is None:
            self.add('policy-fetch-failed', self.gate('error'), '%s: no HTTP response' % url)
            return
        if 300 <= status < 400 and fetch.get('location'):
            self.add('policy-redirect', self.gate('error'),
                     '%s: HTTP %d redirect to %s; senders do not follow redirects (RFC 8461 §3.3)' % (url, status, fetch['location']))
            return
        if status != 200:
            self.add('policy-http-status', self.gate('error'), '%s: HTTP %d; only 200 is a policy (RFC 8461 §3.3)' % (url, status))
            return
        content_type = fetch.get('content_type')
        media_type = (content_type or '').split(';')[0].strip().lower()
        if media_type != 'text/plain':
            self.add('policy-content-type', self.gate('warning'),
                     '%s: Content-Type is %s, not text/plain; senders may reject it (RFC 8461 §3.2)'
                     % (url, repr(content_type) if content_type else 'missing'))
        body = fetch.get('body') or b''
        if fetch.get('truncated') or len(body) > MAX_POLICY_BYTES:
            self.add('policy-too-large', self.gate('error'),
                     '%s: the policy is larger than 64 KiB; senders stop reading there (RFC 8461 §3.3)' % url)
            return
        try:
            self.policy = parse_policy(body)
        except ValidationError as exc:
            self.add('policy-invalid', self.gate('error'), '%s: %s' % (url, exc))
            return
        self.served_id = policy_id(body)
        self.fetch_ok = True

    def check_policy_certificate(self, url, certificate):
        """Expiry of the policy host certificate at ``now``; False when it has already expired."""
        days = self.days_left(certificate)
        if days is None or days >= EXPIRY_WARNING_DAYS:
            return True
        if days <= 0:
            self.add('policy-certificate-invalid', self.gate('error'),
                     '%s: the certificate expired at %s' % (url, certificate.get('not_after')))
            return False
        self.add('policy-certificate-expiring', self.gate('warning'),
                 '%s: the certificate expires at %s, in %.1f days' % (url, certificate.get('not_after'), days))
        return True

    def days_left(self, certificate):
        if not certificate or self.now is None:
            return None
        not_after = _utc(certificate.get('not_after'), None)
        if not_after is None:
            return None
        return (not_after - self.now).total_seconds() / ONE_DAY

    def check_advice(self):
        if not self.policy:
            return
        mode, max_age = self.policy['mode'], self.policy['max_age']
        if mode == 'testing':
            self.add('mode-testing', 'info', 'mode is testing: senders report failures (TLS-RPT) but still deliver')
        elif mode == 'none':
            # RFC 8461 §8.3: removal publishes mode none with a short max_age, so no max_age advice here.
            self.add('mode-none', 'info', 'mode is none: senders apply no MTA-STS restriction')
            return
        if max_age < ONE_DAY:
            self.add('max-age-short', self.gate('warning'),
                     'max_age %d is under a day (%d); the policy protects little against a downgrade between fetches' % (max_age, ONE_DAY))
        elif mode == 'enforce' and max_age < ONE_WEEK:
            self.add('max-age-short-enforce', self.gate('warning'),
                     'max_age %d is under a week (%d) in enforce mode; weeks or more are recommended (RFC 8461 §3.2)' % (max_age, ONE_WEEK))

    # --- MX hosts ---

    def mx_hosts(self):
        """The hosts mail goes to, as ``[(host, preference)]``, after the findings about the MX lookup itself."""
        lookup = self.facts['mx']
        status = lookup.get('status')
        if status == 'error':
            self.add('mx-lookup-failed', 'error', 'MX lookup for %s failed: %s' % (self.domain, lookup.get('error') or 'unknown error'))
            return []
        if status == 'nxdomain':
            self.add('mx-nxdomain', 'error', '%s does not exist (NXDOMAIN)' % self.domain)
            return []
        best = {}
        null = False
        for entry in lookup.get('hosts') or []:
            host = str(entry.get('host') or '').lower().rstrip('.')
            if not host:
                null = True
                continue
            preference = entry.get('preference')
            if host not in best or (preference is not None and (best[host] is None or preference < best[host])):
                best[host] = preference
        hosts = sorted(best.items(), key=lambda item: (item[1] if item[1] is not None else 65536, item[0]))
        if null:
            if hosts:
                self.add('mx-null', 'warning', 'a null MX is published beside other MX records (%s); RFC 7505 §3 forbids that'
                         % ', '.join(host for host, _preference in hosts))
            else:
                self.add('mx-null', 'info', 'null MX (RFC 7505): the domain accepts no mail')
            return hosts
        if not hosts:
            # RFC 5321 §5.1: with no MX records the domain itself is the MX, with preference 0.
            self.add('mx-none', 'info', '%s has no MX records; senders deliver to %s itself (implicit MX, RFC 5321 §5.1)'
                     % (self.domain, self.domain))
            hosts = [(self.domain, 0)]
        return hosts

    def check_mx(self):
        hosts = self.mx_hosts()
        patterns = self.policy['mx'] if self.policy else None
        checked = self.policy is not None and self.mode in ('enforce', 'testing')
        severity = self.gate('error' if self.mode == 'enforce' else 'warning')
        for host, preference in hosts:
            covered = matches_any(patterns, host) if patterns is not None else None
            self.mx.append({'host': host, 'preference': preference, 'covered': covered, 'starttls': None, 'tls_version': None,
                            'certificate_valid': None, 'names': None, 'not_after': None, 'error': None})
            if checked and not covered:
                self.add('mx-not-covered', severity,
                         'MX %s matches no mx pattern of the %s policy (%s); senders %s'
                         % (host, self.mode, ', '.join(patterns),
                            'refuse to deliver to it' if self.mode == 'enforce' else 'report failures for it'))
        if checked and hosts:
            for pattern in patterns:
                if not any(matches(pattern, host) for host, _preference in hosts):
                    self.add('mx-pattern-unused', 'info', 'mx pattern %s matches none of the MX hosts (%s)'
                             % (pattern, ', '.join(host for host, _preference in hosts)))
        probes = self.facts.get('mx_probes')
        if probes is not None:
            for entry in self.mx:
                probe = probes.get(entry['host'])
                if probe is not None:
                    self.check_probe(entry, probe)

    def check_probe(self, entry, probe):
        host = entry['host']
        error = probe.get('error')
        kind = error.get('kind') if error else None
        certificate = probe.get('certificate')
        # What an enforce sender does with this MX: refuses it (RFC 8461 §4.2, §5).
        refused = 'error' if self.enforced else 'warning'
        consequence = 'senders refuse this MX under the enforce policy' if self.enforced else 'senders would refuse it under enforce'
        entry.update(starttls=probe.get('starttls'), tls_version=probe.get('tls_version'), error=_error_text(error))
        if certificate:
            entry.update(certificate_valid=certificate.get('valid'), names=certificate.get('names'), not_after=certificate.get('not_after'))
        if kind == 'certificate' and entry['certificate_valid'] is None:
            entry['certificate_valid'] = False

        if probe.get('starttls') is False:
            self.add('mx-starttls-missing', refused, 'MX %s does not offer STARTTLS; %s' % (host, consequence))
        elif kind == 'tls':
            self.add('mx-tls-failed', refused, 'MX %s: TLS handshake failed (%s); %s' % (host, error.get('message'), consequence))
        elif entry['certificate_valid'] is False:
            reason = (certificate or {}).get('error') or (error or {}).get('message') or 'invalid certificate'
            self.add('mx-certificate-invalid', refused, 'MX %s: certificate not valid (%s); %s' % (host, reason, consequence))
            if entry['error'] is None:
                entry['error'] = 'certificate: %s' % reason
        elif error:
            # Port 25 is often blocked where the validator runs: a failure before EHLO says nothing about the MX.
            reached_tls = probe.get('starttls') is True
            self.add('mx-probe-failed', refused if reached_tls else 'warning', 'MX %s: probe failed (%s)%s'
                     % (host, _error_text(error), '; ' + consequence if reached_tls else '; its TLS could not be checked'))
        elif certificate and entry['certificate_valid']:
            days = self.days_left(certificate)
            if days is not None and days <= 0:
                entry['certificate_valid'] = False
                entry['error'] = 'certificate: expired at %s' % certificate.get('not_after')
                self.add('mx-certificate-invalid', refused, 'MX %s: certificate expired at %s; %s' % (host, certificate.get('not_after'), consequence))
            elif days is not None and days < EXPIRY_WARNING_DAYS:
                self.add('mx-certificate-expiring', 'warning',
                         'MX %s: certificate expires at %s, in %.1f days' % (host, certificate.get('not_after'), days))
        if probe.get('tls_version') in OLD_TLS:
            self.add('mx-tls-old', 'warning', 'MX %s negotiated %s; senders may refuse TLS below 1.2 (RFC 8996)' % (host, probe['tls_version']))

    # --- the _smtp._tls record ---

    def check_tlsrpt(self):
        if 'rua' in self.desired:
            missing = 'error'
        elif self.published and self.mode == 'testing':
            # Testing mode exists to collect TLS reports before enforcing; without TLS-RPT it shows nothing.
            missing = 'warning'
        else:
            missing = 'info'
        record = self.single_record(self.facts['tlsrpt_txt'], _TLSRPT_RULES, missing)
        if record is not None:
            self.rua = record['rua']

    def single_record(self, txt, rules, missing_severity):
        """The one valid record of ``rules.kind`` in a TXT lookup, parsed, or None; findings for everything else."""
        name = txt.get('name') or rules.label + '.' + self.domain
        values = _txt_values(txt)
        ours = [(text, count) for text, count in values if rules.kind.is_managed(text)]
        if txt.get('cname_chain'):
            self.add(rules.pick('sts-record-cname', 'tlsrpt-record-cname'), 'info', rules.cname_text % (name, _chain(txt)))
        for text, _count in values:
            if not rules.kind.is_managed(text) and rules.lookalike.match(text):
                self.add(rules.pick('sts-record-ignored', 'tlsrpt-record-ignored'), 'warning',
                         '%s: %r does not start with exactly "%s" (case and spacing matter), so senders ignore it'
                         % (name, text, rules.kind.version))
        if txt.get('status') == 'error':
            self.add(rules.pick('sts-dns-error', 'tlsrpt-dns-error'), 'error', '%s: TXT lookup failed: %s' % (name, txt.get('error') or 'unknown error'))
            return None
        if not ours:
            self.add(rules.pick('sts-record-missing', 'tlsrpt-record-missing'), missing_severity,
                     '%s: %s, so senders %s' % (name, _absence(txt, rules.kind.version), rules.missing_text))
            return None
        if len(ours) > 1:
            self.add(rules.pick('sts-record-multiple', 'tlsrpt-record-multiple'), 'error', '%s: %d %s records (%s); senders %s'
                     % (name, len(ours), rules.kind.version, '; '.join(repr(text) for text, _count in ours), rules.multiple_text))
            return None
        text, count = ours[0]
        try:
            record = rules.kind.parse(text)
        except ValidationError as exc:
            self.add(rules.pick('sts-record-invalid', 'tlsrpt-record-invalid'), 'error',
                     '%s: %r is invalid, so senders %s: %s' % (name, text, rules.invalid_text, exc))
            return None
        if count > 1:
            self.add(rules.pick('sts-record-multistring', 'tlsrpt-record-multistring'), 'info',
                     '%s: the record is %d character-strings; senders concatenate them to %r' % (name, count, text))
        return record

    # --- drift ---

    def drift(self):
        policy = self.policy or {}
        live = {'mode': policy.get('mode'), 'mx': policy.get('mx'), 'max_age': policy.get('max_age'),
                'id': self.record_id, 'policy': self.served_id, 'rua': self.rua}
        return [{'field': field, 'desired': desired, 'live': live[field]}
                for field, desired in self.desired.items() if _differs(field, desired, live[field])]


def evaluate(facts, expect=None, now=None):
    """One RESULT for one domain's FACTS, judged as a strict sending MTA would, plus drift from EXPECT.

    ``now`` (a datetime, naive meaning UTC, or an ISO 8601 string) is the time
    certificates are judged at; without it expiry is not checked. EXPECT, raw
    or as normalize_expect returned it, is validated (ValidationError) before
    anything is judged.
    """
    desired = normalize_expect(expect)
    now = _utc(now, 'now') if now is not None else None
    run = _Evaluation(facts, desired, now)
    run.check_sts_record()
    run.check_policy()
    run.check_advice()
    run.check_mx()
    run.check_tlsrpt()
    drift = run.drift()
    return {
        'domain': facts['domain'],
        # RFC 8461 rules only: advice and MX probes never change it.
        'valid': run.record_ok and run.fetch_ok,
        'in_sync': (not drift) if desired else None,
        'mode': run.mode,
        'id': run.record_id,
        'policy': run.policy,
        'records': {'sts': [text for text, _count in _txt_values(facts['sts_txt'])],
                    'tlsrpt': [text for text, _count in _txt_values(facts['tlsrpt_txt'])]},
        'mx': run.mx,
        'findings': run.findings,
        'drift': drift,
    }
