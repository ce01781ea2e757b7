"""The postfix_tls module's edge: the commands it runs, the TLSRPT build probe, when postmap must run."""

import os

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _postconf


class FakeModule:
    def __init__(self, outputs=None, rc=0):
        self.calls = []
        self.outputs = outputs or {}
        self.rc = rc

    def run_command(self, argv):
        self.calls.append(argv)
        return self.rc, self.outputs.get(argv[3] if len(argv) > 3 else '', ''), 'postconf: fatal: bad' if self.rc else ''


def test_every_command_names_the_config_dir_and_main_cf_is_written_in_one_call():
    module = FakeModule({'-d': 'mail_version = 3.7.11\n', 'a': 'a = 1\nb = \n'})
    postfix = _postconf.Postfix(module, '/srv/pf', 'postconf', '/usr/sbin/postmap')
    assert postfix.defaults() == {'mail_version': '3.7.11'}
    assert postfix.values(['b', 'a', 'b']) == {'a': '1', 'b': ''}
    postfix.set_values([('a', '1', '2'), ('b', '', 'x, y')])
    postfix.set_master_entry('127.0.0.1:8462/inet', '127.0.0.1:8462 inet n n n - - spawn user=nobody argv=/x')
    postfix.build_table('hash', '/srv/pf/sni', ['-F'])
    assert module.calls == [
        ['postconf', '-c', '/srv/pf', '-d'],
        ['postconf', '-c', '/srv/pf', 'a', 'b'],
        ['postconf', '-c', '/srv/pf', '-e', 'a=2', 'b=x, y'],
        ['postconf', '-c', '/srv/pf', '-Me', '127.0.0.1:8462/inet=127.0.0.1:8462 inet n n n - - spawn user=nobody argv=/x'],
        ['/usr/sbin/postmap', '-c', '/srv/pf', '-F', 'hash:/srv/pf/sni'],
    ]
    assert postfix.commands == ['postconf -e', 'postconf -M', 'postmap']


def test_a_failing_command_raises_with_its_output():
    postfix = _postconf.Postfix(FakeModule(rc=1), '/srv/pf')
    with pytest.raises(_postconf.PostconfError, match=r'postconf -c /srv/pf -d failed \(exit 1\): postconf: fatal: bad'):
        postfix.defaults()


@pytest.mark.parametrize('content, built', [
    (b'\x7fELF...TLSRPT is selected, but TLSRPT is not compiled in\x00...', False),
    (b'\x7fELF...smtp_tlsrpt_enable\x00...', True),
])
def test_the_tlsrpt_build_is_read_from_the_smtp_daemon(tmp_path, content, built):
    (tmp_path / 'smtp').write_bytes(content)
    assert _postconf.tlsrpt_built(str(tmp_path)) is built


def test_an_unreadable_smtp_daemon_leaves_the_tlsrpt_build_unknown(tmp_path):
    assert _postconf.tlsrpt_built(str(tmp_path)) is None


def test_postmap_runs_when_the_indexed_file_is_missing_or_older(tmp_path):
    source = tmp_path / 'partners'
    source.write_text('a.example secure\n')
    assert _postconf.table_is_stale('hash', str(source))
    indexed = tmp_path / 'partners.db'
    indexed.write_bytes(b'')
    stamp = os.stat(source).st_mtime_ns
    os.utime(indexed, ns=(stamp, stamp + 1))
    assert not _postconf.table_is_stale('hash', str(source))
    os.utime(indexed, ns=(stamp, stamp - 1))
    assert _postconf.table_is_stale('hash', str(source))
    # Types whose indexed file is not known are rebuilt only when their source changes.
    assert not _postconf.table_is_stale('texthash', str(source))
