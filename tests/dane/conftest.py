"""DANE for the domain's own MX (issue 12): every test here runs inside
``scripts/lab-netns``, a network and mount namespace of its own, where the lab
takes 127.0.0.1:53 (a validating unbound in front of a signing Knot), port 25
on several loopback addresses and /etc/resolv.conf without touching the
machine's.

Run them with ``scripts/lab-netns .venv/bin/python -m pytest tests/dane``
(``make dane-tests``).  Anywhere else the whole directory is refused at
collection, before any server starts.

The DNSSEC lab (``dnssec_lab``, with ``lab_ca``, in tests/conftest.py) is one per
session, shared with tests/postfix: each test file keeps to names of its own
under its zones (signed: dane.example, sts.example; unsigned: plain.example;
bogus: bogus.example), and to loopback addresses of its own for its MX hosts.
"""

import pytest

from tests.lab.netns import private_namespace_problems


def pytest_configure(config):  # pylint: disable=unused-argument
    problems = private_namespace_problems()
    if problems:
        raise pytest.UsageError(
            'tests/dane run only inside a private network and mount namespace: '
            'scripts/lab-netns .venv/bin/python -m pytest tests/dane '
            f'(make dane-tests). Here: {"; ".join(problems)}')
