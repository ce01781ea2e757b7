"""Every test here runs inside ``scripts/lab-netns``: a network and mount
namespace of its own, where the lab takes 127.0.0.1:25, :53, :443 and
/etc/resolv.conf without touching the machine's.

Run them with ``scripts/lab-netns .venv/bin/python -m pytest tests/postfix``
(``make postfix-tests``).  Anywhere else the whole directory is refused at
collection, before any server starts.
"""

import pytest

from tests.lab.dnssec import DnssecLab
from tests.lab.netns import private_namespace_problems
from tests.lab.pki import LabCA


def pytest_configure(config):  # pylint: disable=unused-argument
    # Called as soon as this conftest is loaded, before anything is collected.
    problems = private_namespace_problems()
    if problems:
        raise pytest.UsageError(
            'tests/postfix run only inside a private network and mount namespace: '
            'scripts/lab-netns .venv/bin/python -m pytest tests/postfix '
            f'(make postfix-tests). Here: {"; ".join(problems)}')


@pytest.fixture(scope='session')
def lab_ca():
    """One throwaway CA (root + intermediate) for every certificate of the session."""
    return LabCA()


@pytest.fixture(scope='session')
def dnssec_lab(tmp_path_factory):
    """Knot + validating unbound on 127.0.0.1:53, with /etc/resolv.conf
    pointing at it for the whole session (see tests/lab/dnssec.py)."""
    with DnssecLab(str(tmp_path_factory.mktemp('dnssec'))) as lab, lab.bind_resolv_conf():
        yield lab
