"""TLS-RPT aggregate reports (RFC 8460 section 4.4) as senders would mail them to a domain's ``rua``, as files.

Postfix 3.7 sends no TLS-RPT reports, so the demo writes the reports other senders would have sent about its
domains: one report a day per domain and sending organisation, over the last ``days`` full UTC days, each about
the domain's MTA-STS policy (its MX patterns), with so many successful sessions and, where the domain's MX fails
verification, failure details naming the MX host, its address and the result type.

``write_reports(directory, domains)`` writes them as ``<org>!<domain>!<begin>!<end>.json`` (the file name senders
use in their mail attachments) and returns the paths; ``report()`` is one report as a dict.
"""

import datetime
import json
import os

# Documentation addresses of the sending MTAs (RFC 5737).
SENDING_MTA_IP = '192.0.2.25'
ORGANIZATIONS = ('Lab Sender One', 'Lab Sender Two')


def _slug(organization):
    return organization.lower().replace(' ', '-')


def policy_string(policy):
    """The policy as the lines of its file (RFC 8460: ``policy-string``), from a dict as render_policy takes it."""
    return (['version: STSv1', 'mode: %s' % policy['mode']] + ['mx: %s' % mx for mx in policy['mx']]
            + ['max_age: %d' % policy['max_age']])


def report(domain, policy, day, successful, failures=(), organization=ORGANIZATIONS[0]):
    """One report about ``domain``'s ``policy`` (dict: mode, mx, max_age) for the UTC ``day`` (a date).

    ``failures``: ``[{'result-type', 'receiving-mx-hostname', 'receiving-ip', 'failed-session-count'}]``."""
    begin = datetime.datetime.combine(day, datetime.time(0, 0, 0))
    details = [dict(detail, **{'sending-mta-ip': SENDING_MTA_IP}) for detail in failures]
    return {
        'organization-name': organization,
        'date-range': {'start-datetime': begin.strftime('%Y-%m-%dT%H:%M:%SZ'),
                       'end-datetime': (begin + datetime.timedelta(seconds=86399)).strftime('%Y-%m-%dT%H:%M:%SZ')},
        'contact-info': 'tlsrpt@%s.invalid' % _slug(organization),
        'report-id': '%s_%s@%s' % (day.isoformat(), domain, _slug(organization)),
        'policies': [{
            'policy': {'policy-type': 'sts', 'policy-string': policy_string(policy), 'policy-domain': domain,
                       'mx-host': list(policy['mx'])},
            'summary': {'total-successful-session-count': successful,
                        'total-failure-session-count': sum(d['failed-session-count'] for d in details)},
            'failure-details': details,
        }],
    }


def write_reports(directory, domains, days=14, today=None):
    """Write the reports of the ``days`` full UTC days before ``today`` (default: now) into ``directory``.

    ``domains``: ``[{'domain', 'policy', 'successful' (sessions a day per organisation), 'failures' (as in
    ``report``, a day per organisation; optional)}]``. Returns the paths written, sorted."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    os.makedirs(directory, exist_ok=True)
    paths = []
    for item in domains:
        for back in range(1, days + 1):
            day = today - datetime.timedelta(days=back)
            for organization in ORGANIZATIONS:
                document = report(item['domain'], item['policy'], day, item['successful'], item.get('failures', ()),
                                  organization)
                begin = int(datetime.datetime.combine(day, datetime.time(0), datetime.timezone.utc).timestamp())
                name = '%s!%s!%d!%d.json' % (_slug(organization), item['domain'], begin,
                                             begin + 86399)
                path = os.path.join(directory, name)
                with open(path, 'w', encoding='utf-8') as handle:
                    json.dump(document, handle, indent=1)
                paths.append(path)
    return sorted(paths)
