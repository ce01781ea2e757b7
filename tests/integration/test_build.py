"""The collection tarball: what it holds, that it installs and its plugins load by FQCN from the installed copy,
and that execution environments can be built from it (ansible-builder; no container engine runs here)."""

import glob
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests.integration.playbook import REPO, run_playbook

BIN = os.path.dirname(sys.executable)
# What a user's copy of the collection holds at its top level; anything else is a development file.
SHIPPED_TOP_LEVEL = {'COPYING', 'README.md', 'MANIFEST.json', 'FILES.json', 'requirements.txt', 'bindep.txt',
                     'changelogs', 'docs', 'meta', 'playbooks', 'plugins', 'roles'}
# Left behind in a checkout by the tools (a lint run's copy of the collection, venvs, old builds, test output).
DEVELOPMENT_LEFTOVERS = ('.ansible/collections/ansible_collections/mailsec/mta_sts/plugins/modules/mta_sts_record.py',
                         '.venv/bin/python', '.build/dist/mailsec-mta_sts-0.0.1.tar.gz', 'tests/output/.tmp/x',
                         '.pytest_cache/README.md', 'plugins/module_utils/__pycache__/_policy.cpython-311.pyc')


def tool(name):
    return os.path.join(BIN, name)


def checkout_files():
    listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    return [path for path in listed.split('\0') if path and os.path.exists(os.path.join(REPO, path))]


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    """A copy of the checkout's files, committed to a git repository of its own."""
    copy = tmp_path_factory.mktemp('checkout')
    for path in checkout_files():
        os.makedirs(os.path.dirname(copy / path), exist_ok=True)
        shutil.copy2(os.path.join(REPO, path), copy / path, follow_symlinks=False)
    git = ['git', '-c', 'user.name=test', '-c', 'user.email=test@localhost', '-C', str(copy)]
    for command in (['init', '-q', '-b', 'main'], ['add', '-A'], ['commit', '-q', '-m', 'copy']):
        subprocess.run(git + command, check=True, capture_output=True)
    return copy


@pytest.fixture(scope='module')
def tarball(checkout, tmp_path_factory):
    """Built from the copy with a developer's leftovers in it, as `make build` sees a used checkout."""
    tmp = tmp_path_factory.mktemp('build')
    for path in DEVELOPMENT_LEFTOVERS:
        os.makedirs(os.path.dirname(checkout / path), exist_ok=True)
        (checkout / path).write_text('leftover\n')
    dist = tmp / 'dist'
    subprocess.run([tool('ansible-galaxy'), 'collection', 'build', '--output-path', str(dist), str(checkout)],
                   check=True, capture_output=True)
    tarballs = glob.glob(str(dist / 'mailsec-mta_sts-*.tar.gz'))
    assert len(tarballs) == 1
    return tarballs[0]


@pytest.fixture(scope='module')
def installed(tarball, tmp_path_factory):
    collections = tmp_path_factory.mktemp('installed') / 'collections'
    subprocess.run([tool('ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(collections), tarball],
                   check=True, capture_output=True)
    return collections


def test_tarball_holds_what_users_run_and_no_development_files(tarball):
    with tarfile.open(tarball) as archive:
        names = {member.name.rstrip('/') for member in archive.getmembers()}
    assert {name.split('/')[0] for name in names} <= SHIPPED_TOP_LEVEL
    assert not [name for name in names if '__pycache__' in name or name.endswith('.pyc')]
    plugins = {path for path in checkout_files() if path.startswith('plugins/') and '__pycache__' not in path}
    assert plugins and plugins <= names
    for required in ('COPYING', 'README.md', 'requirements.txt', 'meta/runtime.yml', 'meta/execution-environment.yml',
                     'docs/findings.md', 'docs/policy-id.md', 'docs/docsite/extra-docs.yml', 'docs/docsite/links.yml',
                     'docs/examples/execution-environment.yml', 'changelogs/config.yaml'):
        assert required in names
    with tarfile.open(tarball) as archive:
        licence = archive.extractfile('COPYING').read().decode()
        manifest = yaml.safe_load(archive.extractfile('MANIFEST.json'))
    assert 'GNU GENERAL PUBLIC LICENSE' in licence and 'Version 3, 29 June 2007' in licence
    info = manifest['collection_info']
    assert info['license'] == ['GPL-3.0-or-later']
    assert not [key for key in ('repository', 'documentation', 'homepage', 'issues') if info.get(key)]


def test_install_from_a_git_url_takes_what_the_tarball_has(checkout, tarball, tmp_path):
    collections = tmp_path / 'collections'
    subprocess.run([tool('ansible-galaxy'), 'collection', 'install', '--offline', '-p', str(collections),
                    'git+file://%s/.git,main' % checkout], check=True, capture_output=True)
    root = collections / 'ansible_collections' / 'mailsec' / 'mta_sts'
    installed = {os.path.relpath(os.path.join(top, name), root) for top, dirs, files in os.walk(root) for name in files}
    with tarfile.open(tarball) as archive:
        shipped = {member.name for member in archive.getmembers() if member.isfile()}
    assert installed == shipped


def test_built_collection_installs_and_loads(installed, tmp_path):
    root = installed / 'ansible_collections' / 'mailsec' / 'mta_sts'
    assert (root / 'plugins' / 'modules' / 'mta_sts_record.py').exists()

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    docs = subprocess.run([tool('ansible-doc'), '-t', 'module', 'mailsec.mta_sts.mta_sts_record', 'mailsec.mta_sts.tlsrpt_record'],
                          env=env, check=True, capture_output=True, text=True)
    assert 'key_secret' in docs.stdout and 'zone_file' in docs.stdout
    filters = subprocess.run([tool('ansible-doc'), '-t', 'filter', 'mailsec.mta_sts.policy_id'],
                             env=env, check=True, capture_output=True, text=True)
    assert 'policy_id' in filters.stdout

    run = run_playbook([{'debug': {'msg': "{{ 'mx1.example.com' | mailsec.mta_sts.mx_match('*.example.com') }}"}},
                        {'mailsec.mta_sts.mta_sts_record': {'domain': 'bad domain', 'id': 'x', 'provider': 'zonefile',
                                                            'zone_file': str(tmp_path / 'none')}}],
                       env={'ANSIBLE_COLLECTIONS_PATH': str(installed)}, workdir=str(tmp_path))
    assert run.results[0]['msg'] is True
    assert run.results[1]['msg'].startswith("domain 'bad domain'")


def requirement_names(path):
    """Package names of a pip requirements file, without versions or comments."""
    with open(path) as lines:
        return [line.split('#')[0].split('>=')[0].split('==')[0].strip() for line in lines
                if line.split('#')[0].strip()]


def introspect(collections):
    """What ansible-builder puts in an execution environment for the collections installed there."""
    proc = subprocess.run([tool('ansible-builder'), 'introspect', '--sanitize', str(collections)],
                          check=True, capture_output=True, text=True)
    data = yaml.safe_load(proc.stdout)
    return ([entry.split('#')[0].split('>=')[0].strip() for entry in data['python']],
            [entry.split('#')[0].strip() for entry in data['system']])


def test_execution_environment_metadata_names_the_python_libraries_and_no_system_package(installed):
    python, system = introspect(installed)
    assert python == requirement_names(os.path.join(REPO, 'requirements.txt'))
    assert {'dnspython', 'boto3', 'cloudflare', 'cryptography'} <= set(python)
    assert system == []


def test_example_execution_environment_becomes_a_build_context(tarball, tmp_path):
    example = os.path.join(REPO, 'docs', 'examples', 'execution-environment.yml')
    with open(os.path.join(REPO, 'galaxy.yml')) as galaxy:
        version = yaml.safe_load(galaxy)['version']
    with open(example) as definition:
        assert 'mailsec-mta_sts-%s.tar.gz' % version in definition.read(), 'the example names another version'
    build_dir = tmp_path / 'ee'
    build_dir.mkdir()
    shutil.copy(example, build_dir)
    shutil.copy(tarball, build_dir)
    context = tmp_path / 'context'
    subprocess.run([tool('ansible-builder'), 'create', '-f', str(build_dir / 'execution-environment.yml'),
                    '-c', str(context), '--output-filename', 'Containerfile'], check=True, capture_output=True)
    containerfile = (context / 'Containerfile').read_text()
    assert 'COPY _build /build' in containerfile and 'ansible-galaxy collection install' in containerfile

    # The galaxy stage of the image build, run here: WORKDIR /build holds the context's _build.
    collections = tmp_path / 'image-collections'
    subprocess.run([tool('ansible-galaxy'), 'collection', 'install', '--offline', '-r', 'requirements.yml',
                    '--collections-path', str(collections)], cwd=str(context / '_build'), check=True, capture_output=True,
                   env=dict(os.environ, ANSIBLE_GALAXY_DISABLE_GPG_VERIFY='1'))
    manifest = collections / 'ansible_collections' / 'mailsec' / 'mta_sts' / 'MANIFEST.json'
    assert yaml.safe_load(manifest.read_text())['collection_info']['version'] == version
    python = introspect(collections)[0]
    assert python == requirement_names(os.path.join(REPO, 'requirements.txt'))
