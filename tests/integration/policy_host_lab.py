"""Shared pieces of the policy_host role tests: DNS, certificates, the role through ansible-playbook, clients.

``PolicyHostLab`` holds a Knot serving one zone per lab domain, a LabCA, and a base directory that the
web server's unprivileged workers can enter (pytest's own temp directories are mode 0700). Certificates
are written there with their keys readable by the workers' group (``WORKER_GROUP``), as on a real host.
"""

import grp
import http.client
import os
import shutil
import socket
import ssl
import tempfile

from tests.integration.playbook import run_playbook
from tests.lab.knot import KnotLab
from tests.lab.pki import LabCA, write_pair

ROLE = 'mailsec.mta_sts.policy_host'
POLICY_PATH = '/.well-known/mta-sts.txt'
WORKER_USER = 'nobody'
WORKER_GROUP = 'nogroup'


class Answer:
    def __init__(self, status, headers, body, version=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.version = version

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return 'Answer(%s, %r, %r)' % (self.status, self.headers, self.body[:200])


class PolicyHostLab:
    def __init__(self, domains, address):
        self.base = tempfile.mkdtemp(prefix='policy-host-')
        os.chmod(self.base, 0o755)
        self.domains = list(domains)
        self.address = address
        self.knot = KnotLab(self.path('knot'), self.domains)
        self.ca = LabCA()
        self.ca_path = self.ca.write_bundle(self.path('ca.pem'))

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    @property
    def nameservers(self):
        return ['%s:%d' % (self.knot.address, self.knot.port)]

    def start(self):
        self.knot.start()
        for domain in self.domains:
            self.knot.add_records(domain, [
                'mta-sts.%s. 300 IN A %s' % (domain, self.address),
                '%s. 300 IN MX 10 mx1.%s.' % (domain, domain),
                'mx1.%s. 300 IN A 127.0.0.1' % domain,
            ])
        return self

    def stop(self):
        self.knot.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def publish_id(self, domain, policy_id):
        self.knot.add_records(domain, '_mta-sts.%s. 300 IN TXT "v=STSv1; id=%s;"' % (domain, policy_id))

    def certificate(self, stem, names, **issue):
        """Issue a certificate for ``names`` into the base dir; the key group-readable by the workers."""
        os.makedirs(self.path('certs'), mode=0o755, exist_ok=True)
        cert, key = write_pair(self.path('certs'), stem, self.ca.issue(names, **issue))
        os.chown(key, 0, grp.getgrnam(WORKER_GROUP).gr_gid)
        os.chmod(key, 0o640)
        return cert, key

    def apply(self, role_vars, check=False, diff=False, **run_options):
        """Run the role once with ``role_vars``; a last task shows the fact policy_host_policies.
        ``run_options``: more arguments of ``run_playbook`` (``env``, ``verbosity``)."""
        tasks = [
            {'name': 'policy host', 'ansible.builtin.include_role': {'name': ROLE}, 'vars': role_vars},
            {'name': 'show the fact', 'ansible.builtin.debug': {'var': 'policy_host_policies'}},
        ]
        return run_playbook(tasks, check=check, diff=diff, workdir=tempfile.mkdtemp(prefix='play-', dir=self.base),
                            **run_options)

    def validate(self, domains):
        """The collection's validate lookup for ``domains`` against the lab DNS and CA, through ansible-playbook."""
        run = run_playbook([{
            'name': 'validate',
            'ansible.builtin.debug': {'msg': "{{ query('mailsec.mta_sts.validate', *domains, nameservers=ns, "
                                             "ca_path=ca, timeout=5) }}"},
            'vars': {'domains': list(domains), 'ns': self.nameservers, 'ca': self.ca_path},
        }], workdir=tempfile.mkdtemp(prefix='play-', dir=self.base))
        assert run.returncode == 0, run
        return dict((result['domain'], result) for result in run.result['msg'])


MODULE_TASK = 'Write the policies, map files and server configuration'


def module_result(run):
    """The result of the role's policy_site task (the last one, when the role ran it twice)."""
    return task_results(run, MODULE_TASK)[-1]


def served_files(lab, server):
    """What the role keeps on disk for ``server`` (a lab web server with a ``drop_in_path``)."""
    return snapshot(lab.path('data'), server.drop_in_path)


def fails_and_keeps_everything(lab, server, role_vars, expected, fetch_alpha):
    """Run the role with ``role_vars``: it must fail with every text of ``expected`` in its message, leave every
    file as it was, not reload ``server``, and ``fetch_alpha()`` must still get the same answer."""
    before = served_files(lab, server)
    reloads = server.reloads
    served = fetch_alpha().body
    run = lab.apply(role_vars)
    assert run.returncode != 0, run
    failed = [result for result in run.results if result['_status'] == 'failed'][-1]
    for text in expected:
        assert text in failed['msg'], failed['msg']
    assert served_files(lab, server) == before
    assert server.reloads == reloads
    assert fetch_alpha().body == served
    return failed


def every_domain_valid(lab, run, domains):
    """Publish each domain's id from the fact of ``run``, then require the validate lookup to find each domain
    valid, with no error finding, under that id."""
    fact = task_results(run, 'show the fact')[-1]['policy_host_policies']
    for domain in domains:
        lab.publish_id(domain, fact[domain]['id'])
    results = lab.validate(domains)
    for domain in domains:
        errors = [finding for finding in results[domain]['findings'] if finding['severity'] == 'error']
        assert results[domain]['valid'] is True and errors == [], results[domain]
        assert results[domain]['id'] == fact[domain]['id']


def second_run_changes_nothing(lab, server, role_vars):
    """Run the role again with the ``role_vars`` of the last run: no task changes, every file stays as it was
    (content and modification time), and ``server`` is not reloaded."""
    before = served_files(lab, server)
    reloads = server.reloads
    run = lab.apply(role_vars)
    assert run.returncode == 0, run
    assert [result['_task'] for result in run.results if result.get('changed')] == []
    assert module_result(run)['changed_policies'] == []
    assert served_files(lab, server) == before
    assert server.reloads == reloads


def only_the_policy_file_changes(lab, server, role_vars, domain):
    """Run the role with ``role_vars`` that change ``domain``'s policy and nothing else: only its policy file is
    rewritten, the configuration does not change, and ``server`` is not reloaded."""
    before = served_files(lab, server)
    reloads = server.reloads
    run = lab.apply(role_vars)
    assert run.returncode == 0, run
    result = module_result(run)
    assert (result['changed'], result['config_changed'], result['changed_policies']) == (True, False, [domain])
    after = served_files(lab, server)
    path = os.path.join(lab.path('data'), 'policies', 'mta-sts.%s.txt' % domain)
    assert [changed for changed in after if after[changed] != before[changed]] == [path]
    assert sorted(after) == sorted(before)
    assert server.reloads == reloads


def task_results(run, name):
    return [result for result in run.results if result['_task'].split(' : ')[-1] == name]


def snapshot(*roots):
    """``{path: (bytes, mtime_ns)}`` of every file under ``roots`` (files or directories)."""
    files = {}
    for root in roots:
        if os.path.isfile(root):
            paths = [root]
        else:
            paths = [os.path.join(directory, name) for directory, _dirs, names in os.walk(root) for name in names]
        for path in paths:
            with open(path, 'rb') as handle:
                files[path] = (handle.read(), os.stat(path).st_mtime_ns)
    return files


def https_get(address, host, path=POLICY_PATH, context=None, port=443, headers=None):
    """GET ``path`` from ``host`` at ``address`` over TLS with SNI; no redirect is followed. ``headers`` are
    added to the request's (a Host of its own is sent instead of ``host``)."""
    with socket.create_connection((address, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            version = tls.version()
            connection = http.client.HTTPConnection(host)
            connection.sock = tls
            connection.request('GET', path, headers=dict({'Host': host}, **(headers or {})))
            response = connection.getresponse()
            return Answer(response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read(),
                          version)


def http_get(address, host, path, port=80):
    connection = http.client.HTTPConnection(address, port, timeout=5)
    try:
        connection.request('GET', path, headers={'Host': host})
        response = connection.getresponse()
        return Answer(response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read())
    finally:
        connection.close()


def legacy_tls_client():
    """A client that offers TLS 1.0 and 1.1 only (OpenSSL security level 0), trusting nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers('DEFAULT:@SECLEVEL=0')
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context
