# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Findings and drift for one mail domain: the checks layer of the live validator.

Pure code: no I/O, no clock. The live-state layer gathers FACTS (the TXT lookups,
the MX lookup, the policy fetch and the MX probes, all done the way a strict
sending MTA does them); ``evaluate`` judges them, with an optional EXPECT
(desired state, see ``_expect``), into one RESULT with findings and drift.

Each ``judge_*`` function judges one part of the facts and returns its findings
with what it found. What a later step needs from an earlier one (whether a
policy is published, which policy was served) is passed to it as an argument.
Every finding code is in the catalogue (``_findings``) and docs/findings.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._expect import drift, normalize_expect, wants_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils._findings import EXPIRY_WARNING_DAYS, finding
from ansible_collections.mailsec.mta_sts.plugins.module_utils._mx import matches, matches_any
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import (
    is_sts_record, max_age_advice, parse_policy, parse_sts_record, policy_id,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import decode, encode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import judge_removal, usable
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt import is_tlsrpt_record, parse_tlsrpt_record

SECONDS_PER_DAY = 86400
MAX_POLICY_BYTES = 64 * 1024


class _RecordRules(object):
    """How one kind of TXT record is recognised and parsed, and how findings about it are worded."""

    def __init__(self, label, version, is_record, parse, lookalike, cname_text, missing_text, multiple_text, invalid_text):
        self.label = label
        self.version = version
        self.is_record = is_record
        self.parse = parse
        self.lookalike = re.compile(lookalike, re.IGNORECASE)
        self.cname_text = cname_text
        self.missing_text = missing_text
        self.multiple_text = multiple_text
        self.invalid_text = invalid_text

    def pick(self, sts_code, tlsrpt_code):
        # Both codes are written out at each call, so every finding code stays greppable in this file.
        return sts_code if self.label == '_mta-sts' else tlsrpt_code


# ``lookalike``: near misses of the version field ("v=stsv1", " v=STSv1", "v = STSv1"), almost always a typo.
STS_RULES = _RecordRules(
    '_mta-sts', 'v=STSv1', is_sts_record, parse_sts_record, r'\s*v\s*=\s*stsv', '%s is delegated by CNAME: %s',
    'see no MTA-STS policy', 'treat the domain as having no policy (RFC 8461 §3.1)', 'see no policy')
TLSRPT_RULES = _RecordRules(
    '_smtp._tls', 'v=TLSRPTv1', is_tlsrpt_record, parse_tlsrpt_record, r'\s*v\s*=\s*tlsrptv', '%s is a CNAME: %s',
    'send no TLS reports', 'send no reports (RFC 8460 §3)', 'send no reports')


# --- small helpers over FACTS ---

def _text(string):
    return string if isinstance(string, str) else bytes(string).decode('utf-8', 'replace')


def txt_values(txt):
    """Each TXT record at the name as ``(joined text, number of character-strings)``."""
    values = []
    for strings in txt.get('records') or []:
        if isinstance(strings, (str, bytes)):
            strings = [strings]
        values.append((''.join(_text(string) for string in strings), len(strings)))
    return values


def utc(value, field):
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


def _gate(published, severity):
    # Senders fetch a policy only after they see a v=STSv1 record (RFC 8461 §3.1, §5.1). With no
    # record, none expected and no DNS error hiding one, nothing about the policy can make mail
    # fail, so its problems are reported as info: a domain without MTA-STS is not in error.
    return severity if published else 'info'


def days_left(certificate, now):
    """Days until the certificate's not_after at ``now``; None when either is unknown."""
    if not certificate or now is None:
        return None
    not_after = utc(certificate.get('not_after'), None)
    if not_after is None:
        return None
    return (not_after - now).total_seconds() / SECONDS_PER_DAY


def _media_type(content_type):
    """``(media type, charset or None)`` of a Content-Type header value."""
    parts = (content_type or '').split(';')
    charset = None
    for parameter in parts[1:]:
        name, _sep, value = parameter.partition('=')
        if name.strip().lower() == 'charset':
            charset = value.strip().strip('"').lower() or None
    return parts[0].strip().lower(), charset


# --- the TXT records ---

def has_record(txt, rules):
    """Whether any TXT value of a lookup is a record of ``rules``' kind (valid or not)."""
    return any(rules.is_record(text) for text, _count in txt_values(txt))


def judge_record(txt, rules, missing_severity, domain):
    """``(findings, the one valid record parsed or None)`` for one TXT lookup of ``rules``' kind."""
    findings = []
    name = txt.get('name') or rules.label + '.' + domain
    values = txt_values(txt)
    ours = [(text, count) for text, count in values if rules.is_record(text)]
    if txt.get('cname_chain'):
        findings.append(finding(rules.pick('sts-record-cname', 'tlsrpt-record-cname'), 'info', rules.cname_text % (name, _chain(txt))))
    for text, _count in values:
        if not rules.is_record(text) and rules.lookalike.match(text):
            findings.append(finding(rules.pick('sts-record-ignored', 'tlsrpt-record-ignored'), 'warning',
                                    '%s: %r does not start with exactly "%s" (case and spacing matter), so senders ignore it'
                                    % (name, text, rules.version)))
    if txt.get('status') == 'error':
        findings.append(finding(rules.pick('sts-dns-error', 'tlsrpt-dns-error'), 'error',
                                '%s: TXT lookup failed: %s' % (name, txt.get('error') or 'unknown error')))
        return findings, None
    if not ours:
        findings.append(finding(rules.pick('sts-record-missing', 'tlsrpt-record-missing'), missing_severity,
                                '%s: %s, so senders %s' % (name, _absence(txt, rules.version), rules.missing_text)))
        return findings, None
    if len(ours) > 1:
        findings.append(finding(rules.pick('sts-record-multiple', 'tlsrpt-record-multiple'), 'error', '%s: %d %s records (%s); senders %s'
                                % (name, len(ours), rules.version, '; '.join(repr(text) for text, _count in ours), rules.multiple_text)))
        return findings, None
    text, count = ours[0]
    try:
        record = rules.parse(text)
    except ValidationError as exc:
        findings.append(finding(rules.pick('sts-record-invalid', 'tlsrpt-record-invalid'), 'error',
                                '%s: %r is invalid, so senders %s: %s' % (name, text, rules.invalid_text, exc)))
        return findings, None
    if count > 1:
        findings.append(finding(rules.pick('sts-record-multistring', 'tlsrpt-record-multistring'), 'info',
                                '%s: the record is %d character-strings; senders concatenate them to %r' % (name, count, text)))
    return findings, record


# --- the policy fetch and the policy file ---

def judge_policy_fetch(fetch, domain, published, now, warning_days):
    """``(findings, the served policy parsed or None, policy_id of the served bytes or None)``.

    The policy is returned only when a strict sender would accept it: the first
    step a sender fails ends the judgement, as it ends the sender's fetch.
    """
    findings = []
    url = fetch.get('url') or 'https://mta-sts.%s/.well-known/mta-sts.txt' % domain

    def fail(code, message, severity='error'):
        findings.append(finding(code, _gate(published, severity), '%s: %s' % (url, message)))
        return findings, None, None

    error = fetch.get('error')
    if error:
        return fail('policy-certificate-invalid' if error.get('kind') == 'certificate' else 'policy-fetch-failed', _error_text(error))
    certificate = fetch.get('certificate')
    days = days_left(certificate, now)
    if days is not None and days <= 0:
        return fail('policy-certificate-invalid', 'the certificate expired at %s' % certificate.get('not_after'))
    if days is not None and days < warning_days:
        findings.append(finding('policy-certificate-expiring', _gate(published, 'warning'), '%s: the certificate expires at %s, in %.1f days'
                                % (url, certificate.get('not_after'), days)))
    status = fetch.get('status')
    if status is None:
        return fail('policy-fetch-failed', 'no HTTP response')
    if 300 <= status < 400 and fetch.get('location'):
        return fail('policy-redirect', 'HTTP %d redirect to %s; senders do not follow redirects (RFC 8461 §3.3)' % (status, fetch['location']))
    if status != 200:
        return fail('policy-http-status', 'HTTP %d; only 200 is a policy (RFC 8461 §3.3)' % status)
    content_type = fetch.get('content_type')
    media_type, charset = _media_type(content_type)
    if media_type != 'text/plain':
        # RFC 8461 §3.2: senders SHOULD check the media type, and strict ones (postfix-mta-sts-resolver) drop the policy.
        return fail('policy-content-type', 'Content-Type is %s, not text/plain; strict senders ignore the policy (RFC 8461 §3.2)'
                    % (repr(content_type) if content_type else 'missing'))
    body = fetch.get('body') or b''
    if fetch.get('truncated') or len(body) > MAX_POLICY_BYTES:
        return fail('policy-too-large', 'the policy is larger than 64 KiB; senders stop reading there (RFC 8461 §3.3)')
    try:
        policy = parse_policy(body)
    except ValidationError as exc:
        return fail('policy-invalid', str(exc))
    if charset in (None, 'us-ascii', 'ascii') and any(byte > 0x7f for byte in bytearray(body)):
        # text/plain without a charset is US-ASCII (RFC 2046 §4.1.2), and strict senders decode it so.
        return fail('policy-charset-missing', 'the policy has non-ASCII (UTF-8) bytes but Content-Type %r names no UTF-8 charset; '
                    'senders that decode it as ASCII (postfix-mta-sts-resolver) reject it: serve it as text/plain; charset=utf-8'
                    % content_type)
    return findings, policy, policy_id(body)


def judge_unannounced(policy, published, domain):
    """A valid policy that no record announces is fetched by no one; a first rollout passes through this on purpose."""
    if policy is None or published:
        return []
    return [finding('policy-unannounced', 'warning', 'a valid policy is served at mta-sts.%s, but _mta-sts.%s has no v=STSv1 record, '
                    'so no sender fetches it: publish the record, or stop serving the policy' % (domain, domain))]


def judge_advice(policy, published):
    findings = []
    if not policy:
        return findings
    mode, max_age = policy['mode'], policy['max_age']
    if mode == 'testing':
        findings.append(finding('mode-testing', 'info', 'mode is testing: senders report failures (TLS-RPT) but still deliver'))
    elif mode == 'none':
        # RFC 8461 §8.3: removal publishes mode none with a short max_age, so no max_age advice here.
        findings.append(finding('mode-none', 'info', 'mode is none: senders apply no MTA-STS restriction'))
        return findings
    # The same thresholds and words as the record modules' warning.
    advice = max_age_advice(mode, max_age)
    if advice:
        findings.append(finding(advice[0], _gate(published, 'warning'), advice[1]))
    return findings


# --- MX hosts ---

def judge_mx_lookup(lookup, domain):
    """``(findings, [(host, preference)])``: the hosts mail goes to, lowest preference first."""
    status = lookup.get('status')
    if status == 'error':
        return [finding('mx-lookup-failed', 'error', 'MX lookup for %s failed: %s' % (domain, lookup.get('error') or 'unknown error'))], []
    if status == 'nxdomain':
        return [finding('mx-nxdomain', 'error', '%s does not exist (NXDOMAIN)' % domain)], []
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
            return [finding('mx-null', 'warning', 'a null MX is published beside other MX records (%s); RFC 7505 §3 forbids that'
                            % ', '.join(host for host, _preference in hosts))], hosts
        return [finding('mx-null', 'info', 'null MX (RFC 7505): the domain accepts no mail')], hosts
    if not hosts:
        # RFC 5321 §5.1: with no MX records the domain itself is the MX, with preference 0.
        return [finding('mx-none', 'info', '%s has no MX records; senders deliver to %s itself (implicit MX, RFC 5321 §5.1)'
                        % (domain, domain))], [(domain, 0)]
    return [], hosts


def judge_coverage(hosts, policy, published):
    """``(findings, mx entries)``: each host matched against the policy's mx patterns."""
    findings = []
    patterns = policy['mx'] if policy else None
    mode = policy['mode'] if policy else None
    checked = mode in ('enforce', 'testing')
    severity = _gate(published, 'error' if mode == 'enforce' else 'warning')
    entries = []
    for host, preference in hosts:
        covered = matches_any(patterns, host) if patterns is not None else None
        entries.append({'host': host, 'preference': preference, 'covered': covered, 'starttls': None, 'tls_version': None,
                        'certificate_valid': None, 'names': None, 'not_after': None, 'error': None})
        if checked and not covered:
            findings.append(finding('mx-not-covered', severity, 'MX %s matches no mx pattern of the %s policy (%s); senders %s'
                                    % (host, mode, ', '.join(patterns),
                                       'refuse to deliver to it' if mode == 'enforce' else 'report failures for it')))
    if checked and hosts:
        for pattern in patterns:
            if not any(matches(pattern, host) for host, _preference in hosts):
                findings.append(finding('mx-pattern-unused', 'info', 'mx pattern %s matches none of the MX hosts (%s)'
                                        % (pattern, ', '.join(host for host, _preference in hosts))))
    return findings, entries


def judge_probe(host, probe, enforced, now, warning_days):
    """``(findings, probe fields of the host's mx entry)`` for one STARTTLS probe.

    ``enforced``: whether senders apply an enforce policy to this host, so they refuse it on a TLS fault.
    """
    findings = []
    error = probe.get('error')
    kind = error.get('kind') if error else None
    certificate = probe.get('certificate')
    # What an enforce sender does with this MX: refuses it (RFC 8461 §4.2, §5).
    refused = 'error' if enforced else 'warning'
    consequence = 'senders refuse this MX under the enforce policy' if enforced else 'senders would refuse it under enforce'
    fields = {'starttls': probe.get('starttls'), 'tls_version': probe.get('tls_version'), 'error': _error_text(error),
              'certificate_valid': None, 'names': None, 'not_after': None}
    if certificate:
        fields.update(certificate_valid=certificate.get('valid'), names=certificate.get('names'), not_after=certificate.get('not_after'))
    if kind == 'certificate' and fields['certificate_valid'] is None:
        fields['certificate_valid'] = False

    if probe.get('starttls') is False:
        findings.append(finding('mx-starttls-missing', refused, 'MX %s does not offer STARTTLS; %s' % (host, consequence)))
    elif kind == 'tls':
        findings.append(finding('mx-tls-failed', refused, 'MX %s: TLS handshake failed (%s); %s' % (host, error.get('message'), consequence)))
    elif fields['certificate_valid'] is False:
        reason = (certificate or {}).get('error') or (error or {}).get('message') or 'invalid certificate'
        findings.append(finding('mx-certificate-invalid', refused, 'MX %s: certificate not valid (%s); %s' % (host, reason, consequence)))
        if fields['error'] is None:
            fields['error'] = 'certificate: %s' % reason
    elif error:
        # Port 25 is often blocked where the validator runs: a failure before EHLO says nothing about the MX.
        reached_tls = probe.get('starttls') is True
        findings.append(finding('mx-probe-failed', refused if reached_tls else 'warning', 'MX %s: probe failed (%s)%s'
                                % (host, _error_text(error), '; ' + consequence if reached_tls else '; its TLS could not be checked')))
    elif certificate and fields['certificate_valid']:
        days = days_left(certificate, now)
        if days is not None and days <= 0:
            fields['certificate_valid'] = False
            fields['error'] = 'certificate: expired at %s' % certificate.get('not_after')
            findings.append(finding('mx-certificate-invalid', refused, 'MX %s: certificate expired at %s; %s'
                                    % (host, certificate.get('not_after'), consequence)))
        elif days is not None and days < warning_days:
            findings.append(finding('mx-certificate-expiring', 'warning', 'MX %s: certificate expires at %s, in %.1f days'
                                    % (host, certificate.get('not_after'), days)))
    return findings, fields


# --- DANE (RFC 7672): each MX host's TLSA records, matched against the chain it serves ---

def _tlsa_values(records):
    """``(usable canonical values, the unusable records as given)`` of TLSA records given as "u s m hex"."""
    values, unusable = [], []
    for text in records or []:
        try:
            value = decode('TLSA', text)
        except ValueError:
            value = None   # a malformed record (say, a SHA-256 of the wrong length) is unusable too (RFC 7672 §3.1.3)
        if value is not None and usable(value):
            values.append(value)
        else:
            unusable.append(text)
    return values, unusable


def judge_dane(host, tlsa, probe, resolver_validates):
    """``(findings, the dane fields of the host's mx entry)`` for one MX host's TLSA lookup and STARTTLS probe.

    ``resolver_validates``: whether the resolver that answered validates DNSSEC (None: not known, as when the
    zone's authoritative servers were asked). A DANE sender uses TLSA records only from an authenticated answer
    (RFC 7672 §2.2); records known not to be (unsigned, or a validating resolver gave no AD bit) are judged as
    such a sender sees them: ignored.
    """
    name = tlsa.get('name') or '_25._tcp.' + host
    status = tlsa.get('status')
    records = list(tlsa.get('records') or [])
    fields = {'name': name, 'status': status, 'records': records, 'authenticated': bool(tlsa.get('authenticated')),
              'signed': bool(tlsa.get('signed')), 'usable': False, 'matched': None, 'served_spki_sha256': None,
              'error': tlsa.get('error')}
    if status == 'error':
        return [finding('dane-lookup-failed', 'error', '%s: the TLSA lookup failed (%s); a DANE sender cannot tell whether MX %s '
                        'has TLSA records and defers mail to it (RFC 7672 §2.2)' % (name, tlsa.get('error') or 'unknown error', host))], fields
    if not records:
        return [finding('dane-tlsa-missing', 'info', '%s: no TLSA records (%s); DANE senders deliver to MX %s without DANE'
                        % (name, 'NXDOMAIN' if status == 'nxdomain' else 'no data', host))], fields
    findings = []
    values, unusable = _tlsa_values(records)
    fields['usable'] = bool(values)
    insecure = not fields['authenticated'] and (not fields['signed'] or resolver_validates is True)
    if insecure:
        why = ('signed, but the validating resolver did not authenticate them (no chain of trust from the root: '
               'is the DS record at the parent zone missing?)' if fields['signed'] else 'not DNSSEC-signed')
        findings.append(finding('dane-unsigned', 'warning', '%s: the TLSA records are %s; DANE senders ignore TLSA records that '
                                'are not authenticated (RFC 7672 §2.2), so these protect nothing' % (name, why)))
    if unusable:
        findings.append(finding('dane-unusable', 'warning', '%s: %s unusable for SMTP (a DANE sender takes usage 2 or 3, selector 0 '
                                'or 1, matching type 0, 1 or 2 of the right length; RFC 7672 §3.1.3); %s'
                                % (name, ', '.join(repr(text) for text in unusable), 'DANE senders ignore them and use the others'
                                   if values else 'with no usable record DANE senders require TLS but authenticate nothing')))
    if not values or probe is None:
        return findings, fields
    # The serving check of tlsa_record judges the same facts: nothing removed, every value kept.
    serving = judge_removal([], values, probe)[0]
    fields.update(matched=None if serving['error'] else serving['matched'], served_spki_sha256=serving['served_spki_sha256'])
    wanted = ', '.join(encode('TLSA', value) for value in values)
    if serving['error']:
        # The MX answered SMTP but TLS never came up: a DANE sender, which requires it, defers.
        defers = probe.get('starttls') is not None and not insecure
        findings.append(finding('dane-probe-failed', 'error' if defers else 'warning', 'MX %s: the TLSA records (%s) could not be '
                                'matched: %s; %s' % (host, wanted, serving['error'], 'DANE senders require TLS and defer mail to it'
                                                     if defers else 'the certificate it serves is unknown')))
    elif not serving['matched']:
        findings.append(finding('dane-no-match', 'warning' if insecure else 'error', 'MX %s serves a certificate that none of its '
                                'usable TLSA records (%s) match (the key served is 3 1 1 %s); %s'
                                % (host, wanted, serving['served_spki_sha256'], 'DANE senders would defer mail to it once the '
                                   'records are authenticated' if insecure else 'DANE senders defer mail to it (RFC 7672 §2.2, §3)')))
    return findings, fields


def judge_dane_agreement(entries, mode, published, resolver_problems):
    """The findings about DANE across a domain's MX hosts (``entries`` with their ``dane`` fields): the resolver that
    could not tell authenticated answers, DANE on only some MX hosts, and MX hosts DANE and the policy disagree on."""
    findings = []
    # A host whose lookup failed has its own error; whether it has records is not known.
    judged = [entry for entry in entries if entry.get('dane') is not None and entry['dane']['status'] != 'error']
    with_records = [entry['host'] for entry in judged if entry['dane']['records']]
    if resolver_problems and with_records:
        findings.append(finding('dane-resolver-not-validating', 'warning', 'whether the TLSA records of %s are authenticated is '
                                'unknown, because the resolver asked does not validate DNSSEC: %s'
                                % (', '.join(with_records), '; '.join(resolver_problems))))
    dane = [entry['host'] for entry in judged if entry['dane']['usable']]
    if not dane:
        return findings
    checked = published and mode in ('enforce', 'testing')
    without = []
    for entry in judged:
        if entry['dane']['usable']:
            if checked and entry.get('covered') is False:
                findings.append(finding('dane-sts-mismatch', 'warning', 'MX %s has usable TLSA records but matches no mx pattern of '
                                        'the %s policy: DANE senders deliver to it, MTA-STS senders %s' % (
                                            entry['host'], mode, 'refuse it' if mode == 'enforce' else 'report failures for it')))
        elif published and mode == 'enforce' and entry.get('covered'):
            findings.append(finding('dane-sts-mismatch', 'warning', 'MX %s is covered by the enforce policy but has no usable TLSA '
                                    'records, while %s %s: DANE senders, which prefer DANE to MTA-STS (RFC 8461 §2), deliver to it '
                                    'with unauthenticated TLS' % (entry['host'], ', '.join(dane), 'has' if len(dane) == 1 else 'have')))
        else:
            without.append(entry['host'])
    if without:
        findings.append(finding('dane-partial', 'warning', 'only some MX hosts have usable TLSA records (%s); %s %s none, so DANE '
                                'senders deliver to %s with unauthenticated TLS (RFC 7672 §2.2)' % (
                                    ', '.join(dane), ', '.join(without), 'has' if len(without) == 1 else 'have',
                                    'it' if len(without) == 1 else 'them')))
    return findings


def judge_tlsrpt(txt, desired, published, mode, domain):
    """``(findings, the published rua or None)``."""
    if 'rua' in desired:
        missing = 'error'
    elif published and mode == 'testing':
        # Testing mode exists to collect TLS reports before enforcing; without TLS-RPT it shows nothing.
        missing = 'warning'
    else:
        missing = 'info'
    findings, record = judge_record(txt, TLSRPT_RULES, missing, domain)
    return findings, record['rua'] if record else None


def _check_window(warning_days):
    if isinstance(warning_days, bool) or not isinstance(warning_days, int) or warning_days < 0:
        raise ValidationError('expiry_warning_days', warning_days, 'must be a whole number of days, 0 or more')
    return warning_days


def evaluate(facts, expect=None, now=None, expiry_warning_days=EXPIRY_WARNING_DAYS):
    """One RESULT for one domain's FACTS, judged as a strict sending MTA would, plus drift from EXPECT.

    ``now`` (a datetime, naive meaning UTC, or an ISO 8601 string) is the time
    certificates are judged at; without it expiry is not checked. A certificate
    that expires in less than ``expiry_warning_days`` gets a warning. EXPECT,
    raw or as normalize_expect returned it, is validated (ValidationError)
    before anything is judged.
    """
    desired = normalize_expect(expect)
    now = utc(now, 'now') if now is not None else None
    warning_days = _check_window(expiry_warning_days)
    domain = str(facts['domain']).lower().rstrip('.')
    sts_txt = facts['sts_txt']
    wants = wants_policy(desired)
    announced = has_record(sts_txt, STS_RULES)
    # Whether senders may be applying a policy: a record is there (valid or not: senders that cached the
    # policy keep applying it after the record breaks, RFC 8461 §5.1), one is expected, or DNS hides it.
    published = announced or wants or sts_txt.get('status') == 'error'

    findings, record = judge_record(sts_txt, STS_RULES, 'error' if wants else 'info', domain)
    fetch_findings, policy, served_id = judge_policy_fetch(facts['policy_fetch'], domain, published, now, warning_days)
    findings += fetch_findings
    findings += judge_unannounced(policy, published, domain)
    findings += judge_advice(policy, published)
    mode = policy['mode'] if policy else None
    lookup_findings, hosts = judge_mx_lookup(facts['mx'], domain)
    findings += lookup_findings
    coverage_findings, mx = judge_coverage(hosts, policy, published)
    findings += coverage_findings
    probes = facts.get('mx_probes')
    if probes is not None:
        enforced = published and mode == 'enforce'
        for entry in mx:
            if probes.get(entry['host']) is not None:
                probe_findings, fields = judge_probe(entry['host'], probes[entry['host']], enforced, now, warning_days)
                findings += probe_findings
                entry.update(fields)
    dane = facts.get('dane')
    if dane is not None:
        resolver = dane.get('resolver') or {}
        for entry in mx:
            tlsa = (dane.get('tlsa') or {}).get(entry['host'])
            entry['dane'] = None
            if tlsa is not None:
                dane_findings, entry['dane'] = judge_dane(entry['host'], tlsa, (probes or {}).get(entry['host']), resolver.get('validates'))
                findings += dane_findings
        findings += judge_dane_agreement(mx, mode, published, resolver.get('problems'))
    tlsrpt_findings, rua = judge_tlsrpt(facts['tlsrpt_txt'], desired, published, mode, domain)
    findings += tlsrpt_findings

    policy_fields = policy or {}
    live = {'mode': mode, 'mx': policy_fields.get('mx'), 'max_age': policy_fields.get('max_age'),
            'id': record['id'] if record else None, 'policy': served_id, 'rua': rua,
            'state': 'present' if announced or has_record(facts['tlsrpt_txt'], TLSRPT_RULES) else 'absent'}
    differences = drift(desired, live)
    return {
        'domain': facts['domain'],
        # RFC 8461 rules only: advice and MX probes never change it.
        'valid': record is not None and policy is not None,
        'in_sync': (not differences) if desired else None,
        'mode': mode,
        'id': live['id'],
        'policy': policy,
        'records': {'sts': [text for text, _count in txt_values(sts_txt)],
                    'tlsrpt': [text for text, _count in txt_values(facts['tlsrpt_txt'])]},
        'mx': mx,
        # The policy host's certificate as the fetch saw it (null when no handshake completed): its expiry for reports.
        'policy_certificate': (facts['policy_fetch'] or {}).get('certificate'),
        'findings': findings,
        'drift': differences,
    }


def probe_result(host, probe, now=None, expiry_warning_days=EXPIRY_WARNING_DAYS):
    """The probe of a named host judged as an MX under an enforce policy: its facts and findings."""
    findings, fields = judge_probe(host, probe, True, utc(now, 'now') if now is not None else None, _check_window(expiry_warning_days))
    return dict(fields, host=host, addresses=probe.get('addresses') or [], findings=findings)
