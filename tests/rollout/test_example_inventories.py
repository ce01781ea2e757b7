"""The example inventories of playbooks/inventories/ pass the playbooks' syntax check and the inventory checks
(playbooks/tasks/check_inventory.yml) as they are, and the same checks refuse a broken copy, naming the domain
and the field. Nothing here needs a server."""

import json
import os

import pytest

from tests.integration.playbook import playbook_env, run_command
from tests.rollout.conftest import ANSIBLE_PLAYBOOK, PLAYBOOKS

EXAMPLES = ['rfc2136', 'route53', 'cloudflare', 'zonefile']


def run(arguments, workdir, extra_vars=None):
    results_file = os.path.join(workdir, 'results.json')
    command = [ANSIBLE_PLAYBOOK] + arguments
    if extra_vars:
        command += ['-e', json.dumps(extra_vars)]
    return run_command(command, playbook_env(results_file), results_file)


def check_only(inventory, workdir, extra_vars=None):
    """The inventory checks alone, as every playbook starts with them, against ``inventory``."""
    play = os.path.join(workdir, 'check.yml')
    with open(play, 'w') as handle:
        handle.write('- hosts: localhost\n  gather_facts: false\n  tasks:\n'
                     '    - ansible.builtin.include_tasks: %s\n' % os.path.join(PLAYBOOKS, 'tasks', 'check_inventory.yml'))
    return run(['-i', inventory, play], workdir, extra_vars)


def hosts(example):
    return os.path.join(PLAYBOOKS, 'inventories', example, 'hosts.yml')


@pytest.mark.parametrize('example', EXAMPLES)
def test_example_inventory_passes_the_syntax_check_and_the_inventory_checks(example, tmp_path):
    # By their names in the collection, as docs/gitops.md runs them.
    checked = run(['-i', hosts(example), '--syntax-check', 'mailsec.mta_sts.site', 'mailsec.mta_sts.drift',
                   'mailsec.mta_sts.retire', 'mailsec.mta_sts.tlsa_rollover'], str(tmp_path))
    assert checked.returncode == 0, checked
    checked = check_only(hosts(example), str(tmp_path))
    assert checked.returncode == 0, checked
    assert [result['_task'] for result in checked.results if result['_status'] == 'failed'] == []


def test_a_broken_copy_fails_naming_the_domain_and_the_field(tmp_path):
    checked = check_only(hosts('rfc2136'), str(tmp_path), {'mta_sts_domains': [
        {'domain': 'example.com', 'policy': {'mode': 'enforce', 'mx': ['mx1.example.com'], 'max_age': 1209600}},
        {'domain': 'example.org', 'policy': {'mode': 'testing', 'mx': ['mx1.example.com'], 'max_age': 86400},
         'host_record': {'adresses': ['192.0.2.10']}},
    ]})
    assert checked.returncode != 0
    assert 'mta_sts_domains[1] (example.org).host_record: must be {addresses: [IP, ...]} or {target: host name}' \
        in checked.output, checked
