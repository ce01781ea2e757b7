"""Inbound: the role makes a Postfix fit for its own domain's ``enforce`` policy.

A real Postfix (``SendingPostfix``, inside ``scripts/lab-netns``) answers on
127.0.0.1:25; one real ``ansible-playbook`` run of the role gives it a
certificate for each of two MX names (SNI map for the second), TLS 1.2 or
newer, and then the role's own check probes both names.  The tests check it
from outside with ``openssl s_client`` as a sender does:

* each MX name, sent as SNI, gets a certificate that verifies against the
  lab CA and covers that name (and the two names get different certificates,
  so the SNI map is what picks them);
* TLS 1.1 is refused.  The same client first talks TLS 1.1 to a control
  listener of the same Postfix that differs only in ``smtpd_tls_protocols``:
  the client and this OpenSSL can do TLS 1.1 here, so the refusal is the
  role's setting and not something the test could not have done anyway.
"""

import os
import shutil
import subprocess
import tempfile

import pytest
from cryptography import x509

from tests.integration.playbook import run_playbook
from tests.lab.pki import write_pair
from tests.postfix.mail_lab import SendingPostfix

ROLE = 'mailsec.mta_sts.postfix'
NAMES = ('mx1.inbound.example', 'mx2.inbound.example')
MX = ('127.0.0.1', 25)
CONTROL = ('127.0.0.1', 2526)
# TLS 1.1 needs OpenSSL security level 0 on both ends.  Set for the whole Postfix (the
# role does not manage cipher lists), so the control and the MX differ in protocols only.
OLD_TLS_CIPHERS = {'tls_high_cipherlist': 'DEFAULT:@SECLEVEL=0', 'smtpd_tls_ciphers': 'high'}
CONTROL_OPTIONS = ('smtpd_tls_protocols=>=TLSv1.1', 'smtpd_tls_mandatory_protocols=>=TLSv1.1')


@pytest.fixture(scope='module')
def inbound(lab_ca):
    work = tempfile.mkdtemp(prefix='mailsec-inbound-')
    server = SendingPostfix(os.path.join(work, 'postfix'), settings=OLD_TLS_CIPHERS,
                            listeners=[(MX[0], MX[1], ()), (CONTROL[0], CONTROL[1], CONTROL_OPTIONS)])
    try:
        ca_file = lab_ca.write_bundle(os.path.join(work, 'lab-ca.pem'))
        certificates = []
        for name in NAMES:
            crt, key = write_pair(os.path.join(work, 'tls'), name, lab_ca.issue([name]))
            certificates.append({'names': [name], 'cert': crt, 'key': key})
        server.start()
        role_vars = {
            'postfix_config_dir': server.conf_dir,
            'postfix_check_command': server.check_command,
            'postfix_reload_command': server.reload_command,
            'postfix_tls_ca_file': ca_file,
            'postfix_mta_sts': False,
            'postfix_dane': False,
            'postfix_inbound_certificates': certificates,
            'postfix_inbound_verify': True,
            'postfix_inbound_verify_address': MX[0],
            'postfix_inbound_verify_ca_file': ca_file,
        }
        run = run_playbook([{'name': 'postfix role', 'ansible.builtin.include_role': {'name': ROLE},
                             'vars': role_vars}], workdir=work)
        yield {'server': server, 'ca_file': ca_file, 'run': run}
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def s_client(address, *args):
    """``openssl s_client -starttls smtp`` to ``address``; (returncode, output)."""
    out = subprocess.run(['openssl', 's_client', '-connect', f'{address[0]}:{address[1]}', '-starttls', 'smtp',
                          '-brief', *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=30, check=False)
    return out.returncode, out.stdout + out.stderr


def peer_certificate(address, name, ca_file):
    """The leaf certificate ``address`` presents for SNI ``name`` (verified against the lab CA)."""
    out = subprocess.run(['openssl', 's_client', '-connect', f'{address[0]}:{address[1]}', '-starttls', 'smtp',
                          '-servername', name, '-CAfile', ca_file, '-verify_return_error'],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return x509.load_pem_x509_certificate(out.stdout.encode())


def test_role_run_configured_inbound_and_verified_every_name(inbound):
    run = inbound['run']
    assert run.returncode == 0, run
    settings = inbound['server'].postconf('-n')
    assert 'smtpd_tls_security_level = may' in settings
    assert 'smtpd_tls_protocols = >=TLSv1.2' in settings
    assert 'tls_server_sni_maps = ' in settings
    check = [r for r in run.results if 'Verified STARTTLS certificates' in str(r.get('msg', ''))]
    assert check and all(name in check[0]['msg'] for name in NAMES), run


@pytest.mark.parametrize('name', NAMES)
def test_each_mx_name_gets_a_certificate_that_verifies_and_covers_it(inbound, name):
    code, output = s_client(MX, '-servername', name, '-verify_hostname', name,
                            '-CAfile', inbound['ca_file'], '-verify_return_error')
    assert code == 0, output
    assert 'Verification: OK' in output and f'Verified peername: {name}' in output, output
    leaf = peer_certificate(MX, name, inbound['ca_file'])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]


def test_the_sni_map_picks_the_certificate(inbound):
    """Each certificate covers one name only: the second name verifies only because SNI chose its own."""
    first, second = (peer_certificate(MX, name, inbound['ca_file']) for name in NAMES)
    assert first.serial_number != second.serial_number
    code, output = s_client(MX, '-servername', NAMES[0], '-verify_hostname', NAMES[1],
                            '-CAfile', inbound['ca_file'], '-verify_return_error')
    assert code != 0 and 'Verification: OK' not in output, output


@pytest.mark.usefixtures('inbound')
def test_tls_1_1_is_refused_while_the_control_takes_it():
    old_client = ('-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0', '-servername', NAMES[0])
    code, output = s_client(CONTROL, *old_client)
    assert code == 0 and 'Protocol version: TLSv1.1' in output, output
    code, output = s_client(MX, *old_client)
    assert code != 0 and 'Protocol version' not in output, output
    # And a current client still gets in: the refusal is about the version.
    code, output = s_client(MX, '-servername', NAMES[0])
    assert code == 0 and 'Protocol version: TLSv1.' in output, output
