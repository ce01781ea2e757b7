"""ZonefileProvider on temporary files: what it says when the file is not the one it needs."""

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError, ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.zonefile import ZonefileProvider
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import plan_name

ZONE = '$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 h 1 7200 3600 1209600 300\n'


def _provider(tmp_path, name='example.com.zone', text=ZONE):
    path = tmp_path / name
    path.write_text(text)
    return ZonefileProvider.from_params({'zone_file': str(tmp_path / name)}), path


def test_a_name_outside_the_one_zone_says_what_to_check(tmp_path):
    provider, path = _provider(tmp_path)
    with pytest.raises(ProviderError) as error:
        provider.find_zone('_mta-sts.example.org')
    assert str(error.value) == ('_mta-sts.example.org is not in zone example.com (zone file %s); check zone_file, or put '
                                '{zone} in it for several zones' % path)


def test_no_file_for_a_templated_zone_says_what_to_check(tmp_path):
    provider = ZonefileProvider.from_params({'zone_file': str(tmp_path / '{zone}.zone')})
    with pytest.raises(ProviderError, match=r'no zone file for _mta-sts.example.org: .*; check zone_file, or give zone$'):
        provider.find_zone('_mta-sts.example.org')


def test_a_file_changed_since_the_read_is_a_conflict_and_is_left_alone(tmp_path):
    provider, path = _provider(tmp_path)
    zone = provider.find_zone('_mta-sts.example.com')
    rrset = provider.read(zone, ['_mta-sts.example.com'])['_mta-sts.example.com']
    path.write_text(ZONE + 'www IN A 192.0.2.1\n')
    with pytest.raises(ConflictError, match='changed since it was read; nothing was written, re-run'):
        provider.apply(zone, [plan_name(rrset, 'v=STSv1; id=a;', lambda text: True, lambda a, b: a == b, 300)])
    assert path.read_text().endswith('www IN A 192.0.2.1\n')


def test_an_unreadable_file_is_named(tmp_path):
    provider = ZonefileProvider.from_params({'zone_file': str(tmp_path / 'missing.zone')})
    with pytest.raises(ProviderError, match='cannot read zone file .*missing.zone: No such file or directory'):
        provider.find_zone('_mta-sts.example.com')


def test_zone_file_is_required():
    with pytest.raises(ProviderError, match='zone_file: required by provider zonefile'):
        ZonefileProvider.from_params({})
