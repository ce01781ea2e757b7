"""The domains the validator is tested on: real Knot, nginx and Postfix on loopback, one domain per case.

Every name resolves through the lab's Knot; every ``mta-sts.<domain>`` is served by one nginx on
127.0.0.1:443; the MX hosts that get probed are Postfix listeners on 127.0.0.2x:25. A second Knot on
127.0.0.53 port 53 is the authoritative server of ``auth.example`` (NS records carry no port).
"""

import os

import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update

from tests.lab.knot import KnotLab
from tests.lab.mail import MailLab
from tests.lab.pki import LabCA
from tests.lab.web import PolicyWeb

WEB_ADDRESS = '127.0.0.1'
AUTH_ADDRESS = '127.0.0.53'


def policy_text(domain, mode='enforce', mx=None, max_age=604800, extra=None):
    lines = ['version: STSv1', 'mode: %s' % mode] + ['mx: %s' % pattern for pattern in (mx or ['mx1.' + domain])]
    lines.append('max_age: %d' % max_age)
    if extra:
        lines.append(extra)
    return ''.join(line + '\r\n' for line in lines)


# domain -> what the lab publishes and serves for it
CASES = {
    'good.example': {},
    'redirect.example': {'web': ('redirect', 'https://mta-sts.good.example/.well-known/mta-sts.txt')},
    'notfound.example': {'web': ('status', 404)},
    'error.example': {'web': ('status', 500)},
    'big.example': {'web': ('big', 70 * 1024)},
    'stall.example': {'web': ('stall',)},
    'html.example': {'content_type': 'text/html'},
    'wrongname.example': {'cert': 'wrong_name'},
    'expired.example': {'cert': 'expired'},
    'untrusted.example': {'cert': 'untrusted'},
    'twosts.example': {'sts': [['v=STSv1; id=one1;'], ['v=STSv1; id=two2;']]},
    'split.example': {'sts': [['v=STSv1; ', 'id=split1;']], 'tlsrpt': [['v=TLSRPTv1; ', 'rua=mailto:tlsrpt@split.example']]},
    'cname.example': {'sts_cname': '_mta-sts.good.example', 'tlsrpt_cname': '_smtp._tls.good.example'},
    'uncovered.example': {'mx': [(10, 'mx1.uncovered.example'), (20, 'backup.other.example')]},
    'wildcard.example': {'policy_mx': ['*.wildcard.example'], 'mx': [(10, 'a.b.wildcard.example')]},
    'nostarttls.example': {'mx': [(10, 'mx1.nostarttls.example')]},
    'mxmismatch.example': {'mx': [(10, 'mx1.mxmismatch.example')]},
    'testing.example': {'mode': 'testing', 'mx': [(10, 'mx1.mxmismatch.example')]},
    # A renewal that did not happen: both the policy host and the MX certificates end in a few days.
    'expiring.example': {'cert': 'expiring', 'mx': [(10, 'mx1.expiring.example')]},
    'oldtls.example': {'mx': [(10, 'mx1.oldtls.example')]},
    # UTF-8 in an extension value, served as plain "text/plain" (US-ASCII by default).
    'charset.example': {'extra': 'comment: caf\u00e9 cr\u00e8me'},
    'charsetok.example': {'extra': 'comment: caf\u00e9 cr\u00e8me', 'content_type': 'text/plain; charset=utf-8'},
    # The policy is served, but no record announces it (and no TLS-RPT either).
    'unannounced.example': {'sts': [], 'tlsrpt': []},
    'badsts.example': {'sts': [['v=STSv1; id=bad-id;'], ['v=stsv1; id=abc;']]},
    'badpolicy.example': {'body': 'version: STSv1\r\nmode: enforce\r\nmx: mx1.badpolicy.example\r\n'},
    'none.example': {'mode': 'none'},
    'maxage0.example': {'max_age': 0},
    'oneday.example': {'max_age': 86400},
    'nomx.example': {'mx': [], 'policy_mx': ['nomx.example']},
    'nullmx.example': {'mx': [(0, '')]},
    'tlsrptbad.example': {'tlsrpt': [['v=TLSRPTv1; rua=http://reports.example'], ['v=tlsrptv1; rua=mailto:x@tlsrptbad.example']]},
    'tlsrpttwo.example': {'tlsrpt': [['v=TLSRPTv1; rua=mailto:a@tlsrpttwo.example'], ['v=TLSRPTv1; rua=mailto:b@tlsrpttwo.example']]},
}
# Names the lab serves no zone for: Knot answers REFUSED (a DNS error), and a name that does not exist in a lab zone.
DNS_FAULTS = {
    'refused.test': 'REFUSED for every question',
    'gone.good.example': 'NXDOMAIN',
}
# MX host -> (Postfix listener address, kind)
MX_LISTENERS = {
    'mx1.good.example': ('127.0.0.21', 'good'),
    'mx1.nostarttls.example': ('127.0.0.22', 'no_starttls'),
    'mx1.mxmismatch.example': ('127.0.0.23', 'wrong_name'),
    'mx1.expiring.example': ('127.0.0.24', 'expiring'),
    'mx1.oldtls.example': ('127.0.0.25', 'old_tls'),
}


def _txt(strings):
    """One TXT record in zone-file form: its character-strings, each quoted."""
    return ' '.join('"%s"' % string for string in strings)


class ValidationLab:
    def __init__(self, workdir):
        self.workdir = workdir
        self.ca = LabCA()
        self.ca_path = os.path.join(workdir, 'lab-ca.pem')
        self.ca.write_bundle(self.ca_path)
        self.knot = KnotLab(os.path.join(workdir, 'knot'), list(CASES) + ['auth.example'])
        self.auth = KnotLab(os.path.join(workdir, 'auth'), ['auth.example'], address=AUTH_ADDRESS, port=53)
        self.web = PolicyWeb(os.path.join(workdir, 'web'), WEB_ADDRESS, 443, ca=self.ca)
        self.mail = MailLab(os.path.join(workdir, 'mail'), self.ca)
        self.policies = {}

    @property
    def nameservers(self):
        return ['%s:%d' % (self.knot.address, self.knot.port)]

    def start(self):
        self.knot.start()
        self.auth.start()
        for domain, case in CASES.items():
            self._publish(domain, case)
        self._publish_authoritative()
        for host, (address, kind) in MX_LISTENERS.items():
            self.mail.add_mx(address, kind, name=host)
        self.web.apply()
        self.mail.start()
        return self

    def stop(self):
        for server in (self.mail, self.web, self.auth, self.knot):
            try:
                server.stop()
            except Exception:  # pylint: disable=broad-exception-caught
                pass

    def _replace(self, knot, zone, name, rdtype, texts, ttl=300):
        update = dns.update.UpdateMessage(zone, keyring=knot.keyring, keyalgorithm=dns.tsig.HMAC_SHA256)
        update.delete(name + '.', rdtype)
        for text in texts:
            update.add(name + '.', ttl, rdtype, text)
        response = dns.query.tcp(update, knot.address, port=knot.port, timeout=5)
        assert response.rcode() == 0, response

    def _publish(self, domain, case):
        mode = case.get('mode', 'enforce')
        policy = case.get('body') or policy_text(domain, mode, case.get('policy_mx'), case.get('max_age', 604800), case.get('extra'))
        self.policies[domain] = policy
        from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id
        records = case['sts'] if 'sts' in case else [['v=STSv1; id=%s;' % (policy_id(policy) if 'body' not in case else 'bad1')]]
        if case.get('sts_cname'):
            self._replace(self.knot, domain, '_mta-sts.' + domain, 'CNAME', [case['sts_cname'] + '.'])
        else:
            self._replace(self.knot, domain, '_mta-sts.' + domain, 'TXT', [_txt(record) for record in records])
        tlsrpt = case['tlsrpt'] if 'tlsrpt' in case else [['v=TLSRPTv1; rua=mailto:tlsrpt@%s' % domain]]
        if case.get('tlsrpt_cname'):
            self._replace(self.knot, domain, '_smtp._tls.' + domain, 'CNAME', [case['tlsrpt_cname'] + '.'])
        else:
            self._replace(self.knot, domain, '_smtp._tls.' + domain, 'TXT', [_txt(record) for record in tlsrpt])
        self._replace(self.knot, domain, 'mta-sts.' + domain, 'A', [WEB_ADDRESS])
        mx = case['mx'] if 'mx' in case else [(10, 'mx1.' + domain)]
        # A host of '' is the null MX (RFC 7505): "0 ."
        self._replace(self.knot, domain, domain, 'MX', ['%d %s.' % (preference, host) for preference, host in mx])
        for _preference, host in mx:
            if host.endswith('.' + domain):
                address = MX_LISTENERS.get(host, ('127.0.0.29', None))[0]
                self._replace(self.knot, domain, host, 'A', [address])
        host = 'mta-sts.' + domain
        web = case.get('web', ('serve',))
        if web[0] == 'serve':
            self.web.serve(host, policy, content_type=case.get('content_type', 'text/plain'))
        elif web[0] == 'redirect':
            self.web.redirect(host, web[1])
        elif web[0] == 'status':
            self.web.status(host, web[1])
        elif web[0] == 'big':
            self.web.big(host, web[1])
        elif web[0] == 'stall':
            self.web.stall(host)
        if case.get('cert'):
            self.web.cert(host, case['cert'])

    def _publish_authoritative(self):
        """auth.example: the lab resolver has a stale id; the zone's own server on 127.0.0.53:53 the fresh one."""
        policy = policy_text('auth.example')
        self.policies['auth.example'] = policy
        self._replace(self.knot, 'auth.example', 'ns1.auth.example', 'A', [AUTH_ADDRESS])
        self._replace(self.knot, 'auth.example', '_mta-sts.auth.example', 'TXT', ['"v=STSv1; id=stale1;"'])
        for knot in (self.knot, self.auth):
            self._replace(knot, 'auth.example', 'mta-sts.auth.example', 'A', [WEB_ADDRESS])
        self._replace(self.auth, 'auth.example', 'ns1.auth.example', 'A', [AUTH_ADDRESS])
        self._replace(self.auth, 'auth.example', '_mta-sts.auth.example', 'TXT', ['"v=STSv1; id=fresh1;"'])
        self.web.serve('mta-sts.auth.example', policy)
