"""Run real ansible-playbook against the collection in this checkout and collect task results."""

import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS_PATH = os.path.join(REPO, '.build', 'collections')
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')


class PlaybookRun:
    def __init__(self, returncode, output, results):
        self.returncode = returncode
        self.output = output
        self.results = results

    @property
    def result(self):
        """The result of the last task: most plays here have one."""
        return self.results[-1]

    def __repr__(self):
        last = self.results[-1] if self.results else {}
        return 'PlaybookRun(rc=%s, msg=%r)\n%s' % (self.returncode, last.get('msg'), self.output[-3000:])


def run_playbook(tasks, check=False, diff=False, verbosity=0, env=None, workdir=None, python=None, play_vars=None):
    """Run ``tasks`` on localhost with a fresh ansible-playbook process.

    The play and its results file go in ``workdir``, or in a temporary directory removed after the run."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix='play-') as scratch:
            return run_playbook(tasks, check, diff, verbosity, env, scratch, python, play_vars)
    play = [{
        'hosts': 'localhost',
        'gather_facts': False,
        'vars': dict(play_vars or {}, ansible_python_interpreter=python or sys.executable),
        'tasks': tasks,
    }]
    playbook = os.path.join(workdir, 'play.yml')
    with open(playbook, 'w') as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    results_file = os.path.join(workdir, 'results.json')
    run_env = playbook_env(results_file, env)
    # Another Python (another venv) brings its own ansible-playbook, for side-by-side runs.
    ansible_playbook = os.path.join(os.path.dirname(python), 'ansible-playbook') if python else ANSIBLE_PLAYBOOK
    command = [ansible_playbook, '-i', 'localhost,', '-c', 'local', playbook]
    if check:
        command.append('--check')
    if diff:
        command.append('--diff')
    if verbosity:
        command.append('-' + 'v' * verbosity)
    return run_command(command, run_env, results_file)


def playbook_env(results_file, env=None):
    """The environment of an ansible-playbook run of this checkout's collection whose every task result
    ``run_command`` reads back from ``results_file`` (removed first); ``env`` is added last."""
    if os.path.exists(results_file):
        os.unlink(results_file)
    run_env = dict(os.environ)
    run_env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_PATH,
        'ANSIBLE_CALLBACK_PLUGINS': os.path.join(HERE, 'callback'),
        'ANSIBLE_CALLBACKS_ENABLED': 'record_results',
        'RECORD_RESULTS_FILE': results_file,
        'ANSIBLE_LOCALHOST_WARNING': 'false',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
    })
    run_env.update(env or {})
    return run_env


def run_command(command, run_env, results_file):
    """Run an ansible-playbook ``command`` with ``run_env`` (from ``playbook_env``); its output and results."""
    proc = subprocess.run(command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    results = []
    if os.path.exists(results_file):
        with open(results_file) as handle:
            results = json.load(handle)
    return PlaybookRun(proc.returncode, proc.stdout, results)
