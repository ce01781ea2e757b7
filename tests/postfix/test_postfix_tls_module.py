"""mailsec.mta_sts.postfix_tls through real ansible-playbook runs against a Postfix configuration directory of its
own (``postconf -c DIR``): what lands in main.cf, master.cf and the tables, check and diff mode, a second run that
writes nothing, bad input refused before main.cf is touched, and DANE refused unless the resolver validates."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._postfix import parse_postconf
from tests.integration.playbook import run_playbook
from tests.lab.pki import write_pair

MTA_STS_MAP = 'socketmap:inet:127.0.0.1:8461:postfix'
DANE_MAP = 'socketmap:inet:127.0.0.1:8462:dane'
MAIN_CF = """\
compatibility_level = 3.6
myhostname = mx.lab.invalid
mydestination =
inet_interfaces = loopback-only
smtp_tls_policy_maps = hash:{dir}/tls_policy
"""


def postconf(directory, *args):
    return subprocess.run(['postconf', '-c', directory] + list(args), check=True, capture_output=True,
                          text=True).stdout


def postfix_check(directory):
    """``postfix check`` passes on the result (the role runs it before every reload)."""
    check = subprocess.run(['postfix', '-c', directory, 'check'], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and not check.stderr.strip(), check.stderr


def snapshot(directory):
    """Every file's bytes and modification time: equal snapshots mean nothing was written."""
    state = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        with open(path, 'rb') as handle:
            state[name] = (handle.read(), os.stat(path).st_mtime_ns)
    return state


@pytest.fixture
def config_dir(tmp_path):
    """A Postfix configuration directory with the admin's own TLS policy table already in use."""
    directory = str(tmp_path / 'postfix')
    os.mkdir(directory)
    with open(os.path.join(directory, 'main.cf'), 'w') as handle:
        handle.write(MAIN_CF.format(dir=directory))
    shutil.copy('/etc/postfix/master.cf', directory)
    with open(os.path.join(directory, 'tls_policy'), 'w') as handle:
        handle.write('legacy.example encrypt\n')
    subprocess.run(['postmap', '-c', directory, 'hash:%s/tls_policy' % directory], check=True)
    return directory


@pytest.fixture
def certs(lab_ca, tmp_path):
    directory = str(tmp_path / 'certs')
    return dict(
        both=write_pair(directory, 'mx', lab_ca.issue(['mx1.example.com', 'mx2.example.com'])),
        other=write_pair(directory, 'other', lab_ca.issue(['mx.example.net'])),
    )


def task(config_dir, **options):
    args = dict(config_dir=config_dir, ca_file='/etc/ssl/certs/ca-certificates.crt')
    args.update(options)
    return {'name': 'postfix_tls', 'mailsec.mta_sts.postfix_tls': args, 'ignore_errors': True}


def full_options(certs):
    cert, key = certs['both']
    return dict(
        partners=[{'domain': 'Bank.Example', 'level': 'secure', 'match': ['mx1.bank.example', '.bank.example']},
                  {'domain': 'shop.example', 'level': 'encrypt'}],
        inbound={'certificates': [{'names': ['mx1.example.com', 'mx2.example.com'], 'cert': cert, 'key': key}]},
    )


def test_first_run_applies_everything_and_the_second_writes_nothing(config_dir, certs):
    run = run_playbook([task(config_dir, **full_options(certs))])
    result = run.result
    assert result['_status'] == 'ok' and result['changed'], run
    partners = 'hash:%s/mailsec_tls_partners' % config_dir
    # The admin's own table first, then ours: partners, MTA-STS.
    assert result['policy_maps'] == ['hash:%s/tls_policy' % config_dir, partners, MTA_STS_MAP]
    assert result['reload_required'] is True
    assert result['postfix_version'] == postconf(config_dir, '-h', 'mail_version').strip()
    settings = parse_postconf(postconf(config_dir, '-n'))
    cert, key = certs['both']
    for name, value in {
        'smtp_tls_CAfile': '/etc/ssl/certs/ca-certificates.crt',
        'smtp_tls_security_level': 'may',
        'smtp_tls_policy_maps': 'hash:%s/tls_policy, %s, %s' % (config_dir, partners, MTA_STS_MAP),
        'smtpd_tls_chain_files': '%s, %s' % (key, cert),
        'smtpd_tls_security_level': 'may',
        'smtpd_tls_protocols': '>=TLSv1.2',
        'smtpd_tls_mandatory_protocols': '>=TLSv1.2',
        'tls_server_sni_maps': 'hash:%s/mailsec_sni' % config_dir,
    }.items():
        assert settings[name] == value, name
        assert result['settings'][name] == value, name
    # The tables answer as Postfix will ask them.
    assert postconf_lookup(config_dir, 'bank.example', partners) == 'secure match=mx1.bank.example:.bank.example'
    assert postconf_lookup(config_dir, 'shop.example', partners) == 'encrypt'
    with open(key, 'rb') as handle:
        key_pem = handle.read().decode()
    sni = subprocess.run(['postmap', '-c', config_dir, '-Fq', 'mx2.example.com', 'hash:%s/mailsec_sni' % config_dir],
                         check=True, capture_output=True, text=True).stdout
    assert sni.startswith(key_pem) and '-----BEGIN CERTIFICATE-----' in sni
    # postmap -F copied the private key into the SNI table: only root may read it.
    assert os.stat(os.path.join(config_dir, 'mailsec_sni.db')).st_mode & 0o077 == 0
    postfix_check(config_dir)

    before = snapshot(config_dir)
    again = run_playbook([task(config_dir, **full_options(certs))]).result
    assert again['_status'] == 'ok' and again['changed'] is False and again['reload_required'] is False, again
    assert again['changed_settings'] == []
    assert snapshot(config_dir) == before


def postconf_lookup(config_dir, key, table):
    return subprocess.run(['postmap', '-c', config_dir, '-q', key, table], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_check_mode_writes_nothing_and_diff_mode_shows_the_changes(config_dir, certs):
    before = snapshot(config_dir)
    run = run_playbook([task(config_dir, **full_options(certs))], check=True, diff=True)
    result = run.result
    assert result['_status'] == 'ok' and result['changed'] is True, run
    assert snapshot(config_dir) == before
    main_cf = [entry for entry in result['diff'] if entry['before_header'] == 'main.cf'][0]
    assert 'smtp_tls_policy_maps = hash:%s/tls_policy\n' % config_dir in main_cf['before']
    assert ('smtp_tls_policy_maps = hash:%s/tls_policy, hash:%s/mailsec_tls_partners, %s\n'
            % (config_dir, config_dir, MTA_STS_MAP)) in main_cf['after']
    assert 'smtpd_tls_security_level = may\n' in main_cf['after']
    tables = dict((entry['after_header'], entry) for entry in result['diff'])
    assert 'bank.example secure match=mx1.bank.example:.bank.example\n' in (
        tables[os.path.join(config_dir, 'mailsec_tls_partners')]['after'])
    assert 'mx2.example.com' in tables[os.path.join(config_dir, 'mailsec_sni')]['after']
    # The diff shown is the diff made.
    applied = run_playbook([task(config_dir, **full_options(certs))], diff=True).result
    assert applied['diff'] == result['diff']


def test_features_this_postfix_lacks_are_skipped_with_a_warning(config_dir):
    known = parse_postconf(postconf(config_dir, '-d'))
    result = run_playbook([task(config_dir)]).result
    version = result['postfix_version']
    assert version == known['mail_version']
    for name, parameter, since in (('enforce_sts_mx_patterns', 'smtp_tls_enforce_sts_mx_patterns', '3.10.5'),
                                   ('requiretls', 'requiretls_enable', '3.11.0')):
        if parameter in known:
            assert result['features'][name]['applied'] and parameter in postconf(config_dir, '-n')
            continue
        reason = 'skipped: needs Postfix %s or later (%s); this is Postfix %s' % (since, parameter, version)
        assert result['features'][name] == {'applied': False, 'reason': reason}
        assert '%s %s' % (name, reason) in result['warnings']
        assert parameter not in postconf(config_dir, '-n')
    assert result['policy_maps'] == ['hash:%s/tls_policy' % config_dir, MTA_STS_MAP]


def test_bad_input_fails_naming_the_field_and_main_cf_is_untouched(config_dir, certs, lab_ca, tmp_path):
    cert, key = certs['both']
    _other_cert, other_key = certs['other']
    expired = write_pair(str(tmp_path / 'certs'), 'expired', lab_ca.issue_expired(['mx.example.com']))
    cases = [
        ('partners[1].level', dict(partners=[{'domain': 'a.example', 'level': 'secure'},
                                             {'domain': 'b.example', 'level': 'mandatory'}])),
        ('inbound.certificates[0].cert', dict(inbound={'certificates': [
            {'names': ['mx.example.com'], 'cert': str(tmp_path / 'missing.pem'), 'key': key}]})),
        ('inbound.certificates[0].key', dict(inbound={'certificates': [
            {'names': ['mx.example.com'], 'cert': cert, 'key': str(tmp_path / 'missing.key')}]})),
        ('private key does not match', dict(inbound={'certificates': [
            {'names': ['mx1.example.com'], 'cert': cert, 'key': other_key}]})),
        ('does not cover mx.example.org', dict(inbound={'certificates': [
            {'names': ['mx1.example.com', 'mx.example.org'], 'cert': cert, 'key': key}]})),
        ('certificate expired', dict(inbound={'certificates': [
            {'names': ['mx.example.com'], 'cert': expired[0], 'key': expired[1]}]})),
        ('partners[0].domain', dict(partners=[{'domain': 'bad_name..example', 'level': 'secure'}])),
        ('partners[1].domain', dict(partners=[{'domain': 'a.example', 'level': 'secure'},
                                              {'domain': 'A.EXAMPLE.', 'level': 'encrypt'}])),
        ('partners[0].level', dict(partners=[{'domain': 'a.example', 'level': 'dane-only'}])),
    ]
    before = snapshot(config_dir)
    # Every case in one playbook: each task fails (ignore_errors), and nothing may have been written by any.
    run = run_playbook([task(config_dir, **options) for _field, options in cases])
    assert len(run.results) == len(cases), run
    for (field, _options), result in zip(cases, run.results):
        assert result['_status'] == 'failed', (field, result)
        assert field in result['msg'], (field, result['msg'])
        assert result['changed'] is False
    assert 'needs DANE' in run.results[-1]['msg'] and 'duplicate partner' in run.results[-2]['msg']
    assert snapshot(config_dir) == before


def test_the_admins_tables_can_be_dropped_and_ours_removed(config_dir, certs):
    assert run_playbook([task(config_dir, **full_options(certs))]).result['_status'] == 'ok'
    result = run_playbook([task(config_dir, partners=[], mta_sts_map='', keep_policy_maps=False)]).result
    assert result['_status'] == 'ok' and result['changed'], result
    assert result['policy_maps'] == []
    assert postconf(config_dir, '-h', 'smtp_tls_policy_maps').strip() == ''


DANE_ARGV = ['/usr/bin/python3', '/usr/local/libexec/mailsec_dane_policy.py']


def dane_options(dnssec_lab, **extra):
    dane = dict(enabled=True, dnssec_probe='soa:%s' % dnssec_lab.signed_probe, bogus_name=dnssec_lab.bogus_name,
                service={'argv': DANE_ARGV})
    dane.update(extra)
    return dict(dane=dane, partners=[{'domain': 'dane.example', 'level': 'dane-only'}])


def test_dane_against_a_validating_resolver(config_dir, dnssec_lab):
    before = snapshot(config_dir)
    planned = run_playbook([task(config_dir, **dane_options(dnssec_lab))], check=True, diff=True).result
    assert planned['_status'] == 'ok' and planned['changed'], planned
    assert snapshot(config_dir) == before
    run = run_playbook([task(config_dir, **dane_options(dnssec_lab))], diff=True)
    result = run.result
    assert result['_status'] == 'ok' and result['changed'] and result['reload_required'], run
    assert result['policy_maps'] == ['hash:%s/tls_policy' % config_dir, 'hash:%s/mailsec_tls_partners' % config_dir,
                                     DANE_MAP, MTA_STS_MAP]
    settings = parse_postconf(postconf(config_dir, '-n'))
    assert settings['smtp_dns_support_level'] == 'dnssec'
    assert settings['smtp_tls_security_level'] == 'dane'
    assert settings['dnssec_probe'] == 'soa:%s' % dnssec_lab.signed_probe.rstrip('.')
    entry = postconf(config_dir, '-M', '127.0.0.1:8462/inet').split()
    assert entry == ['127.0.0.1:8462', 'inet', 'n', 'n', 'n', '-', '-', 'spawn', 'user=nobody',
                     'argv=' + DANE_ARGV[0], DANE_ARGV[1]]
    assert any(item['before_header'] == 'master.cf 127.0.0.1:8462/inet' for item in result['diff'])
    assert planned['diff'] == result['diff']
    postfix_check(config_dir)
    before = snapshot(config_dir)
    again = run_playbook([task(config_dir, **dane_options(dnssec_lab))]).result
    assert again['changed'] is False, again
    assert snapshot(config_dir) == before

    # DANE off: our map and our master.cf entry go; a partner at a DANE level would now be refused.
    off = dane_options(dnssec_lab, enabled=False)
    off['partners'] = []
    result = run_playbook([task(config_dir, **off)]).result
    assert result['_status'] == 'ok' and result['reload_required'], result
    assert result['policy_maps'] == ['hash:%s/tls_policy' % config_dir, MTA_STS_MAP]
    assert postconf(config_dir, '-M', '127.0.0.1:8462/inet').strip() == ''
    assert postconf(config_dir, '-h', 'smtp_tls_security_level').strip() == 'may'
    postfix_check(config_dir)


def test_turning_dane_off_leaves_an_entry_that_is_not_ours(config_dir):
    theirs = '127.0.0.1:8462 inet n - n - - spawn user=nobody argv=/usr/local/bin/their-policy'
    postconf(config_dir, '-Me', '127.0.0.1:8462/inet=' + theirs)
    before = snapshot(config_dir)
    result = run_playbook([task(config_dir, dane={'enabled': False, 'service': {'argv': DANE_ARGV}})]).result
    assert result['_status'] == 'ok', result
    assert postconf(config_dir, '-M', '127.0.0.1:8462/inet').split() == theirs.split()
    assert snapshot(config_dir)['master.cf'] == before['master.cf']


def test_dane_is_refused_when_the_resolver_does_not_validate(config_dir, dnssec_lab):
    before = snapshot(config_dir)
    # Knot itself, authoritative: it answers but never sets AD, as a non-validating resolver would.
    facts = dnssec_lab.knot.facts()
    options = dane_options(dnssec_lab, nameservers=['%s:%s' % (facts['LAB_DNS_SERVER'], facts['LAB_DNS_PORT'])])
    result = run_playbook([task(config_dir, **options)]).result
    assert result['_status'] == 'failed', result
    assert result['msg'].startswith('dane.enabled True: refused, the resolver does not validate DNSSEC'), result['msg']
    assert snapshot(config_dir) == before
