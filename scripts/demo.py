"""make demo: the whole flow for two domains against real local servers, no cloud credentials.

1. Start the lab on loopback: Knot DNS (TSIG dynamic updates) and nginx with a throwaway CA as the
   policy web host for mta-sts.<domain>.
2. tests/demo/demo-render.yml renders each domain's policy file (the filters; the id follows the bytes).
3. nginx serves them (what a policy_host role does on a real web host).
4. tests/demo/demo.yml verifies the served policy first, then publishes _mta-sts and _smtp._tls through
   RFC 2136, then checks the domain as a strict sender would: valid and in sync.
5. The same playbook again: nothing to change.
6. The live records, read back from the server. Then everything stops.
"""

import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.conftest import COLLECTIONS_PATH, link_collection  # noqa: E402
from tests.lab.knot import KnotLab  # noqa: E402
from tests.lab.pki import LabCA  # noqa: E402
from tests.lab.web import PolicyWeb  # noqa: E402

DOMAINS = ('alpha.example', 'beta.example')
WEB_ADDRESS = '127.0.0.5'   # not an address the tests use, so a demo can run beside them


def playbook(name, lab_dir, knot, extra_env=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_LOCALHOST_WARNING='false',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_NOCOLOR='1',
               MAILSEC_RFC2136_SERVER=knot.address, MAILSEC_RFC2136_KEY_NAME=knot.key_name,
               MAILSEC_RFC2136_KEY_SECRET=knot.key_secret, **(extra_env or {}))
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
               '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'dns_port=%d' % knot.port,
               '-e', 'lab_dir=%s' % lab_dir, os.path.join(REPO, 'tests', 'demo', name)]
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    print(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit('%s failed' % name)
    return proc.stdout


def main():
    link_collection()
    with tempfile.TemporaryDirectory(prefix='mta-sts-demo-') as lab_dir:
        ca = LabCA()
        ca.write_bundle(os.path.join(lab_dir, 'ca.pem'))
        knot = KnotLab(os.path.join(lab_dir, 'knot'), list(DOMAINS))
        web = PolicyWeb(os.path.join(lab_dir, 'web'), WEB_ADDRESS, 443, ca=ca)
        try:
            knot.start()
            for domain in DOMAINS:
                knot.add_records(domain, ['mta-sts.%s. 300 IN A %s' % (domain, WEB_ADDRESS)])
            print('== lab up: Knot on %s:%d, policy web host on %s:443' % (knot.address, knot.port, WEB_ADDRESS))

            print('== render the policy files')
            playbook('demo-render.yml', lab_dir, knot)
            for domain in DOMAINS:
                with open(os.path.join(lab_dir, 'policies', domain), 'rb') as handle:
                    web.serve('mta-sts.' + domain, handle.read())
            web.apply()
            print('== nginx serves https://mta-sts.{%s}/.well-known/mta-sts.txt' % ','.join(DOMAINS))

            print('== verify what is served, publish, verify as a sender')
            playbook('demo.yml', lab_dir, knot)
            print('== the same again: nothing changes')
            second = playbook('demo.yml', lab_dir, knot)
            if 'changed=0' not in second:
                raise SystemExit('the second run changed something')

            print('== live records at the server')
            for domain in DOMAINS:
                for name in ('_mta-sts.' + domain, '_smtp._tls.' + domain):
                    print('%-28s %s' % (name, ' '.join(knot.query(name, 'TXT'))))
        finally:
            web.stop()
            knot.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
