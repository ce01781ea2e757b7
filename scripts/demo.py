"""make demo: the collection's rollout on real servers, in a network namespace of its own, no cloud credentials.

The lab (all on the namespace's own loopback; nothing on the machine changes):
- Knot DNS on 127.0.0.1:53 with the zones of three demo domains, updated with TSIG, and the namespace's
  resolver (a lab /etc/resolv.conf names it), so Postfix, the MTA-STS resolver and the collection all see it;
- nginx, configured by the ``policy_host`` role, serving https://mta-sts.<domain>/ on 127.0.0.1:443;
- a Postfix configured by the ``postfix`` role, with postfix-mta-sts-resolver from .build/wheels;
- an MX per domain (one Postfix, a listener each): two with certificates from the lab CA, gamma's from a CA no
  sender trusts; they accept mail and discard it, logging each message;
- TLS-RPT reports that senders would have mailed about the three domains over the last 14 days (Postfix 3.7
  sends none), gamma's full of certificate-not-trusted failures.

Then: playbooks/site.yml converges the inventory (tests/demo/inventory, copied into the lab as a Git checkout
would hold it) while tests/demo/mta.yml runs the postfix role; mail goes out through that Postfix; playbooks/drift.yml
checks for drift; a change is proposed (alpha's policy, and gamma to enforce) and site.yml --check --diff shows its
plan, the gate refusing gamma; the rest converges; drift.yml runs again. The lab stops and the demo says what it
showed.

Usage: scripts/demo (as root: it re-runs itself inside scripts/lab-netns).
"""

import concurrent.futures
import contextlib
import grp
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import COLLECTIONS_PATH, link_collection  # noqa: E402
from tests.lab.knot import KnotLab  # noqa: E402
from tests.lab.mail import MailLab  # noqa: E402
from tests.lab.netns import bind_mount, private_namespace_problems  # noqa: E402
from tests.lab.nginx_site import NginxSite  # noqa: E402
from tests.lab.pki import LabCA, write_pair  # noqa: E402
from tests.lab.tlsrpt_reports import write_reports  # noqa: E402
from tests.postfix.mail_lab import SendingPostfix, StsResolver, read_text, received, wait_for_outcomes  # noqa: E402

DEMO = os.path.join(REPO, 'tests', 'demo')
WHEELS = os.path.join(REPO, '.build', 'wheels', 'mta-sts-resolver')
CALLBACKS = os.path.join(REPO, 'tests', 'integration', 'callback')
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
LOOPBACK = '127.0.0.1'
# Each domain's MX: its address and the certificate it presents (tests/lab/mail.py's kinds).
MX = {
    'alpha.example': ('127.0.0.21', 'good'),
    'beta.example': ('127.0.0.22', 'good'),
    'gamma.example': ('127.0.0.23', 'untrusted'),
}
WORKER_USER, WORKER_GROUP = 'nobody', 'nogroup'
# Sessions a day per reporting organisation in the generated TLS-RPT reports; gamma's failures a day.
REPORTED_SESSIONS, GAMMA_FAILURES = 300, 40
# Set by the demo for its own run inside scripts/lab-netns.
NAMESPACE_MARK = 'MAILSEC_DEMO_NAMESPACE'


def say(text):
    print(text, flush=True)


def in_namespace():
    """Re-run this script in a network and mount namespace of its own (scripts/lab-netns), even when the caller is
    in one already (the side test run is): the lab takes 127.0.0.1:53, :443 and :25 there and meets nobody."""
    if os.environ.get(NAMESPACE_MARK) == str(os.getpid()) and not private_namespace_problems():
        return
    if os.geteuid() != 0:
        raise SystemExit('make demo runs its lab in a network namespace of its own (scripts/lab-netns): run it as root')
    # lab-netns only execs (unshare, bash, this script): the run inside keeps this pid; a caller's mark does not match.
    os.environ[NAMESPACE_MARK] = str(os.getpid())
    os.execv(os.path.join(REPO, 'scripts', 'lab-netns'),
             ['lab-netns', sys.executable, os.path.abspath(__file__)] + sys.argv[1:])


class Lab:
    """Every server of the demo, under one work directory that the postfix and nobody users can enter."""

    def __init__(self, base):
        self.base = base
        self.ca = LabCA()
        self.ca_file = self.ca.write_bundle(self.path('ca.pem'))
        self.knot = KnotLab(self.path('knot'), list(MX), port=53, address=LOOPBACK)
        self.receivers = MailLab(self.path('mx'), self.ca, accept=True)
        for domain, (address, kind) in MX.items():
            self.receivers.add_mx(address, kind, name='mx1.' + domain)
        self.nginx = NginxSite(self.path('nginx'), LOOPBACK, user='%s %s' % (WORKER_USER, WORKER_GROUP))
        self.sender = SendingPostfix(self.path('sender'))
        self.resolver = StsResolver(self.path('venv'), self.path('mta-sts-daemon.yml'), self.ca_file,
                                    self.path('resolver.log'))
        self.inventory = self.path('inventory')
        self._runs = itertools.count()
        self.outputs = []

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def start(self, stack):
        """Start the servers (each stopped by ``stack``), write the certificates, reports and inventory."""
        with open(self.path('resolv.conf'), 'w') as handle:
            handle.write('nameserver %s\n' % LOOPBACK)
        self.knot.start()
        stack.callback(self.knot.stop)
        for domain, (address, _kind) in MX.items():
            self.knot.add_records(domain, ['mx1.%s. 300 IN A %s' % (domain, address)])
        stack.enter_context(bind_mount(self.path('resolv.conf'), '/etc/resolv.conf', 'make demo'))
        self.receivers.start()
        stack.callback(self.receivers.stop)
        self.nginx.start()
        stack.callback(self.nginx.stop)
        self.sender.start()
        stack.callback(self.sender.stop)
        stack.callback(self.resolver.stop)
        os.makedirs(self.path('certs'), mode=0o755)
        cert, key = write_pair(self.path('certs'), 'policy-host', self.ca.issue(['mta-sts.' + d for d in MX]))
        os.chown(key, 0, grp.getgrnam(WORKER_GROUP).gr_gid)
        os.chmod(key, 0o640)
        shutil.copytree(os.path.join(DEMO, 'inventory'), self.inventory)
        os.makedirs(self.path('drift'))  # mta_sts_report_dir: drift.yml writes into it, as into a CI job's folder
        self.write_lab_vars(cert, key)
        self.write_reports()

    def write_lab_vars(self, cert, key):
        """The lab's facts the inventory refers to (``demo_lab``), as an extra-vars file. No secret: the TSIG key
        reaches the playbooks through the environment only."""
        lab = {
            'dir': self.base,
            'ca_file': self.ca_file,
            'nameservers': [LOOPBACK],
            'policy_host_address': LOOPBACK,
            'policy_host_certificate': cert,
            'policy_host_private_key': key,
            'nginx_user': WORKER_USER,
            'nginx_drop_in': self.nginx.drop_in_path,
            'nginx_test_command': self.nginx.test_command,
            'nginx_reload_command': [self.nginx.reload_script],
            'postfix_config_dir': self.sender.conf_dir,
            'postfix_check_command': self.sender.check_command,
            'postfix_reload_command': self.sender.reload_command,
            'resolver_venv': self.resolver.venv,
            'resolver_config': self.resolver.config,
            'resolver_wheels': WHEELS,
            'reports_dir': self.path('reports'),
        }
        with open(self.path('lab.yml'), 'w') as handle:
            yaml.safe_dump({'demo_lab': lab}, handle, sort_keys=False)

    def write_reports(self):
        """What senders would have reported about each domain's current policy: gamma's MX fails verification."""
        items = []
        for item in self.domains():
            address, kind = MX[item['domain']]
            failures = [] if kind == 'good' else [{
                'result-type': 'certificate-not-trusted', 'receiving-mx-hostname': 'mx1.' + item['domain'],
                'receiving-ip': address, 'failed-session-count': GAMMA_FAILURES}]
            items.append({'domain': item['domain'], 'policy': item['policy'], 'successful': REPORTED_SESSIONS,
                          'failures': failures})
        return write_reports(self.path('reports'), items)

    # -- the inventory (the lab's copy: what a merge request would change) --

    @property
    def domains_file(self):
        return os.path.join(self.inventory, 'group_vars', 'all', 'domains.yml')

    def domains(self):
        with open(self.domains_file) as handle:
            return yaml.safe_load(handle)['mta_sts_domains']

    def set_policy(self, domain, **changes):
        items = self.domains()
        for item in items:
            if item['domain'] == domain:
                item['policy'].update(changes)
        with open(self.domains_file, 'w') as handle:
            yaml.safe_dump({'mta_sts_domains': items}, handle, sort_keys=False)

    # -- running playbooks --

    def playbook(self, name, *options, expect_failure=False):
        """Run a playbook on the lab inventory; returns (rc, output, task results)."""
        # One file per run: the MTA's play runs beside site.yml.
        results_file = self.path('results-%d.json' % next(self._runs))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_RETRY_FILES_ENABLED='false',
                   ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED='record_results',
                   RECORD_RESULTS_FILE=results_file, MAILSEC_RFC2136_KEY_NAME=self.knot.key_name,
                   MAILSEC_RFC2136_KEY_SECRET=self.knot.key_secret)
        command = [ANSIBLE_PLAYBOOK, '-i', self.inventory, '-e', '@' + self.path('lab.yml'), name] + list(options)
        began = time.monotonic()
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False, cwd=self.base)
        self.outputs.append(proc.stdout)
        results = []
        if os.path.exists(results_file):
            with open(results_file) as handle:
                results = json.load(handle)
        recap = [line for line in proc.stdout.splitlines() if line.startswith('localhost ')]
        say('   %s: exit %d in %.0f s; %s' % (' '.join([os.path.basename(name)] + list(options)), proc.returncode,
                                              time.monotonic() - began, ' '.join(recap[-1].split()[2:]) if recap else ''))
        if proc.returncode != 0 and not expect_failure:
            say(proc.stdout[-6000:])
            raise SystemExit('%s failed' % name)
        return proc.returncode, proc.stdout, results


# The rollout playbooks users run (playbooks/README.md), and the demo's play for its MTA host.
SITE = os.path.join(REPO, 'playbooks', 'site.yml')
DRIFT = os.path.join(REPO, 'playbooks', 'drift.yml')
MTA = os.path.join(DEMO, 'mta.yml')


def plan_lines(path):
    """A few lines per domain from the plan file (docs/plan-schema.md): its status, record changes, gate verdicts."""
    with open(path) as handle:
        plan = json.load(handle)
    lines = []
    for item in plan['domains']:
        changed = ['%s %s: %s -> %s' % (r['type'], r['name'], ' '.join(r.get('before') or ['(none)']),
                                        ' '.join(r.get('after') or ['(none)']))
                   for r in item.get('records', []) if r.get('changed')]
        lines.append('   %-14s %s' % (item['domain'], item.get('status')))
        lines += ['      %s' % change for change in changed]
        diff = (item.get('policy_file') or {}).get('diff')
        if diff:
            lines += ['      | %s' % line for line in diff.splitlines()
                      if line.startswith(('+', '-')) and not line.startswith(('+++', '---'))]
        for gate, verdict in sorted((item.get('gates') or {}).items()):
            if isinstance(verdict, dict) and verdict.get('verdict') not in (None, 'not-needed'):
                lines.append('      %s gate: %s%s' % (gate, verdict['verdict'],
                                                      ''.join('\n        - %s' % r for r in verdict.get('reasons', []))))
        lines += ['      override: %s' % o.get('reason') for o in item.get('overrides', [])]
    return plan, lines


def diff_lines(output):
    """{task name: the lines --diff showed it change (+/-)}, in the order ansible-playbook printed them."""
    diffs, task = {}, None
    for line in output.splitlines():
        if line.startswith('TASK ['):
            task = line[len('TASK ['):].split('] ', 1)[0]
        elif task and line.startswith(('+', '-')) and not line.startswith(('+++', '---')):
            diffs.setdefault(task, []).append(line)
    return diffs


def converge(lab, *options, expect_failure=False):
    """site.yml, then its plan file's summary; returns (plan, the final failure's message or None)."""
    plan_file = lab.path('plan.json')  # mta_sts_plan_file in the inventory
    if os.path.exists(plan_file):
        os.unlink(plan_file)  # a run that stops before writing its plan must not show the last one
    _rc, output, results = lab.playbook(SITE, *options, expect_failure=expect_failure)
    if '--diff' in options:
        for task, lines in diff_lines(output).items():
            say('   --diff of "%s":' % task)
            for line in lines:
                say('      %s' % line)
        say('   the plan file (%s):' % os.path.relpath(plan_file, lab.base))
    plan, lines = plan_lines(plan_file)
    for line in lines:
        say(line)
    failures = [result.get('msg') for result in results if result['_status'] == 'failed']
    for failure in failures:
        # The reasons are listed above, under each domain's gate.
        say('   site.yml failed: %s' % (failure if len(failure) < 160 else failure[:150] + ' ...'))
    return plan, (failures[-1] if failures else None)


def drift(lab):
    """The drift check; returns whether it was clean (it exits non-zero on drift)."""
    rc, _output, results = lab.playbook(DRIFT, expect_failure=True)
    for failed in (result for result in results if result['_status'] == 'failed'):
        say('   %s: %s' % (failed['_task'], failed.get('msg')))
    summary = os.path.join(lab.path('drift'), 'drift.md')
    if os.path.exists(summary):
        with open(summary) as handle:
            for line in handle.read().splitlines():
                say('   ' + line)
    say('   drift: %s' % ('clean' if rc == 0 else 'FOUND (exit %d)' % rc))
    return rc == 0


def deliver(lab, domains):
    """Send one message per domain through the configured Postfix; returns {domain: (status, tls line, received)}."""
    ids = {domain: lab.sender.submit('postmaster@' + domain, 'demo-' + domain.split('.')[0]) for domain in domains}
    outcomes = wait_for_outcomes(lab.sender, list(ids.values()), lambda o: o.status in ('sent', 'bounced'), timeout=90)
    shown = {}
    for domain, message_id in ids.items():
        found = outcomes[message_id]
        final = found.final if found else None
        status = final.status if final else 'not yet sent'
        tls = final.tls.split(': ', 1)[-1].split(' to ', 1)[0] if final and final.tls else ''
        got = received(lab.receivers, message_id)
        shown[domain] = (status, final.tls if final else '', bool(got))
        say('   %-14s %s via %s: %s; the MX logged it: %s' % (
            domain, status, final.relay if final else '-', tls or 'no TLS line', 'yes' if got else 'no'))
    return shown


def secret_free(lab):
    """Say which of the run's outputs were searched for the TSIG key (it reached the DNS modules through the
    environment only); stop the demo naming any that holds it."""
    artifacts = [lab.path('plan.json'), os.path.join(lab.inventory, 'mta-sts-state.json')] + sorted(
        os.path.join(lab.path('drift'), name) for name in os.listdir(lab.path('drift')))
    texts = {path: read_text(path) for path in artifacts}
    texts.update(('playbook output %d' % number, text) for number, text in enumerate(lab.outputs, 1))
    holding = [name for name, text in texts.items() if lab.knot.key_secret in text]
    if holding:
        raise SystemExit('the TSIG key is in %s' % ', '.join(holding))
    return 'not in %s, nor in the %d playbook outputs' % (', '.join(os.path.relpath(p, lab.base) for p in artifacts),
                                                          len(lab.outputs))


def main():
    in_namespace()
    link_collection()
    began = time.monotonic()
    base = tempfile.mkdtemp(prefix='mailsec-demo-')
    os.chmod(base, 0o755)  # the postfix user reaches the queues, nginx's workers the certificates
    told = []
    try:
        with contextlib.ExitStack() as stack:
            lab = Lab(base)
            mx_hosts = ', '.join('%s (%s)' % (address, kind) for address, kind in MX.values())
            say('== 1. The lab (a network namespace of its own): Knot on %s:53 (also the resolver), nginx on %s:443, '
                'a sending Postfix on %s:2525, MX hosts %s' % (LOOPBACK, LOOPBACK, LOOPBACK, mx_hosts))
            say('   lab directory: %s' % base)
            lab.start(stack)
            say('   TLS-RPT reports: %d files in %s' % (len(os.listdir(lab.path('reports'))), lab.path('reports')))

            say('== 2. Converge the inventory: %s (gates, policy_host role, host records, verify, publish), '
                'and the postfix role on the MTA host (%s)' % (os.path.relpath(SITE, REPO), os.path.relpath(MTA, REPO)))
            with concurrent.futures.ThreadPoolExecutor(1) as beside:
                # The postfix role (mostly the resolver's venv) has nothing to wait for: it runs beside site.yml.
                mta = beside.submit(lab.playbook, MTA)
                converge(lab)
                mta.result()
            lab.resolver.start()
            for domain in MX:
                say('   the MTA-STS resolver answers Postfix for %s: %s'
                    % (domain, lab.resolver.query(domain) or '(no policy: testing or none)'))

            say('== 3. Mail through the configured Postfix')
            deliveries = deliver(lab, list(MX))
            status, tls, got = deliveries['beta.example']
            if status != 'sent' or 'Verified TLS connection established' not in tls or not got:
                raise SystemExit('beta.example: not delivered over verified TLS: %s %s' % (status, tls))
            told.append("beta.example (enforce): mail from the Postfix the role configured went over verified TLS; "
                        "Postfix logged '%s'" % tls.split(': ', 1)[-1].split(' with ', 1)[0])
            told.append('the testing domains got theirs as well, gamma.example over untrusted TLS: testing refuses '
                        'nothing, the TLS-RPT reports show it (%s)' % ', '.join(
                            '%s %s' % (d, deliveries[d][0]) for d in ('alpha.example', 'gamma.example')))

            say('== 4. Drift check: %s' % os.path.relpath(DRIFT, REPO))
            if not drift(lab):
                raise SystemExit('the drift check found drift right after converging')
            told.append('drift check after the first converge: clean')

            say('== 5. A merge request: alpha.example max_age 86400 -> 604800 and a second MX pattern; '
                'gamma.example to enforce')
            lab.set_policy('alpha.example', max_age=604800, mx=['mx1.alpha.example', '*.backup.alpha.example'])
            lab.set_policy('gamma.example', mode='enforce')
            say('== 6. Its plan: site.yml --check --diff (nothing changes; it fails naming what the gates hold back)')
            plan, failure = converge(lab, '--check', '--diff', expect_failure=True)
            if 'gamma.example' not in (failure or ''):
                raise SystemExit('site.yml --check did not name gamma.example as held back: %s' % failure)
            gates = {item['domain']: (item.get('gates') or {}).get('enforce') or {} for item in plan['domains']}
            gamma = gates.get('gamma.example') or {}
            if gamma.get('verdict') != 'refused':
                raise SystemExit('the enforce gate did not refuse gamma.example: %s' % gamma)
            told.append('the enforce gate kept gamma.example out of enforce (%d reasons), first: %s'
                        % (len(gamma.get('reasons', [])), (gamma.get('reasons') or ['none given'])[0]))

            say('== 7. gamma.example stays in testing (its change dropped from the merge request); converge the rest')
            lab.set_policy('gamma.example', mode='testing')
            plan, _failure = converge(lab)
            alpha = next(item for item in plan['domains'] if item['domain'] == 'alpha.example')
            with open(os.path.join(lab.inventory, 'mta-sts-state.json')) as handle:
                state = json.load(handle)['domains']
            for domain, entry in sorted(state.items()):
                say('   state file: %s: %s' % (domain, ', '.join('%s max_age %s live since %s' % (
                    h['mode'], h['max_age'], h['live_since']) for h in entry['history'])))
            told.append('alpha.example: max_age 604800 and a second MX pattern, in the plan first, then %s '
                        '(published once the policy host served the new bytes)' % alpha.get('status'))

            say('== 8. Drift check again')
            if not drift(lab):
                raise SystemExit('the drift check found drift after the change converged')
            told.append('drift check after the change: clean')
            say('== 9. Where the TSIG key is not: %s' % secret_free(lab))
            told.append('the TSIG key is in no plan, state file, drift report or playbook output')
        say('== 10. Lab stopped')
    finally:
        shutil.rmtree(base, ignore_errors=True)
    say('\nWhat the demo showed (%.0f s):' % (time.monotonic() - began))
    for line in told:
        say(' - ' + line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
