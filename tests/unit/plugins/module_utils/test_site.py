import datetime
import os
import stat as stat_module

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _site
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import render_policy
from tests.lab.pki import LabCA

NOW = datetime.datetime.now(datetime.timezone.utc)
POLICY = {'mode': 'enforce', 'mx': ['mx.example.com'], 'max_age': 604800}
PARAMS = dict(data_dir='/srv/mta-sts', config_path='/etc/nginx/conf.d/mta-sts.conf', listen=['127.0.0.1'],
              https_port=443, http_port=80, acme_challenge_dir=None)


def build(items):
    return _site.build_sites(items, '/srv/mta-sts/policies')


def test_sites_are_sorted_by_host_with_a_labels_and_their_policy_texts():
    sites, texts = build([
        {'domain': 'Zeta.Example.', 'policy': POLICY, 'certificate': '/c/z.crt', 'private_key': '/c/z.key'},
        {'domain': 'bücher.example', 'policy': 'version: STSv1\nmode: none\nmax_age: 86400\n'},
    ])
    assert [site.domain for site in sites] == ['xn--bcher-kva.example', 'zeta.example']
    assert sites[1] == _site.Site('zeta.example', 'mta-sts.zeta.example', '/srv/mta-sts/policies/mta-sts.zeta.example.txt',
                                  '/c/z.crt', '/c/z.key')
    assert sites[0].certificate is None and sites[0].private_key is None
    assert texts == {'zeta.example': render_policy(POLICY),
                     'xn--bcher-kva.example': 'version: STSv1\nmode: none\nmax_age: 86400\n'}


@pytest.mark.parametrize('items, message', [
    ([], 'domains: at least one domain is required'),
    ([{'domain': 'a.example', 'policy': POLICY}, {'domain': 'A.example.', 'policy': POLICY}],
     'domains[1]: a.example is listed twice (also domains[0])'),
    ([{'domain': 'xn--bcher-kva.example', 'policy': POLICY}, {'domain': 'bücher.example', 'policy': POLICY}],
     'xn--bcher-kva.example is listed twice'),
    ([{'domain': 'bad domain', 'policy': POLICY}], "domains[0].domain 'bad domain'"),
    ([{'domain': 'a.example', 'policy': dict(POLICY, mode='strict')}],
     "domains[0] (a.example): invalid policy: mode 'strict': must be one of enforce, testing, none"),
    ([{'domain': 'a.example', 'policy': 'version: STSv1\nmode: enforce\n'}], 'domains[0] (a.example): invalid policy'),
    ([{'domain': 'a.example', 'policy': ['mode']}], 'domains[0] (a.example): invalid policy: policy'),
    ([{'domain': 'a.example', 'policy': POLICY, 'certificate': '/c/a.crt'}],
     'domains[0] (a.example): give certificate and private_key together, or neither'),
    ([{'domain': 'a.example', 'policy': POLICY, 'certificate': 'a.crt', 'private_key': '/c/a.key'}],
     "domains[0] (a.example): certificate 'a.crt': must be an absolute path"),
    ([{'domain': 'a.example', 'policy': POLICY, 'certificate': '/c/$ssl_server_name', 'private_key': '/c/a.key'}],
     'must not contain double quotes, backslashes, "$" or control characters'),
    ([{'domain': 'a.example', 'policy': POLICY, 'certificate': '/c/a.crt', 'private_key': '/c/a";.key'}],
     "private_key '/c/a\";.key'"),
])
def test_bad_domains_are_named(items, message):
    with pytest.raises(_site.SiteError) as caught:
        build(items)
    assert message in str(caught.value)


def test_settings_normalise_addresses_and_paths():
    settings = _site.build_settings(dict(PARAMS, listen=['0.0.0.0', '::', '[::1]'], data_dir='/srv/mta-sts/',
                                         acme_challenge_dir='/srv/challenges'))
    assert settings['listen'] == ['0.0.0.0', '[::]', '[::1]']
    assert settings['data_dir'] == '/srv/mta-sts' and settings['policy_dir'] == '/srv/mta-sts/policies'
    assert settings['acme_challenge_dir'] == '/srv/challenges'


@pytest.mark.parametrize('change, message', [
    (dict(listen=[]), 'listen: at least one address is required'),
    (dict(listen=['localhost']), "listen 'localhost': must be an IPv4 or IPv6 address"),
    (dict(https_port=0), 'https_port 0: must be from 1 to 65535'),
    (dict(http_port=65536), 'http_port 65536: must be from 0 to 65535'),
    (dict(http_port=443), 'http_port and https_port must differ'),
    (dict(config_path='/srv/mta-sts/site.conf'), 'must not be inside data_dir'),
    (dict(data_dir='relative'), "data_dir 'relative': must be an absolute path"),
])
def test_bad_settings_are_named(change, message):
    with pytest.raises(_site.SiteError, match=message.replace('(', r'\(').replace(')', r'\)')):
        _site.build_settings(dict(PARAMS, **change))


def test_challenge_files_are_tokens_in_the_directory():
    assert _site.challenge_files({'tok-EN_1': 'tok-EN_1.thumb'}, '/srv/ch') == {'/srv/ch/tok-EN_1': 'tok-EN_1.thumb'}
    assert _site.challenge_files(None, None) == {}
    for name in ('../x', 'a/b', '.hidden', ''):
        with pytest.raises(_site.SiteError, match='an HTTP-01 token'):
            _site.challenge_files({name: 'x'}, '/srv/ch')
    with pytest.raises(_site.SiteError, match='acme_challenges needs acme_challenge_dir'):
        _site.challenge_files({'tok': 'x'}, None)


@pytest.fixture(scope='module')
def files():
    ca = LabCA()
    shared = ca.issue(['mta-sts.a.example', '*.b.example'])
    return {
        '/c/shared.crt': shared[0], '/c/shared.key': shared[1],
        '/c/other.key': ca.issue('mta-sts.a.example')[1],
        '/c/garbage.crt': b'garbage',
    }


class Reader:
    def __init__(self, files):
        self.files = files
        self.reads = []

    def __call__(self, path):
        self.reads.append(path)
        if path not in self.files:
            raise IOError(2, 'No such file or directory')
        return self.files[path]


def sites_with(certificate, private_key, domains=('a.example', 'b.example')):
    return build([{'domain': domain, 'policy': POLICY, 'certificate': certificate, 'private_key': private_key}
                  for domain in domains])[0]


def test_a_shared_certificate_file_is_read_once(files):
    reader = Reader(files)
    results = _site.check_certificates(sites_with('/c/shared.crt', '/c/shared.key'), NOW, read=reader)
    assert reader.reads == ['/c/shared.crt', '/c/shared.key']
    assert sorted(results) == ['a.example', 'b.example']
    assert results['a.example']['path'] == '/c/shared.crt' and results['a.example']['days_left'] in (89, 90)
    assert results['a.example']['not_after'].endswith('Z')


@pytest.mark.parametrize('certificate, private_key, domains, message', [
    ('/c/missing.crt', '/c/shared.key', ['a.example'],
     'domains (a.example): certificate file /c/missing.crt cannot be read: No such file or directory'),
    ('/c/garbage.crt', '/c/shared.key', ['a.example'], 'domains (a.example): certificate holds no PEM certificate'),
    ('/c/shared.crt', '/c/other.key', ['a.example'], 'domains (a.example): private key does not match the certificate'),
    ('/c/shared.crt', '/c/shared.key', ['a.example', 'c.example'],
     'domains (c.example): /c/shared.crt: certificate does not cover mta-sts.c.example'),
])
def test_certificate_problems_name_the_domain(files, certificate, private_key, domains, message):
    with pytest.raises(_site.SiteError) as caught:
        _site.check_certificates(sites_with(certificate, private_key, domains), NOW, read=Reader(files))
    assert message in str(caught.value)


def test_an_expired_certificate_is_refused(files):
    with pytest.raises(_site.SiteError, match='domains \\(a.example\\): /c/shared.crt: certificate expired at'):
        _site.check_certificates(sites_with('/c/shared.crt', '/c/shared.key', ['a.example']),
                                 NOW + datetime.timedelta(days=91), read=Reader(files))


class Stat:
    """os.stat results by path: (mode, uid, gid)."""

    def __init__(self, modes):
        self.modes = modes

    def __call__(self, path):
        mode, uid, gid = self.modes.get(path, (0o755, 0, 0))
        return os.stat_result((stat_module.S_IFREG | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


WWW = ('www-data', 33, {33})


@pytest.mark.parametrize('modes, problem', [
    ({'/c/shared.key': (0o640, 0, 33)}, None),
    ({'/c/shared.key': (0o600, 0, 0)}, 'private key /c/shared.key is not readable by www-data (key_reader), who must '
                                       'read it at every handshake: mode 0600, owner uid 0, group gid 0'),
    ({'/c/shared.crt': (0o600, 0, 0)}, 'certificate /c/shared.crt is not readable by www-data'),
    ({'/c': (0o750, 0, 0)}, 'the directory /c (mode 0750) cannot be entered'),
])
def test_key_reader_access_is_computed_from_the_modes(files, modes, problem):
    sites = sites_with('/c/shared.crt', '/c/shared.key')

    def check():
        return _site.check_certificates(sites, NOW, read=Reader(files), key_reader=WWW, stat=Stat(modes))

    if problem is None:
        assert sorted(check()) == ['a.example', 'b.example']
    else:
        with pytest.raises(_site.SiteError) as caught:
            check()
        assert problem in str(caught.value) and 'domains (a.example)' in str(caught.value)


def test_reader_ids_of_a_missing_user():
    with pytest.raises(_site.SiteError, match="key_reader 'no-such-user-here': no such user"):
        _site.reader_ids('no-such-user-here')
    assert _site.reader_ids('root')[1] == 0


# --- the transaction on real files ---

def test_changes_write_only_what_differs_and_restore_on_failure(tmp_path):
    same, old, new = (str(tmp_path / name) for name in ('same.txt', 'old.txt', 'sub/new.txt'))
    for path, text in ((same, 'same\n'), (old, 'old\n')):
        with open(path, 'w') as handle:
            handle.write(text)
    os.utime(old, ns=(1, 1000000000))
    changes = _site.Changes({same: 'same\n', old: 'changed\n', new: 'new\n'}, [])
    assert changes.paths == {old, new}
    assert [(d['before_header'], d['before'], d['after']) for d in changes.diff()] == [
        (old, 'old\n', 'changed\n'), (new, '', 'new\n')]
    with pytest.raises(_site.SiteError, match='nginx -t failed; every file written in this run was restored'):
        changes.apply(lambda: 'nginx -t failed')
    assert not os.path.exists(new)
    with open(old) as handle:
        assert handle.read() == 'old\n'
    assert os.stat(old).st_mtime_ns == 1000000000
    changes.apply(lambda: None)
    with open(new) as handle:
        assert handle.read() == 'new\n'
    assert stat_module.S_IMODE(os.stat(new).st_mode) == 0o644
    assert _site.Changes({same: 'same\n', old: 'changed\n', new: 'new\n'}, []).paths == set()


def test_stale_policy_files_are_found_and_removed_after_the_test(tmp_path):
    policies = tmp_path / 'policies'
    policies.mkdir()
    for name in ('mta-sts.keep.example.txt', 'mta-sts.gone.example.txt', 'README'):
        (policies / name).write_text('x')
    keep = str(policies / 'mta-sts.keep.example.txt')
    stale = _site.stale_files(str(policies), {keep: 'x'}, _site._POLICY_FILE)
    assert stale == [str(policies / 'mta-sts.gone.example.txt')]
    changes = _site.Changes({keep: 'x'}, stale)
    assert changes.diff() == [dict(before_header=stale[0], after_header=stale[0], before='x', after='')]
    with pytest.raises(_site.SiteError):
        changes.apply(lambda: 'failed')
    assert os.path.exists(stale[0])
    changes.apply(lambda: None)
    assert sorted(os.listdir(str(policies))) == ['README', 'mta-sts.keep.example.txt']
    assert _site.stale_files(str(tmp_path / 'missing'), {}) == []
