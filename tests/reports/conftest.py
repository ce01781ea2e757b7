"""Fixtures of the TLS-RPT report tests (issue 10), which run through ``ansible-playbook``.

Most tests here need no server and run anywhere.  The IMAP tests need the
real Dovecot of ``tests/lab/dovecot.py`` on 127.0.0.1:993, which only starts
inside ``scripts/lab-netns`` (a network namespace of its own, so that port
is never the machine's); ``make test`` runs this directory there, beside the
main suite (``scripts/run-test-suites``).  By hand::

    scripts/lab-netns .venv/bin/python -m pytest tests/reports
"""

import pytest

from tests.lab.dovecot import DovecotLab
from tests.lab.netns import require_private_namespace
from tests.lab.pki import LabCA


@pytest.fixture(scope='session')
def reports_ca():
    """One throwaway CA (root + intermediate) for the servers of these tests."""
    return LabCA()


@pytest.fixture(scope='module')
def dovecot(reports_ca, tmp_path_factory):
    """A Dovecot serving imaps on 127.0.0.1:993 with the lab CA's certificate; one user (``.user``,
    ``.password``). Each test uses mailboxes of its own."""
    require_private_namespace('the Dovecot lab (tests/reports)')
    with DovecotLab(str(tmp_path_factory.mktemp('dovecot')), reports_ca) as lab:
        yield lab
