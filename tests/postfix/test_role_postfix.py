"""The postfix role through real ansible-playbook runs, against a running Postfix of its own (the sending
Postfix of mail_lab, configuration directory in a temp dir), with the resolver installed from the local
wheels into a temp venv, and the resolver's service managed through a stand-in systemctl (systemd does not
run here). The tests run in file order on one lab; each starts from the state the previous one left.
Deliveries are tests/postfix/test_deliveries.py's business; this file is about the role itself: what it
writes, that a second run writes nothing, check and diff mode, bad input, and the handler order."""

import json
import os
import shutil
import subprocess

import jinja2
import pytest
import yaml

from tests.integration.playbook import REPO, run_playbook
from tests.lab.netns import bind_mount
from tests.lab.pki import LabCA
from tests.postfix.mail_lab import SendingPostfix, StsResolver

WHEELS = os.path.join(REPO, '.build', 'wheels', 'mta-sts-resolver')
# Not the resolver's own defaults (127.0.0.1:8461), so a setting lost on the way shows.
RESOLVER_HOST, RESOLVER_PORT = '127.0.0.2', 18461
UNIT = 'mailsec-mta-sts-resolver.service'
MX_NAMES = ['mx1.role.example', 'mx2.role.example']
ADMIN_MAP = 'texthash:/etc/postfix/admin_tls_policy'


# systemd does not run here: this stands in for systemctl, keeping each unit's enabled/active state in a
# JSON file and logging every command that changes something, so the role's systemd mode can run.
FAKE_SYSTEMCTL = r'''#!/usr/bin/env python3
import json, os, sys
state_dir = os.environ['FAKE_SYSTEMD_DIR']
path = os.path.join(state_dir, 'state.json')
state = json.load(open(path)) if os.path.exists(path) else {}
args = [arg for arg in sys.argv[1:] if not arg.startswith('-')]
command, unit = args[0], (args[1].strip("'") if len(args) > 1 else None)
known = unit and os.path.exists(os.path.join('/etc/systemd/system', unit))
units = state.setdefault('units', {})
current = units.setdefault(unit, {'enabled': False, 'active': False}) if unit else None
if command == 'show':
    print('Id=%s' % unit)
    print('LoadState=%s' % ('loaded' if known else 'not-found'))
    print('ActiveState=%s' % ('active' if current['active'] else 'inactive'))
    print('SubState=%s' % ('running' if current['active'] else 'dead'))
elif command == 'is-enabled':
    print('enabled' if current['enabled'] else 'disabled')
    sys.exit(0 if current['enabled'] else 1)
elif command in ('enable', 'start', 'restart', 'daemon-reload'):
    if command == 'enable':
        current['enabled'] = True
    if command in ('start', 'restart'):
        if not known:
            sys.exit('Unit %s not found.' % unit)
        current['active'] = True
    with open(os.path.join(state_dir, 'calls'), 'a') as log:
        log.write(' '.join([command] + ([unit] if unit else [])) + '\n')
else:
    sys.exit('fake systemctl: %s not handled' % command)
json.dump(state, open(path, 'w'))
'''


class RoleLab:
    def __init__(self, workdir, ca):
        self.workdir = workdir
        self.ca_file = ca.write_bundle(self.path('ca.pem'))
        self.certs = [self._pair(ca, 'mx1', [MX_NAMES[0]]), self._pair(ca, 'mx2', [MX_NAMES[1]])]
        self.reloads = self.path('reloads')
        self.systemd = self.path('systemd')
        self.unit_dir = self.path('systemd', 'units')
        # The stand-in systemctl first on PATH, for every run.
        self.env = {'PATH': self.systemd + ':' + os.environ['PATH'], 'FAKE_SYSTEMD_DIR': self.systemd}
        # The admin's own entry, which the role must keep ahead of its own.
        self.postfix = SendingPostfix(self.path('postfix'), listeners=[('127.0.0.1', 25, ())],
                                      settings={'smtp_tls_policy_maps': ADMIN_MAP})

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def _pair(self, ca, stem, names):
        cert, key = ca.issue(names)
        paths = {}
        for kind, pem in (('cert', cert), ('key', key)):
            paths[kind] = self.path('%s.%s' % (stem, kind))
            with open(paths[kind], 'wb') as handle:
                handle.write(pem)
        return dict(names=names, **paths)

    def role_vars(self, **changes):
        conf = self.postfix.conf_dir
        values = {
            'postfix_config_dir': conf,
            'postfix_check_command': self.postfix.check_command,
            # Counts the reloads, then reloads the real Postfix.
            'postfix_reload_command': "sh -c 'echo reload >> %s && exec postfix -c %s reload'" % (self.reloads, conf),
            'postfix_tls_ca_file': self.ca_file,
            'postfix_tls_partners': [
                {'domain': 'partner.example', 'level': 'secure', 'match': ['mx.partner.example']},
                {'domain': 'Clear.Example', 'level': 'encrypt'},
            ],
            'postfix_mta_sts_resolver_venv': self.path('venv'),
            'postfix_mta_sts_resolver_wheels': WHEELS,
            'postfix_mta_sts_resolver_config': self.path('mta-sts-daemon.yml'),
            'postfix_mta_sts_resolver_host': RESOLVER_HOST,
            'postfix_mta_sts_resolver_port': RESOLVER_PORT,
            'postfix_mta_sts_resolver_cache_grace': 5,
            'postfix_mta_sts_resolver_zones': {'strict': {'strict_testing': True}},
            'postfix_mta_sts_resolver_service': 'systemd',
            'postfix_inbound_certificates': self.certs,
            'postfix_inbound_verify': True,
            'postfix_inbound_verify_ca_file': self.ca_file,
        }
        values.update(changes)
        return values

    def run(self, check=False, diff=False, **changes):
        return run_playbook([{'ansible.builtin.include_role': {'name': 'mailsec.mta_sts.postfix'}}], env=self.env,
                            check=check, diff=diff, play_vars=self.role_vars(**changes), workdir=self.path())

    def start_fake_systemd(self):
        """The stand-in systemctl, and (a context manager) an empty /etc/systemd/system of this namespace's own."""
        os.makedirs(self.unit_dir)
        systemctl = os.path.join(self.systemd, 'systemctl')
        with open(systemctl, 'w') as handle:
            handle.write(FAKE_SYSTEMCTL)
        os.chmod(systemctl, 0o755)
        return bind_mount(self.unit_dir, '/etc/systemd/system', 'the stand-in systemd')

    def systemctl_calls(self):
        """The systemctl commands that changed something since the last call."""
        path = os.path.join(self.systemd, 'calls')
        if not os.path.exists(path):
            return []
        with open(path) as handle:
            calls = handle.read().splitlines()
        os.unlink(path)
        return calls

    def postconf(self, *names):
        # "name = value", or "name =" when empty.
        pairs = (line.split('=', 1) for line in self.postfix.postconf('-n', *names).splitlines())
        return dict((name.strip(), value.strip()) for name, value in pairs)

    def snapshot(self):
        """Bytes and mtime of every file the role writes (the venv aside)."""
        paths = [os.path.join(self.postfix.conf_dir, name) for name in sorted(os.listdir(self.postfix.conf_dir))]
        paths.append(self.path('mta-sts-daemon.yml'))
        taken = {}
        for path in paths:
            with open(path, 'rb') as handle:
                taken[path] = (handle.read(), os.stat(path).st_mtime_ns)
        return taken

    def reload_count(self):
        if not os.path.exists(self.reloads):
            return 0
        with open(self.reloads) as handle:
            return len(handle.read().splitlines())


def task_name(result):
    """The task's own name, without the role's prefix."""
    return result['_task'].split(' : ', 1)[-1]


def task_results(run, name):
    return [result for result in run.results if task_name(result) == name]


def recap_changed(output):
    line = [line for line in output.splitlines() if line.startswith('localhost')][-1]
    return int(line.split('changed=')[1].split()[0])


@pytest.fixture(scope='module')
def lab(tmp_path_factory, lab_ca, dnssec_lab):  # pylint: disable=unused-argument
    if not os.path.isdir(WHEELS):
        pytest.fail('no wheels in %s: run scripts/install-deps (it downloads them)' % WHEELS)
    lab = RoleLab(str(tmp_path_factory.mktemp('role')), lab_ca)
    # The postfix user reaches the queue inside the 0700 pytest directory only through this.
    os.chmod(lab.workdir, 0o755)
    with lab.start_fake_systemd():
        try:
            lab.postfix.start()
            yield lab
        finally:
            lab.postfix.stop()


def test_first_run_configures_postfix_and_the_resolver(lab):
    run = lab.run()
    assert run.returncode == 0, run
    settings = lab.postconf()
    conf = lab.postfix.conf_dir
    # The admin's table first, then the partners, then the MTA-STS resolver on the configured port.
    assert settings['smtp_tls_policy_maps'].replace(',', ' ').split() == [
        ADMIN_MAP, 'hash:%s/mailsec_tls_partners' % conf, 'socketmap:inet:%s:%d:postfix' % (RESOLVER_HOST, RESOLVER_PORT)]
    assert settings['smtp_tls_CAfile'] == lab.ca_file
    assert settings['smtp_tls_security_level'] == 'may'
    assert settings['smtpd_tls_security_level'] == 'may'
    assert settings['smtpd_tls_protocols'] == '>=TLSv1.2'
    assert settings['smtpd_tls_mandatory_protocols'] == '>=TLSv1.2'
    assert settings['smtpd_tls_chain_files'].replace(',', ' ').split() == [lab.certs[0]['key'], lab.certs[0]['cert']]
    assert settings['tls_server_sni_maps']
    # The fact the role sets is the module's return, for later tasks.
    fact = task_results(run, 'Set the fact with the result of the Postfix configuration')[0]['ansible_facts']['postfix_tls_result']
    assert fact['policy_maps'] == settings['smtp_tls_policy_maps'].replace(',', ' ').split()
    assert fact['postfix_version'] == lab.postfix.postconf('-d', '-h', 'mail_version').strip()
    # Partner domains are looked up as Postfix will, case-folded.
    partners = 'hash:%s/mailsec_tls_partners' % conf
    assert postmap(partners, 'partner.example') == 'secure match=mx.partner.example'
    assert postmap(partners, 'clear.example') == 'encrypt'

    # The handlers: one check, one reload, in that order, after which the probe found both names served
    # with their own certificates (SNI) that verify against the lab CA.
    names = [task_name(result) for result in run.results]
    assert names.index('Postfix check') < names.index('Postfix reload')
    assert lab.reload_count() == 1
    probe = task_results(run, 'Probe every inbound MX name with STARTTLS as an MTA-STS enforcing sender does')
    assert [(r['host'], r['certificate_valid'], r['names']) for r in probe[0]['results']] == [
        (MX_NAMES[0], True, [MX_NAMES[0]]), (MX_NAMES[1], True, [MX_NAMES[1]])]

    # Postfix 3.7 here: every newer feature is skipped, each with its reason, and the role says so.
    skipped = task_results(run, 'Say which newer Postfix features were skipped, and why')
    assert [line.split(':')[0] for line in skipped[0]['msg']] == ['tlsrpt', 'enforce_sts_mx_patterns', 'requiretls']

    # systemd mode: the unit written, systemd reloaded, the resolver enabled and started, and not restarted at
    # the end (it started with this configuration).
    assert lab.systemctl_calls() == ['daemon-reload', 'enable ' + UNIT, 'start ' + UNIT]
    with open(os.path.join('/etc/systemd/system', UNIT)) as handle:
        exec_start = 'ExecStart=%s -c %s\n' % (lab.path('venv', 'bin', 'mta-sts-daemon'), lab.path('mta-sts-daemon.yml'))
        assert exec_start in handle.read()


def test_the_resolver_runs_with_the_rendered_configuration(lab):
    config = lab.path('mta-sts-daemon.yml')
    with open(config) as handle:
        written = yaml.safe_load(handle)
    assert sorted(written) == ['cache', 'cache_grace', 'default_zone', 'host', 'port', 'proactive_policy_fetching',
                               'reuse_port', 'shutdown_timeout', 'zones']
    # What the resolver's own loader makes of the file.
    loaded = json.loads(subprocess.run(
        [lab.path('venv', 'bin', 'python'), '-c',
         'import json, sys; from postfix_mta_sts_resolver.utils import load_config; '
         'print(json.dumps(load_config(sys.argv[1])))', config],
        capture_output=True, text=True, check=True, timeout=30).stdout)
    assert (loaded['host'], loaded['port'], loaded['cache_grace']) == (RESOLVER_HOST, RESOLVER_PORT, 5)
    assert loaded['cache'] == {'type': 'internal', 'options': {'cache_size': 10000}}
    assert loaded['default_zone'] == {'strict_testing': False, 'timeout': 4, 'require_sni': True, 'tlsrpt': False}
    assert loaded['zones'] == {'strict': {'strict_testing': True, 'timeout': 4, 'require_sni': True, 'tlsrpt': False}}
    # The daemon from the venv serves Postfix's map on that port: a lab domain without a policy is
    # "not found" (exit 1, nothing on stderr), where a daemon that is not there is a query error.
    resolver = StsResolver(lab.path('venv'), config, lab.ca_file, lab.path('resolver.log'), address=RESOLVER_HOST,
                           port=RESOLVER_PORT)
    resolver.start()
    try:
        answer = subprocess.run(['postmap', '-q', 'plain.example', lab.postconf()['smtp_tls_policy_maps'].split()[-1]],
                                capture_output=True, text=True, timeout=30, check=False)
    finally:
        resolver.stop()
    assert (answer.returncode, answer.stdout, answer.stderr) == (1, '', '')
    failed = subprocess.run(['postmap', '-q', 'plain.example', 'socketmap:inet:%s:%d:postfix' % (RESOLVER_HOST, RESOLVER_PORT)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert 'query error' in failed.stderr


def test_second_run_changes_nothing(lab):
    before = lab.snapshot()
    run = lab.run()
    assert run.returncode == 0, run
    assert recap_changed(run.output) == 0
    assert [result['_task'] for result in run.results if result.get('changed')] == []
    assert lab.snapshot() == before
    assert lab.reload_count() == 1
    assert lab.systemctl_calls() == []


def test_check_diff_shows_the_change_and_writes_nothing(lab):
    before = lab.snapshot()
    partners = [{'domain': 'partner.example', 'level': 'verify'}]
    run = lab.run(check=True, diff=True, postfix_tls_partners=partners, postfix_tls_security_level='encrypt',
                  postfix_mta_sts_resolver_cache_grace=30)
    assert run.returncode == 0, run
    assert '-smtp_tls_security_level = may\n+smtp_tls_security_level = encrypt' in run.output
    assert '-partner.example secure match=mx.partner.example\n-clear.example encrypt\n+partner.example verify' in run.output
    assert '+cache_grace: 30' in run.output
    assert lab.snapshot() == before
    assert lab.reload_count() == 1
    assert lab.systemctl_calls() == []


def test_check_mode_on_a_new_host_with_dane_writes_nothing(lab, dnssec_lab):
    before = lab.snapshot()
    fresh = lab.path('new-host')
    run = lab.run(check=True, postfix_mta_sts_resolver_venv=os.path.join(fresh, 'venv'),
                  postfix_mta_sts_resolver_config=os.path.join(fresh, 'mta-sts-daemon.yml'),
                  postfix_dane=True, postfix_dane_dnssec_probe='soa:' + dnssec_lab.signed_probe.rstrip('.'),
                  postfix_dane_bogus_name=dnssec_lab.bogus_name.rstrip('.'))
    assert run.returncode == 0, run
    assert lab.systemctl_calls() == []
    planned = task_results(run, "Configure Postfix's TLS settings, policy maps and certificates")[0]
    assert planned['changed'] and planned['settings']['smtp_tls_security_level'] == 'dane'
    assert not os.path.exists(fresh)
    assert lab.snapshot() == before
    assert lab.reload_count() == 1


BAD_INPUT = [
    ('unknown level', {'postfix_tls_partners': [{'domain': 'a.example', 'level': 'mandatory'}]},
     ['postfix_tls_partners', 'level', 'mandatory']),
    ('malformed partner domain', {'postfix_tls_partners': [{'domain': 'bad..example', 'level': 'secure'}]},
     ['postfix_tls_partners[0].domain']),
    ('duplicate partner', {'postfix_tls_partners': [{'domain': 'a.example', 'level': 'secure'},
                                                    {'domain': 'A.example', 'level': 'encrypt'}]},
     ['postfix_tls_partners[1].domain']),
    ('dane partner without DANE', {'postfix_tls_partners': [{'domain': 'a.example', 'level': 'dane-only'}]},
     ['postfix_tls_partners[0].level', 'postfix_dane']),
    ('missing certificate', {'postfix_inbound_certificates': [{'names': [MX_NAMES[0]], 'cert': '/nonexistent.crt',
                                                               'key': '/nonexistent.key'}]},
     ['postfix_inbound_certificates[0].cert']),
    ('certificate and key mismatch', 'mismatch', ['postfix_inbound_certificates[0]', 'key']),
    ('two CA sources', {'postfix_tls_ca_path': '/etc/ssl/certs'}, ['postfix_tls_ca_file', 'postfix_tls_ca_path', 'set exactly one']),
    ('sqlite cache without a file', {'postfix_mta_sts': True, 'postfix_mta_sts_resolver_cache_type': 'sqlite'},
     ['postfix_mta_sts_resolver_cache_options.filename']),
    # A Python without ensurepip (Debian without python3-venv) cannot make the venv: said before pip tries.
    ('no venv support', 'no_venv', ['postfix_mta_sts_resolver_python', 'ensurepip', 'install python3-venv']),
]


def test_bad_input_fails_naming_the_field_before_any_change(lab):
    before = lab.snapshot()
    # One playbook for every case: each is a block whose rescue records the failure and goes on.
    tasks = []
    for case, changes, _expected in BAD_INPUT:
        if changes == 'mismatch':
            changes = {'postfix_inbound_certificates': [dict(lab.certs[0], key=lab.certs[1]['key'])]}
        elif changes == 'no_venv':
            changes = {'postfix_mta_sts': True, 'postfix_mta_sts_resolver_venv': lab.path('no-venv'),
                       'postfix_mta_sts_resolver_python': python_without_ensurepip(lab)}
        tasks.append({'name': case, 'block': [{'ansible.builtin.include_role': {'name': 'mailsec.mta_sts.postfix'},
                                               'vars': changes}],
                      'rescue': [{'name': 'failed: ' + case, 'ansible.builtin.debug': {'msg': '{{ ansible_failed_result.msg }}'}}]})
    # Without MTA-STS the venv tasks are left out, which saves time; every case fails in the checks before them.
    run = run_playbook(tasks, play_vars=lab.role_vars(postfix_mta_sts=False), workdir=lab.path())
    assert run.returncode == 0, run
    for case, _changes, expected in BAD_INPUT:
        rescued = task_results(run, 'failed: ' + case)
        assert len(rescued) == 1, (case, run)
        for text in expected:
            assert text in rescued[0]['msg'], (case, rescued[0]['msg'])
    assert not [result['_task'] for result in run.results if result.get('changed')]
    assert lab.snapshot() == before
    assert lab.reload_count() == 1


def python_without_ensurepip(lab):
    path = lab.path('python-without-ensurepip')
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\nexec python3 -c "import sys; sys.modules[\'ensurepip\'] = None; exec(sys.argv[1])" "$2"\n')
    os.chmod(path, 0o755)
    return path


def test_inbound_verify_fails_naming_each_name_that_does_not_verify(lab):
    # The certificates are served, but the probe trusts another CA: neither name verifies.
    other_ca = LabCA(name='another lab root CA').write_bundle(lab.path('other-ca.pem'))
    run = lab.run(postfix_inbound_verify_ca_file=other_ca)
    assert run.returncode != 0
    failed = task_results(run, 'Every inbound MX name has a certificate that verifies and covers it')[0]
    assert failed['_status'] == 'failed'
    assert failed['msg'].startswith('postfix_inbound_certificates: %s: certificate: ' % MX_NAMES[0]), failed['msg']
    assert '; %s: certificate: ' % MX_NAMES[1] in failed['msg']
    assert other_ca in failed['msg']
    assert lab.reload_count() == 1


def test_a_failing_postfix_check_stops_the_reload(lab):
    run = lab.run(postfix_tls_security_level='encrypt', postfix_check_command='false', postfix_mta_sts_resolver_service='none')
    assert run.returncode != 0
    assert 'postfix_mta_sts_resolver_service is none' in task_results(run, 'Say who starts the resolver')[0]['msg']
    assert [r['_status'] for r in task_results(run, 'Postfix check')] == ['failed']
    assert task_results(run, 'Postfix reload') == []
    assert lab.reload_count() == 1
    # main.cf has the change; the running Postfix does not. A change back with a check that passes is
    # reloaded, so the assertions above can fail.
    assert lab.postconf()['smtp_tls_security_level'] == 'encrypt'
    assert lab.systemctl_calls() == []
    # The reload is not forgotten: once the check passes, a run with nothing left to change reloads.
    run = lab.run(postfix_tls_security_level='encrypt', postfix_mta_sts_resolver_service='none')
    assert run.returncode == 0, run
    assert task_results(run, 'Configure Postfix\'s TLS settings, policy maps and certificates')[0]['changed'] is False
    assert [task_name(r) for r in run.results if task_name(r).startswith('Postfix')] == [
        'Postfix check', 'Postfix reload', 'Postfix reload done']
    assert lab.reload_count() == 2
    assert not os.path.exists(os.path.join(lab.postfix.conf_dir, '.mailsec-reload-pending'))
    # With a new cache grace too: the running resolver is restarted first, then Postfix checked and reloaded.
    # (The last test that runs the role: it leaves the grace behind.)
    run = lab.run(postfix_mta_sts_resolver_cache_grace=10)
    assert run.returncode == 0, run
    assert [task_name(r) for r in run.results if task_name(r).startswith('Postfix')] == [
        'Postfix mta-sts resolver restart', 'Postfix check', 'Postfix reload', 'Postfix reload done']
    assert lab.systemctl_calls() == ['daemon-reload', 'restart ' + UNIT]
    assert lab.reload_count() == 3
    assert lab.postconf()['smtp_tls_security_level'] == 'may'


@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='no systemd-analyze here')
def test_the_systemd_unit_passes_systemd_analyze_verify(lab):
    # systemd is not running here, so the role's systemd mode cannot run; its unit template is rendered
    # as the role would, with the test venv's real daemon as ExecStart.
    template_dir = os.path.join(REPO, 'roles', 'postfix', 'templates')
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir), keep_trailing_newline=True,
                                  undefined=jinja2.StrictUndefined).get_template('mailsec-mta-sts-resolver.service.j2')
    text = template.render(ansible_managed='Ansible managed', postfix_mta_sts_resolver_venv=lab.path('venv'),
                           postfix_mta_sts_resolver_config=lab.path('mta-sts-daemon.yml'),
                           postfix_mta_sts_resolver_user='mailsec-mta-sts')
    # systemd-analyze exits 0 on a setting it cannot parse, saying so on stderr: silence is the pass.
    assert verify_unit(lab.path('units'), text) == (0, '')
    assert 'Failed to parse service type' in verify_unit(lab.path('units'), text.replace('Type=notify', 'Type=notifyx'))[1]


def verify_unit(directory, text):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'mailsec-mta-sts-resolver.service')
    with open(path, 'w') as handle:
        handle.write(text)
    out = subprocess.run(['systemd-analyze', 'verify', path], capture_output=True, text=True, timeout=60, check=False)
    return out.returncode, (out.stdout + out.stderr).strip()


def postmap(table, key):
    return subprocess.run(['postmap', '-q', key, table], capture_output=True, text=True, timeout=30,
                          check=False).stdout.strip()
