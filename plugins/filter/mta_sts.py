# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Jinja2 filters over the pure MTA-STS / TLS-RPT core; documented in the .yml files next to this one."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _acme, _mx, _policy, _tlsrpt, _tlsrpt_report, _tlsrpt_summary
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _drift_report
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _rollout
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _tlsa_rollover
from ansible_collections.mailsec.mta_sts.plugins.module_utils import _tlsa
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import encode as encode_record
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError


def _plain(value):
    """Templated data as plain dicts/lists, so the core's type checks see what the user wrote."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, Mapping):
        return dict((key, _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _wrap(function):
    def filter_function(*args, **kwargs):
        try:
            return function(*[_plain(arg) for arg in args], **dict((name, _plain(value)) for name, value in kwargs.items()))
        except ValidationError as exc:
            raise AnsibleFilterError(str(exc))
    filter_function.__name__ = function.__name__
    filter_function.__doc__ = function.__doc__
    return filter_function


def render_policy(policy):
    """``policy | render_policy``: the canonical policy text, with a warning for a short max_age."""
    text = _policy.render_policy(policy)
    parsed = _policy.parse_policy(text)
    advice = _policy.max_age_advice(parsed['mode'], parsed['max_age'])
    if advice:
        Display().warning('render_policy: %s' % advice[1])
    return text


def tlsa_data(pem, usage=3, selector=1, matching_type=1):
    """``pem | tlsa_data(usage=3, selector=1, matching_type=1)``: the TLSA record data, "3 1 1 <hex>"."""
    usage, selector, matching_type = _tlsa.check_parameters(usage, selector, matching_type, 'tlsa_data')
    material = _tlsa.load_material(pem, 'tlsa_data input')
    try:
        value = _tlsa.tlsa_value(material, usage, selector, matching_type)
    except ValidationError as exc:
        raise ValidationError('tlsa_data.selector', selector, exc.rule)
    return encode_record('TLSA', value)


def mx_match(host, patterns):
    """``host | mx_match(pattern_or_list)``: whether an MX host is covered by the patterns."""
    return _mx.matches_any(patterns, host)


def parse_tlsrpt_report(report, max_report_size=_tlsrpt_report.DEFAULT_MAX_BYTES):
    """``report | parse_tlsrpt_report``: one normalised TLS-RPT report; the option is named as the module's."""
    if not isinstance(max_report_size, int) or isinstance(max_report_size, bool) or max_report_size < 1:
        raise ValidationError('max_report_size', max_report_size, 'must be a positive integer (bytes)')
    return _tlsrpt_report.parse_report(report, max_bytes=max_report_size)


def tlsrpt_enforce_gate(summary, domain, policy, min_sessions=_tlsrpt_summary.DEFAULT_MIN_SESSIONS,
                        days=_tlsrpt_summary.DEFAULT_DAYS, max_failure_rate=_tlsrpt_summary.DEFAULT_MAX_FAILURE_RATE,
                        forbidden_result_types=_tlsrpt_summary.DEFAULT_FORBIDDEN_RESULT_TYPES, now=None):
    """``summary | tlsrpt_enforce_gate(domain, policy, ...)``: the gate's verdict; ``now`` defaults to the clock."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    return _tlsrpt_summary.enforce_gate(summary, domain, policy, min_sessions, days, max_failure_rate,
                                        forbidden_result_types, now, option='tlsrpt_enforce_gate',
                                        policy_field='tlsrpt_enforce_gate.policy')


def _utc_now(now):
    # The clock is read here, at the edge: the core takes the time as an argument.
    return datetime.datetime.now(datetime.timezone.utc) if now is None else now


# ``format`` is the option's public name (drift_report.yml); the builtin is not used here.
def drift_report(results, format='json', tlsrpt=None, now=None,  # pylint: disable=redefined-builtin
                 expiry_days=_drift_report.EXPIRY_WARNING_DAYS):
    """``results | drift_report(format)``: the drift check's report as JSON, JUnit XML, Markdown or a short text table."""
    return _drift_report.render(results, format, tlsrpt, _utc_now(now), expiry_days)


def drift_failures(results, expiry_days=_drift_report.EXPIRY_WARNING_DAYS, now=None):
    """``results | drift_failures``: one sentence per failed check of each domain; empty when all pass."""
    return _drift_report.failures(_drift_report.build_report(results, _utc_now(now), None, expiry_days))


def tlsa_rollover(entry, wanted, observed, now=None, host=None):
    """``entry | tlsa_rollover(wanted, observed)``: the next safe step of an MX host's TLSA rollover."""
    return _tlsa_rollover.rollover_step(entry, wanted, observed, _utc_now(now), host)


class FilterModule(object):

    def filters(self):
        return {
            'parse_policy': _wrap(_policy.parse_policy),
            'parse_sts_record': _wrap(_policy.parse_sts_record),
            'parse_tlsrpt_record': _wrap(_tlsrpt.parse_tlsrpt_record),
            'parse_tlsrpt_report': _wrap(parse_tlsrpt_report),
            'render_policy': _wrap(render_policy),
            'policy_id': _wrap(_policy.policy_id),
            'mx_match': _wrap(mx_match),
            'acme_certificate_groups': _wrap(_acme.plan_certificate_groups),
            'tlsrpt_summary': _wrap(_tlsrpt_summary.summarize),
            'tlsrpt_markdown': _wrap(_tlsrpt_summary.render_markdown),
            'tlsrpt_enforce_gate': _wrap(tlsrpt_enforce_gate),
            'mta_sts_state_update': _wrap(_rollout.update_state),
            'mta_sts_live_policy': _wrap(_rollout.live_policy),
            'mta_sts_enforce_gate': _wrap(_rollout.enforce_gate),
            'mta_sts_mx_change': _wrap(_rollout.mx_change),
            'mta_sts_retirement': _wrap(_rollout.retirement),
            'mta_sts_plan': _wrap(_rollout.build_plan),
            'drift_report': _wrap(drift_report),
            'drift_failures': _wrap(drift_failures),
            'tlsa_rollover': _wrap(tlsa_rollover),
            'tlsa_data': _wrap(tlsa_data),
        }
