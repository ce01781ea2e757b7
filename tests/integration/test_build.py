"""The collection tarball builds, installs, and its plugins load by FQCN from the installed copy."""

import glob
import os
import subprocess
import sys

from tests.integration.playbook import REPO, run_playbook

BIN = os.path.dirname(sys.executable)


def test_built_collection_installs_and_loads(tmp_path):
    dist = tmp_path / 'dist'
    installed = tmp_path / 'collections'
    subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(dist), REPO],
                   check=True, capture_output=True)
    tarballs = glob.glob(str(dist / 'mailsec-mta_sts-*.tar.gz'))
    assert len(tarballs) == 1
    subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(installed), tarballs[0]],
                   check=True, capture_output=True)
    root = installed / 'ansible_collections' / 'mailsec' / 'mta_sts'
    assert (root / 'plugins' / 'modules' / 'mta_sts_record.py').exists()
    assert not (root / '.venv').exists() and not (root / '.build').exists()

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    docs = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'module', 'mailsec.mta_sts.mta_sts_record', 'mailsec.mta_sts.tlsrpt_record'],
                          env=env, check=True, capture_output=True, text=True)
    assert 'key_secret' in docs.stdout and 'zone_file' in docs.stdout
    filters = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', 'filter', 'mailsec.mta_sts.policy_id'],
                             env=env, check=True, capture_output=True, text=True)
    assert 'policy_id' in filters.stdout

    run = run_playbook([{'debug': {'msg': "{{ 'mx1.example.com' | mailsec.mta_sts.mx_match('*.example.com') }}"}},
                        {'mailsec.mta_sts.mta_sts_record': {'domain': 'bad domain', 'id': 'x', 'provider': 'zonefile',
                                                            'zone_file': str(tmp_path / 'none')}}],
                       env={'ANSIBLE_COLLECTIONS_PATH': str(installed)}, workdir=str(tmp_path))
    assert run.results[0]['msg'] is True
    assert run.results[1]['msg'].startswith("domain 'bad domain'")
