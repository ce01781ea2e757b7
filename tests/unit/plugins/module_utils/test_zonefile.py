import datetime
import difflib
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import RRset, RRsetChange, plan_rrset
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import TxtRRset, plan_name, split_value, txt_view
from ansible_collections.mailsec.mta_sts.plugins.module_utils._zonefile import (
    ZoneFileError, apply_changes, next_serial, parse, read_rrsets,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.zonefile import ZonefileProvider

TODAY = datetime.date(2024, 6, 1)

ZONE = '''\
; example.com -- kept in git
$TTL 1h
$ORIGIN example.com.
@       IN  SOA ns1.example.com. hostmaster.example.com. (
                2024010101 ; serial (YYYYMMDDnn)
                3600       ; refresh
                900        ; retry
                1209600    ; expire
                300 )      ; negative caching TTL
        IN  NS  ns1
        IN  NS  ns2.example.net.
        IN  MX  10 mail
        IN  TXT "v=spf1 mx -all"
ns1     IN  A   192.0.2.53
mail    300 IN A 192.0.2.25

; MTA-STS and TLS-RPT
_mta-sts        IN TXT "v=STSv1; id=20240101T000000;"
                IN TXT "unrelated; keep me"
_smtp._tls.example.com. 1d IN TXT ( "v=TLSRPTv1; "   ; split on purpose
                                    "rua=mailto:tls@example.com" )
mta-sts IN CNAME sts.provider.example.
_mta-sts.alias  IN CNAME _mta-sts.example.net.
$ORIGIN shop.example.com.
@ IN A 192.0.2.80
_mta-sts IN 600 TXT "v=STSv1; id=shop1;" ; class before TTL
'''

SERIAL_LINE = '                2024010101 ; serial (YYYYMMDDnn)'
NEW_SERIAL_LINE = '                2024060100 ; serial (YYYYMMDDnn)'
STS_LINE = '_mta-sts        IN TXT "v=STSv1; id=20240101T000000;"'


def _sts(text):
    return text.startswith('v=STSv1')


def _tlsrpt(text):
    return text.startswith('v=TLSRPTv1')


def read_names(zone, names):
    """The TXT view of the names, as the provider's ``read`` gives it."""
    return txt_view(read_rrsets(zone, names, ('TXT',)), names)


def _same(live, wanted):
    return live == wanted


def plan(zone, name, wanted, ttl=3600, managed=_sts):
    return plan_name(read_names(zone, [name])[name], wanted, managed, _same, ttl)


def edit(text, name, wanted, ttl=3600, managed=_sts, origin='example.com'):
    zone = parse(text, origin)
    return apply_changes(zone, [plan(zone, name, wanted, ttl, managed)], TODAY)


def diff(old, new):
    """(removed lines, added lines) between two texts."""
    lines = list(difflib.ndiff(old.splitlines(), new.splitlines()))
    return [line[2:] for line in lines if line.startswith('- ')], [line[2:] for line in lines if line.startswith('+ ')]


CHECKERS = {
    'kzonecheck': lambda origin, path: ['kzonecheck', '-o', origin, path],
    'named-checkzone': lambda origin, path: ['named-checkzone', origin, path],
}


@pytest.fixture(params=sorted(CHECKERS))
def check_zone(request):
    """Run a real zone checker on a file; skipped only when the binary is not installed."""
    if shutil.which(request.param) is None:
        pytest.skip('%s is not installed' % request.param)

    def check(path, origin='example.com'):
        proc = subprocess.run(CHECKERS[request.param](origin, str(path)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        assert proc.returncode == 0, proc.stdout.decode()
    return check


# Reading

def test_read_realistic_zone():
    zone = parse(ZONE, 'example.com')
    assert zone.name == 'example.com'
    names = ['example.com', '_mta-sts.example.com', '_smtp._tls.example.com', '_mta-sts.alias.example.com',
             '_mta-sts.shop.example.com', '_mta-sts.none.example.com']
    found = read_names(zone, names)
    assert found['example.com'].values == [(b'v=spf1 mx -all',)]
    assert found['example.com'].ttl == 3600
    assert found['_mta-sts.example.com'].values == [(b'v=STSv1; id=20240101T000000;',), (b'unrelated; keep me',)]
    assert found['_smtp._tls.example.com'].values == [(b'v=TLSRPTv1; ', b'rua=mailto:tls@example.com')]
    assert found['_smtp._tls.example.com'].ttl == 86400
    alias = found['_mta-sts.alias.example.com']
    assert (alias.cname, alias.values, alias.ttl) == ('_mta-sts.example.net', [], None)
    assert found['_mta-sts.shop.example.com'].ttl == 600
    assert found['_mta-sts.shop.example.com'].values == [(b'v=STSv1; id=shop1;',)]
    missing = found['_mta-sts.none.example.com']
    assert (missing.values, missing.ttl, missing.cname) == ([], None, None)


def test_owner_comparison_ignores_case_and_origin_comes_from_the_file():
    text = '$ORIGIN Example.COM.\n@ 60 IN SOA ns h 1 2 3 4 5\n_MTA-STS 60 IN TXT "v=STSv1; id=1;"\n'
    zone = parse(text)
    assert zone.name == 'example.com'
    assert read_names(zone, ['_mta-sts.example.com'])['_mta-sts.example.com'].values == [(b'v=STSv1; id=1;',)]


def test_quoted_strings_comments_and_escapes():
    text = '$TTL 60\n@ IN SOA ns h 1 2 3 4 5\nx IN TXT "a;b \\"q\\" \\065" bare\\032word ; "not data"\n'
    zone = parse(text, 'example.com')
    assert read_names(zone, ['x.example.com'])['x.example.com'].values == [(b'a;b "q" A', b'bare word')]


@pytest.mark.parametrize('text, ttl', [
    ('$TTL 1w\n@ IN SOA ns h 1 2 3 4 5\nx IN TXT "a"\n', 604800),
    ('$TTL 1h30m\n@ IN SOA ns h 1 2 3 4 5\nx IN TXT "a"\n', 5400),
    ('$TTL 1h\n@ IN SOA ns h 1 2 3 4 5\nx 2d IN TXT "a"\n', 172800),
    ('$TTL 1h\n@ IN SOA ns h 1 2 3 4 5\nx IN 90 TXT "a"\n', 90),
    ('@ IN SOA ns h ( 1 2 3 4 1D )\nx IN TXT "a"\n', 86400),
    ('@ 300 IN SOA ns h 1 2 3 4 5\nx IN TXT "a"\n', 300),
    ('$TTL 1h\n@ IN SOA ns h 1 2 3 4 5\nx 120 IN A 192.0.2.1\n IN TXT "a"\n', 3600),
])
def test_read_ttl(text, ttl):
    assert read_names(parse(text, 'example.com'), ['x.example.com'])['x.example.com'].ttl == ttl


@pytest.mark.parametrize('text, line, words', [
    ('$TTL 60\n@ IN SOA ns h 1 2 3 4 5\nx IN TXT ( "a"\n', 3, 'unbalanced'),
    ('$TTL 60\n@ IN SOA ns h 1 2 3 4 5\n\nx IN TXT "a\n', 4, 'unterminated'),
    ('$TTL 60\n@ IN SOA ns h ( 1 2 3 4 )\n', 2, 'SOA record needs 7'),
    ('$TTL 60\n@ IN SOA ns h (\n x 2 3 4 5 )\n', 3, 'serial'),
    ('x 60 IN TXT "a"\n', None, 'no SOA'),
    (' IN TXT "a"\n', 1, 'blank owner'),
    ('$TTL 60\n@ IN SOA ns h 1 2 3 4 5\nx IN\n', 3, 'no type'),
    ('$TTL 60\n@ IN SOA ns h 1 2 3 4 5\nx IN TXT "%s"\n' % ('a' * 256), 3, 'TXT'),
    ('x IN A 192.0.2.1\n@ IN SOA ns h 1 2 3 4 5\n', 1, 'no TTL'),
])
def test_parse_errors_name_the_line(text, line, words):
    with pytest.raises(ZoneFileError) as info:
        parse(text, 'example.com')
    assert info.value.line == line
    assert words in str(info.value)


def test_relative_name_without_origin():
    with pytest.raises(ZoneFileError) as info:
        parse('@ 60 IN SOA ns h 1 2 3 4 5\n')
    assert info.value.no_origin


# Editing

def test_replace_is_a_one_line_change():
    new = edit(ZONE, '_mta-sts.example.com', 'v=STSv1; id=new;')
    removed, added = diff(ZONE, new)
    assert removed == [SERIAL_LINE, STS_LINE]
    assert added == [NEW_SERIAL_LINE, '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=new;"']
    assert read_names(parse(new, 'example.com'), ['_mta-sts.example.com'])['_mta-sts.example.com'].values == [
        (b'v=STSv1; id=new;',), (b'unrelated; keep me',)]


def test_ttl_only_change_rewrites_the_line_in_place():
    new = edit(ZONE, '_mta-sts.shop.example.com', 'v=STSv1; id=shop1;', ttl=300)
    assert diff(ZONE, new) == ([SERIAL_LINE, '_mta-sts IN 600 TXT "v=STSv1; id=shop1;" ; class before TTL'],
                               [NEW_SERIAL_LINE, '_mta-sts.shop.example.com. 300 IN TXT "v=STSv1; id=shop1;"'])


def test_create_at_a_new_name_appends_and_ends_with_newline():
    text = ZONE.rstrip('\n')
    new = edit(text, '_smtp._tls.shop.example.com', 'v=TLSRPTv1; rua=mailto:t@example.com', managed=_tlsrpt)
    assert new.startswith(text.replace(SERIAL_LINE, NEW_SERIAL_LINE) + '\n')
    assert new.endswith('\n_smtp._tls.shop.example.com. 3600 IN TXT "v=TLSRPTv1; rua=mailto:t@example.com"\n')
    assert diff(text, new)[0] == [SERIAL_LINE]


def test_create_goes_after_the_last_record_at_the_name():
    text = ZONE.replace(STS_LINE + '\n', '').replace('                IN TXT "unrelated', '_mta-sts IN TXT "unrelated')
    new = edit(text, '_mta-sts.example.com', 'v=STSv1; id=1;')
    lines = new.splitlines()
    at = lines.index('_mta-sts IN TXT "unrelated; keep me"')
    assert lines[at + 1] == '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=1;"'
    assert diff(text, new)[1] == [NEW_SERIAL_LINE, lines[at + 1]]


def test_remove_multi_line_record_whole():
    new = edit(ZONE, '_smtp._tls.example.com', None, managed=_tlsrpt)
    removed, added = diff(ZONE, new)
    assert removed == [SERIAL_LINE,
                       '_smtp._tls.example.com. 1d IN TXT ( "v=TLSRPTv1; "   ; split on purpose',
                       '                                    "rua=mailto:tls@example.com" )']
    assert added == [NEW_SERIAL_LINE]


def test_removal_gives_a_blank_owner_line_its_owner():
    new = edit(ZONE, '_mta-sts.example.com', None)
    removed, added = diff(ZONE, new)
    assert removed == [SERIAL_LINE, STS_LINE, '                IN TXT "unrelated; keep me"']
    assert added == [NEW_SERIAL_LINE, '_mta-sts.example.com.                IN TXT "unrelated; keep me"']
    found = read_names(parse(new, 'example.com'), ['_mta-sts.example.com'])['_mta-sts.example.com']
    assert (found.values, found.ttl) == ([(b'unrelated; keep me',)], 3600)


def test_removal_keeps_an_inherited_ttl_without_ttl_directive():
    # No $TTL: the next record takes the TTL of the one before it (RFC 1035 §5.1).
    text = '@ 300 IN SOA ns h 7 2 3 4 5\n NS ns\n_mta-sts 60 IN TXT "v=STSv1; id=1;"\nns IN A 192.0.2.1\n'
    new = edit(text, '_mta-sts.example.com', None)
    assert new == '@ 300 IN SOA ns h 8 2 3 4 5\n NS ns\nns 60 IN A 192.0.2.1\n'


def test_duplicates_collapse_to_one():
    text = ZONE.replace(STS_LINE, STS_LINE + '\n_mta-sts.example.com. IN TXT "v=STSv1; id=other;"')
    new = edit(text, '_mta-sts.example.com', 'v=STSv1; id=new;')
    removed, added = diff(text, new)
    assert removed == [SERIAL_LINE, STS_LINE, '_mta-sts.example.com. IN TXT "v=STSv1; id=other;"']
    assert added == [NEW_SERIAL_LINE, '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=new;"']


def test_identical_duplicates_are_one_value():
    text = ZONE.replace(STS_LINE, STS_LINE + '\n' + STS_LINE)
    zone = parse(text, 'example.com')
    assert read_names(zone, ['_mta-sts.example.com'])['_mta-sts.example.com'].values == [
        (b'v=STSv1; id=20240101T000000;',), (b'unrelated; keep me',)]
    new = apply_changes(zone, [plan(zone, '_mta-sts.example.com', 'v=STSv1; id=new;')], TODAY)
    assert diff(text, new) == ([SERIAL_LINE, STS_LINE, STS_LINE],
                               [NEW_SERIAL_LINE, '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=new;"'])


def test_long_value_is_several_strings_and_reads_back_equal():
    wanted = 'v=TLSRPTv1; rua=' + ','.join('mailto:tlsrpt-%02d@reports.example.net' % i for i in range(12))
    assert len(wanted) > 255
    new = edit(ZONE, '_smtp._tls.example.com', wanted, managed=_tlsrpt)
    line = [line for line in new.splitlines() if line.startswith('_smtp._tls.example.com. 3600')][0]
    assert line.count('" "') == 1
    found = read_names(parse(new, 'example.com'), ['_smtp._tls.example.com'])['_smtp._tls.example.com']
    assert found.values == [split_value(wanted)]


def test_no_change_no_bump():
    zone = parse(ZONE, 'example.com')
    change = plan(zone, '_mta-sts.example.com', 'v=STSv1; id=20240101T000000;')
    assert not change.changed
    assert apply_changes(zone, [change], TODAY) == ZONE
    assert apply_changes(zone, [], TODAY) == ZONE


def test_value_to_remove_must_be_there():
    zone = parse(ZONE, 'example.com')
    change = plan_name(TxtRRset('_mta-sts.example.com', 3600, [(b'v=STSv1; id=gone;',)]), None, _sts, _same, 3600)
    with pytest.raises(ZoneFileError):
        apply_changes(zone, [change], TODAY)


def test_crlf_file_keeps_crlf():
    text = ZONE.replace('\n', '\r\n')
    new = edit(text, '_mta-sts.shop.example.com', 'v=STSv1; id=2;')
    assert '\n' not in new.replace('\r\n', '')
    assert '_mta-sts.shop.example.com. 3600 IN TXT "v=STSv1; id=2;"\r\n' in new


@pytest.mark.parametrize('serial, expected', [
    (41, 42),
    (2024010101, 2024060100),
    (2024060105, 2024060106),
    (2024060199, 2024060200),
    (2030010100, 2030010101),
    (2024130101, 2024130102),
    (1700000000, 1700000001),
    (2 ** 32 - 1, 0),
])
def test_next_serial(serial, expected):
    assert next_serial(serial, TODAY) == expected


def test_plain_serial_in_single_line_soa():
    text = '$TTL 60\n@ IN SOA ns h 41 2 3 4 5 ; one line\n'
    assert edit(text, '_mta-sts.example.com', 'v=STSv1; id=1;').startswith('$TTL 60\n@ IN SOA ns h 42 2 3 4 5 ; one line\n')


# Files and the provider

def _provider(tmp_path, text=ZONE, name='example.com.zone', zone_file=None):
    path = tmp_path / name
    path.write_text(text)
    return ZonefileProvider(zone_file or str(path), today=TODAY), path


def _publish(provider, name, wanted, managed=_sts, ttl=3600):
    zone = provider.find_zone(name)
    rrset = provider.read(zone, [name])[name]
    change = plan_name(rrset, wanted, managed, _same, ttl)
    if change.changed:
        provider.apply(zone, [change])
    return change


@pytest.mark.parametrize('name, wanted, managed', [
    ('_mta-sts.example.com', 'v=STSv1; id=20240601T000000;', _sts),
    ('_mta-sts.example.com', None, _sts),
    ('_smtp._tls.example.com', None, _tlsrpt),
    ('_smtp._tls.shop.example.com', 'v=TLSRPTv1; rua=' + ','.join('mailto:r%02d@reports.example.net' % i for i in range(12)), _tlsrpt),
])
def test_results_pass_zone_checkers(tmp_path, check_zone, name, wanted, managed):
    provider, path = _provider(tmp_path)
    check_zone(path)
    assert _publish(provider, name, wanted, managed).changed
    assert path.read_text() != ZONE
    check_zone(path)
    assert not _publish(ZonefileProvider(str(path), today=TODAY), name, wanted, managed).changed


def test_provider_round_trip_and_mode(tmp_path):
    provider, path = _provider(tmp_path)
    os.chmod(str(path), 0o640)
    _publish(provider, '_mta-sts.example.com', 'v=STSv1; id=new;')
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o640
    assert diff(ZONE, path.read_text())[1] == [NEW_SERIAL_LINE, '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=new;"']
    assert os.listdir(str(tmp_path)) == ['example.com.zone']


def test_concurrent_change_is_refused(tmp_path):
    provider, path = _provider(tmp_path)
    zone = provider.find_zone('_mta-sts.example.com')
    rrset = provider.read(zone, ['_mta-sts.example.com'])['_mta-sts.example.com']
    edited = ZONE.replace('192.0.2.80', '192.0.2.81')
    path.write_text(edited)
    with pytest.raises(ConflictError, match='changed since it was read; nothing was written, re-run'):
        provider.apply(zone, [plan_name(rrset, 'v=STSv1; id=new;', _sts, _same, 3600)])
    assert path.read_text() == edited


def test_symlinked_zone_file_stays_a_symlink(tmp_path):
    provider, path = _provider(tmp_path)
    link = tmp_path / 'link.zone'
    link.symlink_to(path.name)
    _publish(ZonefileProvider(str(link), today=TODAY), '_mta-sts.example.com', 'v=STSv1; id=new;')
    assert link.is_symlink()
    assert 'id=new;' in path.read_text()


def test_template_finds_the_longest_zone(tmp_path, check_zone):
    shop = '$TTL 300\n@ IN SOA ns1.example.com. h.example.com. 1 3600 900 1209600 300\n  IN NS ns1.example.com.\n'
    (tmp_path / 'shop.example.com.zone').write_text(shop)
    (tmp_path / 'example.com.zone').write_text(ZONE)
    # A file whose SOA is another zone is not the zone it is named after.
    (tmp_path / 'sub.example.com.zone').write_text('$ORIGIN elsewhere.example.\n' + shop)
    provider = ZonefileProvider(str(tmp_path / '{zone}.zone'), today=TODAY)
    assert provider.find_zone('_mta-sts.shop.example.com') == 'shop.example.com'
    assert provider.find_zone('_mta-sts.example.com') == 'example.com'
    assert provider.find_zone('_mta-sts.sub.example.com') == 'example.com'
    with pytest.raises(ProviderError, match='no zone file for _mta-sts.example.org'):
        provider.find_zone('_mta-sts.example.org')
    _publish(provider, '_mta-sts.shop.example.com', 'v=STSv1; id=s;')
    _publish(provider, '_mta-sts.example.com', 'v=STSv1; id=e;')
    assert (tmp_path / 'shop.example.com.zone').read_text().endswith('\n_mta-sts.shop.example.com. 3600 IN TXT "v=STSv1; id=s;"\n')
    assert '_mta-sts.example.com. 3600 IN TXT "v=STSv1; id=e;"' in (tmp_path / 'example.com.zone').read_text()
    check_zone(tmp_path / 'shop.example.com.zone', 'shop.example.com')
    check_zone(tmp_path / 'example.com.zone')


def test_single_file_zone_must_hold_the_name(tmp_path):
    provider, path = _provider(tmp_path)
    assert provider.find_zone('_mta-sts.shop.example.com') == 'example.com'
    with pytest.raises(ProviderError, match='_mta-sts.example.org is not in zone example.com'):
        provider.find_zone('_mta-sts.example.org')


def test_single_file_needs_an_origin(tmp_path):
    provider, path = _provider(tmp_path, text='$TTL 60\n@ IN SOA ns h 1 2 3 4 5\n')
    with pytest.raises(ProviderError, match=r'line 2: .*\$ORIGIN.*\{zone\}'):
        provider.find_zone('example.com')


def test_provider_errors_name_the_file(tmp_path):
    with pytest.raises(ProviderError, match='zone_file'):
        ZonefileProvider.from_params({'zone_file': None})
    assert ZonefileProvider.from_params({'zone_file': '/x/{zone}'}).templated
    with pytest.raises(ProviderError, match='cannot read zone file .*missing.zone'):
        ZonefileProvider(str(tmp_path / 'missing.zone')).find_zone('example.com')
    provider, path = _provider(tmp_path, text='$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns h 1 2 3 4 5\nx IN TXT ( "a"\n')
    with pytest.raises(ProviderError, match=r'example.com.zone: line 4: unbalanced'):
        provider.find_zone('example.com')
    provider, path = _provider(tmp_path, text='$ORIGIN example.com.\n$TTL 60\n')
    with pytest.raises(ProviderError, match='example.com.zone: no SOA'):
        provider.find_zone('example.com')


def test_include_and_unknown_directives_are_left_alone():
    text = ZONE.replace('$ORIGIN shop', '$INCLUDE keys.inc ; not followed\n$GENERATE 1-2 h$ A 192.0.2.$\n$ORIGIN shop')
    new = edit(text, '_mta-sts.shop.example.com', 'v=STSv1; id=2;')
    assert diff(text, new)[0] == [SERIAL_LINE, '_mta-sts IN 600 TXT "v=STSv1; id=shop1;" ; class before TTL']
    assert '$INCLUDE keys.inc ; not followed\n$GENERATE 1-2 h$ A 192.0.2.$\n' in new


def test_bytes_that_are_not_utf8_survive(tmp_path):
    data = ZONE.replace('; example.com -- kept in git', '; caf\xe9 \u2603').encode('latin-1', 'replace')
    path = tmp_path / 'example.com.zone'
    path.write_bytes(data)
    _publish(ZonefileProvider(str(path), today=TODAY), '_mta-sts.example.com', 'v=STSv1; id=new;')
    assert path.read_bytes().startswith(b'; caf\xe9 ?\n$TTL 1h\n')


def test_typed_records_read_and_edit_in_place():
    zone = parse(ZONE, 'example.com')
    found = read_rrsets(zone, ['mta-sts.example.com', 'mail.example.com', 'example.com'], None)
    assert found['mta-sts.example.com']['CNAME'].values == ['sts.provider.example']
    assert (found['mail.example.com']['A'].values, found['mail.example.com']['A'].ttl) == (['192.0.2.25'], 300)
    assert found['example.com']['MX'].values == ['10 mail'] and set(found['example.com']) == {'SOA', 'NS', 'MX', 'TXT'}
    changes = [plan_rrset(found['mta-sts.example.com']['CNAME'], [], 300),
               plan_rrset(RRset('mta-sts.example.com', 'A'), ['192.0.2.10'], 300),
               plan_rrset(RRset('mta-sts.example.com', 'AAAA'), ['2001:db8::10'], 300)]
    new = apply_changes(zone, changes, TODAY)
    edited = sorted(line for line in difflib.ndiff(ZONE.splitlines(), new.splitlines()) if line[:2] in ('- ', '+ '))
    assert edited == sorted(['- ' + SERIAL_LINE, '+ ' + NEW_SERIAL_LINE, '- mta-sts IN CNAME sts.provider.example.',
                             '+ mta-sts.example.com. 300 IN A 192.0.2.10', '+ mta-sts.example.com. 300 IN AAAA 2001:db8::10'])
    again = read_rrsets(parse(new, 'example.com'), ['mta-sts.example.com'], ('A', 'AAAA', 'CNAME'))['mta-sts.example.com']
    assert (again['A'].values, again['AAAA'].values, again['CNAME'].values) == (['192.0.2.10'], ['2001:db8::10'], [])


def test_a_typed_value_that_is_not_there_cannot_be_removed():
    zone = parse(ZONE, 'example.com')
    with pytest.raises(ZoneFileError, match='A value 192.0.2.99 is not at mail.example.com'):
        apply_changes(zone, [RRsetChange('mail.example.com', 'A', 300, ['192.0.2.99'], 300, [])], TODAY)
