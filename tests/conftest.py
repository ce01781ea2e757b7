"""Make the checkout importable as ``ansible_collections.mailsec.mta_sts``.

Ansible loads collection code from ``<path>/ansible_collections/<ns>/<name>``;
a symlink under ``.build/`` (git-ignored) gives the checkout that shape
without copying it, for pytest and for the ansible-playbook runs of the
integration tests (``ANSIBLE_COLLECTIONS_PATH``).
"""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_PATH = os.path.join(REPO, '.build', 'collections')


def link_collection():
    parent = os.path.join(COLLECTIONS_PATH, 'ansible_collections', 'mailsec')
    link = os.path.join(parent, 'mta_sts')
    if not os.path.islink(link):
        os.makedirs(parent, exist_ok=True)
        os.symlink(os.path.relpath(REPO, parent), link)


def install_collection_finder():
    """Import collections the way Ansible does (as ansible-test units does), so plugin loaders find ours."""
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    if AnsibleCollectionConfig.collection_finder is None:
        _AnsibleCollectionFinder(paths=[COLLECTIONS_PATH])._install()


link_collection()
install_collection_finder()


# The DNSSEC lab of the suites run inside scripts/lab-netns (tests/postfix, tests/dane): one per session,
# because it takes 127.0.0.1:53 and /etc/resolv.conf there. Each test file keeps to names of its own.
DNSSEC_SIGNED_ZONES = ('sts.example.', 'dane.example.')
DNSSEC_UNSIGNED_ZONES = ('plain.example.',)
DNSSEC_BOGUS_ZONE = 'bogus.example.'


@pytest.fixture(scope='session')
def lab_ca():
    """One throwaway CA (root + intermediate) for every certificate of the session."""
    from tests.lab.pki import LabCA
    return LabCA()


@pytest.fixture(scope='session')
def dnssec_lab(tmp_path_factory):
    """Knot (signing; TSIG updates with ``lab.knot.key_name``/``key_secret``) + a validating unbound on
    127.0.0.1:53, with /etc/resolv.conf pointing at it for the whole session (see tests/lab/dnssec.py).
    Only inside a private mount namespace: the bind mount refuses anywhere else."""
    from tests.lab.dnssec import DnssecLab
    with DnssecLab(str(tmp_path_factory.mktemp('dnssec')), signed_zones=DNSSEC_SIGNED_ZONES,
                   unsigned_zones=DNSSEC_UNSIGNED_ZONES, bogus_zone=DNSSEC_BOGUS_ZONE) as lab, lab.bind_resolv_conf():
        yield lab
