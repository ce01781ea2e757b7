"""Wall time of the policy_host role on nginx at N domains, side by side with a plain template loop.

For each N: a real nginx (tests/lab/nginx_site.py) on a free 127.0.0.x address, SAN
certificates of 100 names each from a lab CA given as files, and three timings through
``ansible-playbook``:

* the role's first converge and its no-change re-run;
* the same job done the plain way: one ``ansible.builtin.template`` task looping over the
  domains (one policy file each) plus one template for the nginx maps, first run and re-run
  (only up to ``--template-max`` domains: it costs about a second per domain per run);
* nginx's reload after the role's first converge (the reload command, which returns once
  the new configuration answers), to see whether it grows with N.

One domain in ten is then fetched from nginx to prove the role's run worked.
Usage: .venv/bin/python bench/policy_host.py [--domains 10,100,1000]
"""

import argparse
import grp
import os
import ssl
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import link_collection  # noqa: E402
from tests.integration.playbook import run_playbook  # noqa: E402
from tests.integration.policy_host_lab import https_get  # noqa: E402
from tests.lab.nginx_site import NginxSite  # noqa: E402
from tests.lab.pki import LabCA, write_pair  # noqa: E402
from tests.lab.web import free_loopback_addresses  # noqa: E402

NAMES_PER_CERTIFICATE = 100
WORKER_GROUP = 'nogroup'
POLICY = {'mode': 'enforce', 'mx': ['mx1.bench.example', '*.mx.bench.example'], 'max_age': 604800}

# The plain way: one template task per policy file, one template for the maps nginx reads.
POLICY_TEMPLATE = "{{ item.policy | mailsec.mta_sts.render_policy }}"
MAP_TEMPLATE = """\
{% for item in domains %}
mta-sts.{{ item.domain }} {{ data_dir }}/policies/mta-sts.{{ item.domain }}.txt;
{% endfor %}
"""


def domain_names(count):
    return ['d%04d.bench.example' % number for number in range(count)]


def issue_certificates(ca, directory, domains):
    """One SAN certificate per NAMES_PER_CERTIFICATE domains; returns the role's domain items."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    items = []
    for start in range(0, len(domains), NAMES_PER_CERTIFICATE):
        group = domains[start:start + NAMES_PER_CERTIFICATE]
        cert, key = write_pair(directory, 'group%03d' % (start // NAMES_PER_CERTIFICATE),
                               ca.issue(['mta-sts.' + domain for domain in group]))
        # nginx's workers read the key at each handshake (ssl_certificate holds a variable).
        os.chown(key, 0, grp.getgrnam(WORKER_GROUP).gr_gid)
        os.chmod(key, 0o640)
        items.extend({'domain': domain, 'policy': POLICY, 'certificate': cert, 'private_key': key}
                     for domain in group)
    return items


def timed(tasks, workdir):
    begin = time.monotonic()
    run = run_playbook(tasks, workdir=workdir)
    seconds = time.monotonic() - begin
    if run.returncode != 0:
        raise SystemExit('playbook failed: %r' % (run,))
    return seconds, run


def role_tasks(site, items, data_dir, address):
    return [{'ansible.builtin.include_role': {'name': 'mailsec.mta_sts.policy_host'}, 'vars': {
        'policy_host_domains': items,
        'policy_host_data_dir': data_dir,
        'policy_host_config_path': site.drop_in_path,
        'policy_host_config_test_command': site.test_command,
        'policy_host_reload_command': [site.reload_script],
        'policy_host_listen_addresses': [address],
        'policy_host_nginx_user': 'nobody',
    }}]


def template_tasks(items, data_dir, workdir):
    policy_template = os.path.join(workdir, 'policy.txt.j2')
    map_template = os.path.join(workdir, 'policies.map.j2')
    with open(policy_template, 'w') as handle:
        handle.write(POLICY_TEMPLATE)
    with open(map_template, 'w') as handle:
        handle.write(MAP_TEMPLATE)
    return [
        {'ansible.builtin.file': {'path': data_dir + '/policies', 'state': 'directory', 'mode': '0755'}},
        {'ansible.builtin.template': {'src': policy_template, 'mode': '0644',
                                      'dest': data_dir + '/policies/mta-sts.{{ item.domain }}.txt'},
         'loop': items, 'loop_control': {'label': '{{ item.domain }}'}},
        {'ansible.builtin.template': {'src': map_template, 'dest': data_dir + '/policies.map', 'mode': '0644'},
         'vars': {'domains': items, 'data_dir': data_dir}},
    ]


def spot_check(ca_path, address, items, served):
    """Fetch every tenth domain's policy from nginx; it must be the bytes the role reported."""
    context = ssl.create_default_context(cafile=ca_path)
    for item in items[::10]:
        answer = https_get(address, 'mta-sts.' + item['domain'], context=context)
        if answer.status != 200 or answer.body != served[item['domain']]['policy'].encode():
            raise SystemExit('%s: served %r' % (item['domain'], answer))


def measure(count, template_max):
    base = tempfile.mkdtemp(prefix='bench-policy-host-')
    os.chmod(base, 0o755)
    address = free_loopback_addresses(1, port=443)[0]
    ca = LabCA()
    ca_path = ca.write_bundle(os.path.join(base, 'ca.pem'))
    items = issue_certificates(ca, os.path.join(base, 'certs'), domain_names(count))
    site = NginxSite(os.path.join(base, 'nginx'), address=address)
    site.start()
    try:
        rows = {}
        play_dir = os.path.join(base, 'play')
        os.makedirs(play_dir)
        tasks = role_tasks(site, items, os.path.join(base, 'data'), address)
        rows['role, first converge'], run = timed(tasks, play_dir)
        served = fact_from(run)
        rows['role, no-change re-run'], run = timed(tasks, play_dir)
        if any(result.get('changed') for result in run.results):
            raise SystemExit('the no-change re-run changed something')
        reloads_before = site.reloads
        begin = time.monotonic()
        subprocess.run([site.reload_script], check=True)
        rows['nginx reload (wait until the new configuration answers)'] = time.monotonic() - begin
        assert site.reloads == reloads_before + 1
        spot_check(ca_path, address, items, served)
        if count <= template_max:
            plain = template_tasks(items, os.path.join(base, 'plain'), base)
            rows['template loop, first run'] = timed(plain, play_dir)[0]
            rows['template loop, no-change re-run'] = timed(plain, play_dir)[0]
        return rows
    finally:
        site.stop()
        subprocess.run(['rm', '-rf', base], check=False)


def fact_from(run):
    for result in run.results:
        facts = result.get('ansible_facts') or {}
        if 'policy_host_policies' in facts:
            return facts['policy_host_policies']
    raise SystemExit('the role set no policy_host_policies fact')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', default='10,100,1000', help='comma-separated domain counts')
    parser.add_argument('--template-max', type=int, default=100, help='largest count to time the template loop at')
    args = parser.parse_args()
    link_collection()
    counts = [int(count) for count in args.domains.split(',')]
    table = dict((count, measure(count, args.template_max)) for count in counts)
    print('| run | ' + ' | '.join('%d domains (s)' % count for count in counts) + ' |')
    print('| --- |' + ' ---: |' * len(counts))
    for row in table[counts[0]]:
        print('| %s | %s |' % (row, ' | '.join('%.1f' % table[count][row] if row in table[count] else 'not run'
                                               for count in counts)))


if __name__ == '__main__':
    main()
