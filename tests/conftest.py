"""Make the checkout importable as ``ansible_collections.mailsec.mta_sts``.

Ansible loads collection code from ``<path>/ansible_collections/<ns>/<name>``;
a symlink under ``.build/`` (git-ignored) gives the checkout that shape
without copying it, for pytest and for the ansible-playbook runs of the
integration tests (``ANSIBLE_COLLECTIONS_PATH``).
"""

import os

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
