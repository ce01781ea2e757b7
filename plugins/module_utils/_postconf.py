# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The postfix_tls module's edge: ``postconf`` and ``postmap`` of one Postfix instance, and its map files.

Every command gets ``-c <config_dir>`` and runs through ``module.run_command`` with an argument list, never a
shell. Reading and writing are separate calls, so the module reads everything, compares, and writes only what
differs (or nothing, in check mode).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.mailsec.mta_sts.plugins.module_utils._files import replace_file
from ansible_collections.mailsec.mta_sts.plugins.module_utils._postfix import parse_postconf

# Where postmap puts the indexed file of a table, by type (DATABASE_README); other types are not checked.
_INDEXED_SUFFIX = {'hash': '.db', 'btree': '.db', 'lmdb': '.lmdb', 'cdb': '.cdb'}
# Written by src/smtp/smtp.c only under `#if !defined(USE_TLS) || !defined(USE_TLSRPT)` (Postfix >= 3.10):
# present in the smtp daemon exactly when it cannot send TLSRPT events.
_NO_TLSRPT = b'TLSRPT is selected, but TLSRPT is not compiled in'


class PostconfError(Exception):
    """A postconf or postmap command failed; the message has the command and its output."""


class Postfix(object):
    """One Postfix instance, addressed by its configuration directory."""

    def __init__(self, module, config_dir, postconf='postconf', postmap='postmap'):
        self.module = module
        self.config_dir = config_dir
        self.postconf = postconf
        self.postmap = postmap
        self.commands = []  # every command that changed something, for the tests of "no write on a re-run"

    def _run(self, command, args):
        argv = [command, '-c', self.config_dir] + list(args)
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            raise PostconfError('%s failed (exit %d): %s' % (' '.join(argv[:4] + (['...'] if len(argv) > 4 else [])),
                                                             rc, (err or out).strip()))
        return out

    def defaults(self):
        """The parsed ``postconf -d`` (every parameter's built-in default, mail_version among them)."""
        return parse_postconf(self._run(self.postconf, ['-d']))

    def values(self, names):
        """The current value of each parameter in ``names`` (its default when main.cf does not set it)."""
        # A name this Postfix does not know is only warned about and left out of the output.
        return parse_postconf(self._run(self.postconf, sorted(set(names))))

    def set_values(self, changes):
        """Write ``[(name, old, new)]`` to main.cf with one ``postconf -e`` call."""
        self.commands.append('postconf -e')
        self._run(self.postconf, ['-e'] + ['%s=%s' % (name, new) for name, _old, new in changes])

    def master_entry(self, service):
        """The master.cf line of ``service`` (``name/type``), or '' when there is none."""
        return self._run(self.postconf, ['-M', service]).strip()

    def set_master_entry(self, service, line):
        self.commands.append('postconf -M')
        self._run(self.postconf, ['-Me', '%s=%s' % (service, line)])

    def remove_master_entry(self, service):
        self.commands.append('postconf -MX')
        self._run(self.postconf, ['-MX', service])

    def build_table(self, table_type, path, flags=()):
        self.commands.append('postmap')
        self._run(self.postmap, list(flags) + ['%s:%s' % (table_type, path)])


def write_text(path, text, mode):
    """Replace ``path`` atomically. postmap gives the indexed file the source's group/other read bits, so the mode
    of the source decides who can read the table (0600 for the SNI table, which postmap -F fills with keys)."""
    replace_file(path, text.encode('utf-8', 'surrogateescape'), mode)


def table_is_stale(table_type, path):
    """Whether ``path``'s indexed file is missing or older than its source, so postmap must run."""
    suffix = _INDEXED_SUFFIX.get(table_type)
    if suffix is None:
        return False
    try:
        built = os.stat(path + suffix).st_mtime_ns
    except OSError:
        return True
    return built < os.stat(path).st_mtime_ns


def tlsrpt_built(daemon_directory):
    """Whether the smtp daemon in ``daemon_directory`` can send TLSRPT events: True, False, or None (unreadable).

    postconf cannot say it (see ``_postfix.feature_plan``); the daemon's own warning text can. Meaningful only for
    Postfix 3.10 and later, whose postconf -d lists smtp_tlsrpt_enable: older daemons lack the text as well.
    """
    try:
        with open(os.path.join(daemon_directory, 'smtp'), 'rb') as handle:
            return _NO_TLSRPT not in handle.read()
    except (IOError, OSError):
        return None
