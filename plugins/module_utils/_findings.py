# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The catalogue of the validator's finding codes.

Codes are public: each is documented in docs/findings.md, and one changes or
goes away only with a changelog fragment. A test checks that a real run of
the validator can produce every code listed here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

SEVERITIES = ('error', 'warning', 'info')

EXPIRY_WARNING_DAYS = 14

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
    'policy-fetch-failed': ('error; ' + _UNPUBLISHED, 'The HTTPS fetch of the policy failed (DNS, connection, timeout, TLS or HTTP).'),
    'policy-certificate-invalid': ('error; ' + _UNPUBLISHED, 'The policy host certificate is not valid for mta-sts.<domain>, expired or untrusted.'),
    'policy-certificate-expiring': ('warning; ' + _UNPUBLISHED, 'The policy host certificate expires within expiry_warning_days.'),
    'policy-redirect': ('error; ' + _UNPUBLISHED, 'The policy URL answers with a redirect, which senders never follow.'),
    'policy-http-status': ('error; ' + _UNPUBLISHED, 'The policy URL answers with an HTTP status other than 200.'),
    'policy-too-large': ('error; ' + _UNPUBLISHED, 'The policy is larger than 64 KiB.'),
    'policy-content-type': ('error; ' + _UNPUBLISHED, 'The policy is not served as text/plain, so strict senders ignore it.'),
    'policy-invalid': ('error; ' + _UNPUBLISHED, 'The policy file breaks the grammar.'),
    'policy-charset-missing': ('error; ' + _UNPUBLISHED,
                               'The policy has non-ASCII bytes but its Content-Type names no charset, so senders read it as ASCII and fail.'),
    'policy-unannounced': ('warning', 'A valid policy is served, but no v=STSv1 record announces it, so no sender fetches it.'),
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
    'mx-certificate-expiring': ('warning', 'An MX host certificate expires within expiry_warning_days.'),
    # DANE for the MX hosts (RFC 7672), with check_dane
    'dane-tlsa-missing': ('info', 'An MX host has no TLSA records: DANE senders deliver to it without DANE.'),
    'dane-no-match': ('error; warning when the TLSA records are not authenticated',
                      'No usable TLSA record of an MX host matches the certificate it serves: DANE senders defer mail to it.'),
    'dane-unsigned': ('warning', 'The TLSA records are not DNSSEC-authenticated, so DANE senders ignore them.'),
    'dane-resolver-not-validating': ('warning', 'The resolver asked does not validate DNSSEC, so the TLSA answers could not be judged.'),
    'dane-lookup-failed': ('error', 'The TLSA lookup failed (SERVFAIL, a bogus signature, timeout): DANE senders defer mail to the MX.'),
    'dane-unusable': ('warning', 'TLSA records that SMTP senders cannot use (usage 0 or 1, unknown selector or matching type).'),
    'dane-probe-failed': ('warning; error when the MX answered SMTP but TLS never came up and its TLSA records are usable',
                          'The STARTTLS probe got no certificate to match the TLSA records against.'),
    'dane-partial': ('warning', 'Only some MX hosts have usable TLSA records.'),
    'dane-sts-mismatch': ('warning', 'DANE and the MTA-STS policy disagree about an MX host.'),
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

# What a probe of a named MX host (the mx_tls_info module) can report: the probe's findings only.
PROBE_CODES = ('mx-probe-failed', 'mx-starttls-missing', 'mx-tls-failed', 'mx-certificate-invalid', 'mx-certificate-expiring')


def finding(code, severity, message):
    """One finding; the code must be in the catalogue and the severity one of SEVERITIES."""
    if code not in FINDINGS or severity not in SEVERITIES:
        raise ValueError('finding %s with severity %s is not in the catalogue' % (code, severity))
    return {'code': code, 'severity': severity, 'message': message}
