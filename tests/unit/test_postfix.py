"""The postfix_tls module's pure core: parsing postconf, partners, the policy map order, tables, settings."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _postfix
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

PARAMS = dict(
    config_dir='/etc/postfix', ca_file='/etc/ssl/certs/ca-certificates.crt', ca_path=None, security_level='may',
    partners=[], partner_map=None, mta_sts_map=_postfix.DEFAULT_MTA_STS_MAP, keep_policy_maps=True,
    dane=dict(enabled=False, map=_postfix.DEFAULT_DANE_MAP, dnssec_probe='ns:.',
              service=dict(listen='127.0.0.1:8462', user='nobody', argv=['/opt/venv/bin/python', '/opt/dane.py'])),
    inbound=dict(certificates=[], sni_map=None, protocols='>=TLSv1.2', security_level='may'),
    features=dict(tlsrpt=True, enforce_sts_mx_patterns=True, requiretls=True),
)
DEFAULTS = {'mail_version': '3.7.11', 'default_database_type': 'hash'}


def params(**changes):
    result = dict(PARAMS)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            value = dict(result[key], **value)
        result[key] = value
    return result


def test_parse_postconf_reads_name_value_lines_empty_values_and_continuations():
    text = ('mail_version = 3.7.11\nsmtp_tls_security_level =\n# a comment\n\n'
            'smtp_tls_policy_maps = hash:/etc/postfix/a,\n    socketmap:inet:127.0.0.1:8461:postfix\n')
    assert _postfix.parse_postconf(text) == {
        'mail_version': '3.7.11', 'smtp_tls_security_level': '',
        'smtp_tls_policy_maps': 'hash:/etc/postfix/a, socketmap:inet:127.0.0.1:8461:postfix'}


def test_parse_postconf_refuses_a_line_that_is_not_a_setting():
    with pytest.raises(ValueError, match='not a "name = value" line'):
        _postfix.parse_postconf('postconf: fatal: open /nowhere/main.cf\n')


@pytest.mark.parametrize('text, version', [
    ('3.7.11', (3, 7, 11)), ('3.10.5', (3, 10, 5)), ('3.11-20250601', (3, 11, 0)), ('3.11.0-RC2', (3, 11, 0)),
])
def test_parse_version(text, version):
    assert _postfix.parse_version(text) == version


def test_parse_version_refuses_garbage():
    with pytest.raises(ValueError, match="mail_version 'x' is not a Postfix version"):
        _postfix.parse_version('x')


def test_split_list_keeps_braced_tables_whole():
    assert _postfix.split_list('a,b  c ,\n d inline:{ x=y, z=w } cidr:{{0.0.0.0/0 may}}') == [
        'a', 'b', 'c', 'd', 'inline:{ x=y, z=w }', 'cidr:{{0.0.0.0/0 may}}']


def test_partners_are_normalised_with_a_labels_and_match_lists():
    partners = _postfix.normalize_partners([
        {'domain': 'Bank.Example.', 'level': 'secure', 'match': ['mx.bank.example', '.bank.example', 'nexthop']},
        {'domain': 'bücher.example', 'level': 'encrypt', 'match': None},
        {'domain': 'dane.example', 'level': 'dane-only'},
    ], dane_enabled=True)
    assert partners == [
        {'domain': 'bank.example', 'level': 'secure', 'match': ['mx.bank.example', '.bank.example', 'nexthop']},
        {'domain': 'xn--bcher-kva.example', 'level': 'encrypt', 'match': []},
        {'domain': 'dane.example', 'level': 'dane-only', 'match': []},
    ]


@pytest.mark.parametrize('partners, dane, field, rule', [
    ([{'domain': 'a.example', 'level': 'secure'}, {'domain': 'b.example', 'level': 'secure'},
      {'domain': 'c.example', 'level': 'must'}], False, 'partners[2].level', 'must be one of encrypt, verify'),
    ([{'domain': 'bad_domain.example', 'level': 'secure'}], False, 'partners[0].domain', 'labels must be'),
    ([{'domain': 'example', 'level': 'secure'}], False, 'partners[0].domain', 'at least two labels'),
    ([{'domain': 'a.example', 'level': 'secure'}, {'domain': 'A.Example.', 'level': 'verify'}], False,
     'partners[1].domain', 'duplicate partner: a.example is also partners[0]'),
    ([{'domain': 'a.example', 'level': 'dane'}], False, 'partners[0].level', 'needs DANE'),
    ([{'domain': 'a.example', 'level': 'dane-only'}], False, 'partners[0].level', 'needs DANE'),
    ([{'domain': 'a.example', 'level': 'encrypt', 'match': ['mx.a.example']}], False, 'partners[0].match',
     'is only read at the levels verify and secure'),
    ([{'domain': 'a.example', 'level': 'dane', 'match': ['mx.a.example']}], True, 'partners[0].match',
     'only read at the levels'),
    ([{'domain': 'a.example', 'level': 'secure', 'match': ['mx a']}], False, 'partners[0].match[0]',
     'must be a host name'),
    (['a.example'], False, 'partners[0]', 'must be a dict'),
])
def test_bad_partners_name_the_field_and_the_rule(partners, dane, field, rule):
    with pytest.raises(ValidationError) as caught:
        _postfix.normalize_partners(partners, dane)
    assert caught.value.field == field
    assert rule in caught.value.rule


def test_the_partner_table_has_one_line_per_partner_with_match_joined_by_colons():
    table = _postfix.render_partner_table([
        {'domain': 'bank.example', 'level': 'secure', 'match': ['mx.bank.example', '.bank.example']},
        {'domain': 'shop.example', 'level': 'encrypt', 'match': []},
    ])
    assert table.splitlines()[1:] == ['bank.example secure match=mx.bank.example:.bank.example',
                                      'shop.example encrypt']
    assert table.startswith('# Managed by mailsec.mta_sts.postfix_tls')


OURS = ['hash:/etc/postfix/mailsec_tls_partners', _postfix.DEFAULT_DANE_MAP, _postfix.DEFAULT_MTA_STS_MAP]


def test_the_admins_own_policy_tables_come_first_then_ours_in_order():
    current = 'hash:/etc/postfix/tls_policy,socketmap:inet:127.0.0.1:8461:postfix  pcre:/etc/postfix/p.pcre'
    assert _postfix.merge_policy_maps(current, OURS) == [
        'hash:/etc/postfix/tls_policy', 'pcre:/etc/postfix/p.pcre'] + OURS


def test_a_second_merge_changes_nothing():
    once = _postfix.merge_policy_maps('hash:/etc/postfix/tls_policy', OURS)
    assert _postfix.merge_policy_maps(', '.join(once), OURS) == once


def test_without_keep_only_ours_remain():
    assert _postfix.merge_policy_maps('hash:/etc/postfix/tls_policy', OURS, keep=False) == OURS


def test_tables_we_managed_before_and_no_longer_want_are_dropped_not_kept_as_the_admins():
    current = 'hash:/x, ' + ', '.join(OURS)
    assert _postfix.merge_policy_maps(current, [_postfix.DEFAULT_MTA_STS_MAP], managed=OURS) == [
        'hash:/x', _postfix.DEFAULT_MTA_STS_MAP]


def test_the_dnssec_probe_is_written_without_a_final_dot_but_the_root_stays():
    assert _postfix.postfix_probe('ns:sts.example.') == 'ns:sts.example'
    assert _postfix.postfix_probe('ns:.') == 'ns:.'
    assert _postfix.postfix_probe('soa:example') == 'soa:example'


def test_a_resolver_or_dane_lookup_moved_to_another_address_leaves_no_dead_entry_behind():
    moved = 'socketmap:inet:127.0.0.1:18461:postfix'
    current = 'hash:/x, socketmap:inet:127.0.0.1:9462:dane, socketmap:inet:127.0.0.1:8461:postfix'
    plan = _postfix.plan_tls(params(mta_sts_map=moved, dane={'enabled': True}),
                             {'smtp_tls_policy_maps': current}, DEFAULTS)
    assert plan.policy_maps == ['hash:/x', _postfix.DEFAULT_DANE_MAP, moved]
    # With MTA-STS off, a resolver socketmap the role did not write at its default address is the admin's.
    plan = _postfix.plan_tls(params(mta_sts_map=''), {'smtp_tls_policy_maps': 'hash:/x, ' + moved}, DEFAULTS)
    assert plan.policy_maps == ['hash:/x', moved]


def test_the_sni_table_maps_every_name_to_key_then_chain():
    table = _postfix.render_sni_table([
        {'names': ['mx1.example.com', 'mx2.example.com'], 'cert': '/c/a.pem', 'key': '/k/a.key'},
        {'names': ['mx.example.net'], 'cert': '/c/b.pem', 'key': '/k/b.key'},
    ])
    assert table.splitlines()[1:] == ['mx1.example.com /k/a.key /c/a.pem', 'mx2.example.com /k/a.key /c/a.pem',
                                      'mx.example.net /k/b.key /c/b.pem']


@pytest.mark.parametrize('certificates, field, rule', [
    ([{'names': [], 'cert': '/c', 'key': '/k'}], 'inbound.certificates[0].names', 'at least one'),
    ([{'names': ['mx.example'], 'cert': 'c.pem', 'key': '/k'}], 'inbound.certificates[0].cert', 'absolute path'),
    ([{'names': ['mx.example'], 'cert': '/c', 'key': '/my key'}], 'inbound.certificates[0].key', 'white space'),
    ([{'names': ['mx.example'], 'cert': '/c', 'key': '/k'}, {'names': ['MX.example.'], 'cert': '/c', 'key': '/k'}],
     'inbound.certificates[1].names[0]', 'listed twice'),
])
def test_bad_certificates_name_the_field(certificates, field, rule):
    with pytest.raises(ValidationError) as caught:
        _postfix.normalize_certificates(certificates)
    assert caught.value.field == field and rule in caught.value.rule


def test_plan_settings_lists_only_what_means_something_else():
    current = {'smtp_tls_policy_maps': 'hash:/a,hash:/b', 'smtp_tls_security_level': 'may'}
    desired = {'smtp_tls_policy_maps': 'hash:/a, hash:/b', 'smtp_tls_security_level': 'dane', 'dnssec_probe': 'ns:.'}
    assert _postfix.plan_settings(current, desired) == [
        ('dnssec_probe', '', 'ns:.'), ('smtp_tls_security_level', 'may', 'dane')]


def test_the_plan_for_defaults_sets_the_ca_level_and_the_mta_sts_map():
    plan = _postfix.plan_tls(params(), {'smtp_tls_policy_maps': ''}, DEFAULTS)
    assert plan.settings == {
        'smtp_tls_CAfile': '/etc/ssl/certs/ca-certificates.crt', 'smtp_tls_CApath': '',
        'smtp_tls_security_level': 'may', 'smtp_tls_policy_maps': _postfix.DEFAULT_MTA_STS_MAP}
    assert plan.tables == {}
    # DANE off: the service is still named, so that our own entry would be removed.
    assert plan.master == ('127.0.0.1:8462/inet', '127.0.0.1:8462 inet n n n - - spawn user=nobody '
                           'argv=/opt/venv/bin/python /opt/dane.py', False)
    assert _postfix.plan_tls(params(dane={'service': {'listen': '127.0.0.1:8462', 'argv': None}}), {},
                             DEFAULTS).master is None


def test_the_plan_with_partners_dane_and_inbound():
    plan = _postfix.plan_tls(params(
        partners=[{'domain': 'bank.example', 'level': 'secure', 'match': ['mx.bank.example']}],
        dane={'enabled': True, 'dnssec_probe': 'soa:sts.example.'},
        inbound={'certificates': [{'names': ['mx1.example.com', 'mx2.example.com'], 'cert': '/c.pem', 'key': '/k'}]},
    ), {'smtp_tls_policy_maps': 'hash:/etc/postfix/tls_policy', 'default_database_type': 'lmdb'}, DEFAULTS)
    assert plan.policy_maps == ['hash:/etc/postfix/tls_policy', 'lmdb:/etc/postfix/mailsec_tls_partners',
                                _postfix.DEFAULT_DANE_MAP, _postfix.DEFAULT_MTA_STS_MAP]
    assert plan.settings['smtp_tls_security_level'] == 'dane'
    assert plan.settings['smtp_dns_support_level'] == 'dnssec'
    assert plan.settings['dnssec_probe'] == 'soa:sts.example'
    assert plan.settings['smtpd_tls_chain_files'] == '/k, /c.pem'
    assert plan.settings['tls_server_sni_maps'] == 'lmdb:/etc/postfix/mailsec_sni'
    assert plan.settings['smtpd_tls_protocols'] == plan.settings['smtpd_tls_mandatory_protocols'] == '>=TLSv1.2'
    assert plan.tables['/etc/postfix/mailsec_sni']['flags'] == ['-F']
    assert plan.tables['/etc/postfix/mailsec_tls_partners']['text'].endswith(
        'bank.example secure match=mx.bank.example\n')
    assert plan.master == ('127.0.0.1:8462/inet', '127.0.0.1:8462 inet n n n - - spawn user=nobody '
                           'argv=/opt/venv/bin/python /opt/dane.py', True)


def test_one_inbound_name_needs_no_sni_table_and_drops_only_our_own():
    one = {'certificates': [{'names': ['mx.example.com'], 'cert': '/c.pem', 'key': '/k'}]}
    ours = _postfix.plan_tls(params(inbound=one), {'tls_server_sni_maps': 'hash:/etc/postfix/mailsec_sni'}, DEFAULTS)
    assert ours.settings['tls_server_sni_maps'] == ''
    theirs = _postfix.plan_tls(params(inbound=one), {'tls_server_sni_maps': 'hash:/etc/postfix/sni'}, DEFAULTS)
    assert 'tls_server_sni_maps' not in theirs.settings and theirs.tables == {}


def test_an_empty_mta_sts_map_removes_the_socketmap_and_keep_false_removes_the_admins():
    plan = _postfix.plan_tls(params(mta_sts_map='', keep_policy_maps=False),
                             {'smtp_tls_policy_maps': 'hash:/x, ' + _postfix.DEFAULT_MTA_STS_MAP}, DEFAULTS)
    assert plan.settings['smtp_tls_policy_maps'] == ''


@pytest.mark.parametrize('changes, field, rule', [
    (dict(ca_file=None), 'ca_file', 'exactly one of ca_file and ca_path'),
    (dict(ca_path='/etc/ssl/certs'), 'ca_file', 'exactly one'),
    (dict(security_level='strict'), 'security_level', 'must be one of'),
    (dict(security_level='dane'), 'security_level', 'needs dane.enabled'),
    (dict(dane={'enabled': True, 'dnssec_probe': 'example.org'}), 'dane.dnssec_probe', 'type:name'),
    (dict(dane={'enabled': True, 'service': {'listen': '8462', 'user': 'nobody', 'argv': ['x']}}),
     'dane.service.listen', 'address:port'),
    (dict(dane={'enabled': True, 'service': {'listen': '127.0.0.1:8462', 'user': 'nobody', 'argv': ['a b']}}),
     'dane.service.argv[0]', 'white space'),
    (dict(inbound={'security_level': 'secure'}), 'inbound.security_level', 'none, may, encrypt'),
    (dict(inbound={'certificates': [{'names': ['mx.example'], 'cert': '/c', 'key': '/k'}], 'protocols': 'TLS1.2'}),
     'inbound.protocols', 'not a Postfix protocol'),
])
def test_bad_options_name_the_option_and_the_rule(changes, field, rule):
    with pytest.raises(ValidationError) as caught:
        _postfix.plan_tls(params(**changes), {}, DEFAULTS)
    assert caught.value.field == field and rule in caught.value.rule
