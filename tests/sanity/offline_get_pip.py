"""Offline stand-in for the pip bootstrap script ansible-test downloads.

ansible-test builds each sanity venv by running a get-pip script it fetches
from the internet; here only package registries are reachable. This script
seeds pip from the interpreter's own ensurepip and then installs the pinned
packages ansible-test asked for (from the package index as usual).
"""

import ensurepip
import os
import subprocess
import sys

saved = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null, which would drop the machine's pip configuration.
os.environ.clear()
os.environ.update(saved)
args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
