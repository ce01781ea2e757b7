"""scripts/without-service-starts blocks Debian service start-up only while its command runs.

The script is run for real, with POLICY_RC_D pointing into a temporary directory in place of
/usr/sbin/policy-rc.d, and a shell command in place of apt-get install.
"""

import os
import signal
import stat
import subprocess
import time

import pytest

from tests.conftest import REPO

SCRIPT = os.path.join(REPO, 'scripts', 'without-service-starts')
# What a package's maintainer script does: ask policy-rc.d whether it may start its service.
ASK_POLICY = '"$POLICY_RC_D" nginx start; echo "policy-rc.d said $?"'


def run(policy_rc_d, command):
    return subprocess.run([SCRIPT, 'sh', '-c', command], env=dict(os.environ, POLICY_RC_D=str(policy_rc_d)),
                          capture_output=True, text=True, timeout=30, check=False)


def test_blocks_start_up_while_installing_and_removes_what_was_absent(tmp_path):
    policy_rc_d = tmp_path / 'policy-rc.d'
    proc = run(policy_rc_d, ASK_POLICY)
    assert proc.returncode == 0, proc.stderr
    assert 'policy-rc.d said 101' in proc.stdout   # 101: action forbidden by policy
    assert not os.path.lexists(policy_rc_d)
    assert os.listdir(tmp_path) == []


def test_puts_back_an_existing_file_with_its_bytes_and_mode(tmp_path):
    policy_rc_d = tmp_path / 'policy-rc.d'
    original = b'#!/bin/sh\n# the administrator\'s own rules\nexit 0\n'
    policy_rc_d.write_bytes(original)
    policy_rc_d.chmod(0o750)
    proc = run(policy_rc_d, ASK_POLICY)
    assert 'policy-rc.d said 101' in proc.stdout
    assert policy_rc_d.read_bytes() == original
    assert stat.S_IMODE(policy_rc_d.stat().st_mode) == 0o750
    assert os.listdir(tmp_path) == ['policy-rc.d']


def test_puts_back_a_symlink_as_a_symlink(tmp_path):
    target = tmp_path / 'shared-policy'
    target.write_text('#!/bin/sh\nexit 0\n')
    policy_rc_d = tmp_path / 'policy-rc.d'
    policy_rc_d.symlink_to(target)
    run(policy_rc_d, ASK_POLICY)
    assert os.readlink(policy_rc_d) == str(target)
    assert target.read_text() == '#!/bin/sh\nexit 0\n'


@pytest.mark.parametrize('existing', [False, True])
def test_a_failed_install_restores_and_fails_with_its_status(tmp_path, existing):
    policy_rc_d = tmp_path / 'policy-rc.d'
    if existing:
        policy_rc_d.write_text('#!/bin/sh\nexit 0\n')
    proc = run(policy_rc_d, 'echo "E: Unable to locate package" >&2; exit 100')
    assert proc.returncode == 100
    assert 'Unable to locate package' in proc.stderr
    assert policy_rc_d.exists() is existing
    if existing:
        assert policy_rc_d.read_text() == '#!/bin/sh\nexit 0\n'


def test_an_interrupted_install_restores(tmp_path):
    policy_rc_d = tmp_path / 'policy-rc.d'
    started = tmp_path / 'started'
    proc = subprocess.Popen([SCRIPT, 'sh', '-c', 'touch "$0"; exec sleep 30', str(started)],
                            env=dict(os.environ, POLICY_RC_D=str(policy_rc_d)), start_new_session=True)
    deadline = time.monotonic() + 10
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    assert policy_rc_d.exists()
    # A terminal's Ctrl-C or a CI runner's TERM reaches the whole process group.
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) != 0
    assert not os.path.lexists(policy_rc_d)


def test_install_deps_blocks_start_up_only_through_the_guard():
    with open(os.path.join(REPO, 'scripts', 'install-deps')) as script:
        text = script.read()
    assert 'policy-rc.d' not in text
    assert '"$repo/scripts/without-service-starts" \\\n    apt-get install' in text
