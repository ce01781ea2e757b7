"""`make demo`, the README's first command, keeps working: it runs the whole flow and ends in sync."""

import os
import re
import subprocess
import sys

from tests.integration.playbook import REPO


def test_demo_runs_the_whole_flow():
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'demo.py')], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'alpha.example: valid=True in_sync=True mode=testing' in proc.stdout
    assert 'beta.example: valid=True in_sync=True mode=enforce' in proc.stdout
    assert re.search(r'^_mta-sts\.beta\.example +"v=STSv1; id=[a-z2-7]{32};"$', proc.stdout, re.M)
