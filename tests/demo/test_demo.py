"""`make demo`, the README's first command: the real path (scripts/demo, which runs scripts/demo.py in a network
namespace of its own) on the full stack, and what it claims, read from its output.

Run in the side suite (scripts/run-test-suites; needs root): the demo makes its own namespace even there.
"""

import os
import re
import subprocess

import pytest

from tests.integration.playbook import REPO

# The demo's own budget (the side suite's slack in CI is about 12 minutes).
TIMEOUT = 420


def sections(output):
    """{step number: its lines} of the demo's ``== N. ...`` sections."""
    found, current = {}, None
    for line in output.splitlines():
        header = re.match(r'== (\d+)\. ', line)
        if header:
            current = int(header.group(1))
            found[current] = [line]
        elif current is not None:
            found[current].append(line)
    return found


def sts_ids(lines, domain):
    """The (before, after) ids of each _mta-sts change of ``domain`` a plan lists in ``lines``."""
    pattern = r'TXT _mta-sts\.%s: (?:v=STSv1; id=(\w+);|\(none\)) -> v=STSv1; id=(\w+);' % re.escape(domain)
    return [re.search(pattern, line).groups() for line in lines if re.search(pattern, line)]


def running_with(path):
    """Command lines of the processes that name ``path`` (the lab's servers all do)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if path in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture(scope='module')
def demo():
    if os.geteuid() != 0:
        pytest.fail('make demo needs root (its lab runs in a network namespace of its own)')
    proc = subprocess.run([os.path.join(REPO, 'scripts', 'demo')], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=TIMEOUT, check=False)
    return proc


def test_the_demo_finishes(demo):
    assert demo.returncode == 0, demo.stdout[-6000:]
    assert 'What the demo showed' in demo.stdout


def test_mail_from_the_role_configured_postfix_reaches_the_enforce_domain_over_verified_tls(demo):
    step = sections(demo.stdout)[3]
    beta = [line for line in step if line.split()[:1] == ['beta.example']]
    assert len(beta) == 1, step
    # Postfix's status line, the TLS line its smtp process logged for that relay, and the MX's own log.
    assert re.search(r'sent via mx1\.beta\.example\[127\.0\.0\.22\]:25: Verified TLS connection established; '
                     r'the MX logged it: yes$', beta[0]), beta
    # A testing policy refuses nothing: gamma's mail went over TLS its MX's certificate does not pass.
    gamma = [line for line in step if line.split()[:1] == ['gamma.example']]
    assert re.search(r'sent via mx1\.gamma\.example\[127\.0\.0\.23\]:25: Untrusted TLS connection established', gamma[0])
    # Before the mail, the resolver the role installed gave Postfix beta's enforce policy.
    assert ('the MTA-STS resolver answers Postfix for beta.example: secure match=mx1.beta.example'
            in demo.stdout)


def test_the_gate_keeps_the_bad_certificate_domain_out_of_enforce(demo):
    plan = sections(demo.stdout)[6]
    text = '\n'.join(plan)
    gamma = text.split('gamma.example', 1)[1]
    assert 'enforce gate: refused' in gamma, text
    # The probe's reason and the reports' reason, each naming what failed.
    assert 'mx1.gamma.example: certificate not valid' in gamma
    assert 'certificate-not-trusted' in gamma
    # site.yml --check ends failing, naming gamma as held back; its record does not change in the plan.
    assert re.search(r'site\.yml failed: 1 domain\(s\) held back: gamma\.example: enforce gate refused', text), text
    assert sts_ids(plan, 'gamma.example') == []


def test_the_drift_check_is_clean_before_and_after_the_change(demo):
    steps = sections(demo.stdout)
    for number in (4, 8):
        assert steps[number][-1].strip() == 'drift: clean', steps[number]
        # drift.yml's Markdown summary lists every domain, passing and in sync.
        for domain in ('alpha.example', 'beta.example', 'gamma.example'):
            assert re.search(r'\| %s \| pass \| \w+ \| yes \|' % re.escape(domain), '\n'.join(steps[number])), steps[number]


def test_the_changed_policy_is_planned_then_converged(demo):
    steps = sections(demo.stdout)
    first = sts_ids(steps[2], 'alpha.example')
    planned = sts_ids(steps[6], 'alpha.example')
    applied = sts_ids(steps[7], 'alpha.example')
    assert len(first) == 1 and len(planned) == 1 and len(applied) == 1, (first, planned, applied)
    # The plan names the change the converge then makes: from the live id to the new policy's id.
    assert planned == applied
    assert applied[0][0] == first[0][1] != applied[0][1]
    assert 'alpha.example  would publish after verification' in '\n'.join(steps[6])
    assert 'alpha.example  applied' in '\n'.join(steps[7])
    # --check --diff shows the policy host's file and the record changing, from the live id to the new one.
    plan_text = '\n'.join(steps[6])
    role_diff = plan_text.split('--diff of "mailsec.mta_sts.policy_host : ', 1)[1].split('--diff of', 1)[0]
    assert '+max_age: 604800' in role_diff and '-max_age: 86400' in role_diff, plan_text
    assert '-"v=STSv1; id=%s;"' % first[0][1] in plan_text and '+"v=STSv1; id=%s;"' % applied[0][1] in plan_text
    # The policy file's diff in the plan, and the state file's record of both of alpha's policies.
    assert '| +max_age: 604800' in '\n'.join(steps[6]) and '| +mx: *.backup.alpha.example' in '\n'.join(steps[6])
    assert re.search(r'state file: alpha\.example: testing max_age 86400 live since \S+Z, '
                     r'testing max_age 604800 live since \S+Z$', '\n'.join(steps[7]), re.M), steps[7]


def test_no_artifact_holds_the_tsig_key(demo):
    # The demo searched them for the key it made (the test never sees the key): every file, and the output of each
    # playbook run (site.yml three times, the MTA's play, drift.yml twice).
    searched = sections(demo.stdout)[9][0]
    for artifact in ('plan.json', 'inventory/mta-sts-state.json', 'drift/drift.json', 'drift/drift.junit.xml',
                     'drift/drift.md'):
        assert artifact in searched, searched
    assert re.search(r'nor in the 6 playbook outputs$', searched), searched


def test_the_lab_is_stopped(demo):
    lab_dir = re.search(r'lab directory: (\S+)', demo.stdout).group(1)
    assert '== 10. Lab stopped' in demo.stdout
    assert not os.path.exists(lab_dir)
    assert running_with(lab_dir) == []
