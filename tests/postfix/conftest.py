"""Every test here runs inside ``scripts/lab-netns``: a network and mount
namespace of its own, where the lab takes 127.0.0.1:25, :53, :443 and
/etc/resolv.conf without touching the machine's.

Run them with ``scripts/lab-netns .venv/bin/python -m pytest tests/postfix``
(``make postfix-tests``).  Anywhere else the whole directory is refused at
collection, before any server starts. Its ``dnssec_lab`` and ``lab_ca``
fixtures are in tests/conftest.py, shared with tests/dane.
"""

import pytest

from tests.lab.netns import private_namespace_problems


def pytest_configure(config):  # pylint: disable=unused-argument
    # Called as soon as this conftest is loaded, before anything is collected.
    problems = private_namespace_problems()
    if problems:
        raise pytest.UsageError(
            'tests/postfix run only inside a private network and mount namespace: '
            'scripts/lab-netns .venv/bin/python -m pytest tests/postfix '
            f'(make postfix-tests). Here: {"; ".join(problems)}')
