# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Replacing a file in one step, for every module that writes files a server or a checkout reads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat
import tempfile


def read_text(path):
    """A file's current content (str; undecodable bytes kept as surrogates), or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'surrogateescape')
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def replace_file(path, data, mode=None):
    """Write ``data`` (bytes) over ``path`` by a rename, so a reader sees the old file or the new one.

    ``mode`` None keeps the existing file's mode (and its owner when root), which must exist; otherwise
    the new file gets ``mode``. A symlink stays a symlink: the file it points to is replaced.
    Raises OSError; the temporary file never outlives a failure.
    """
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    info = os.stat(path) if mode is None else None
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(info.st_mode) if info else mode)
        if info and os.geteuid() == 0:
            os.chown(tmp, info.st_uid, info.st_gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    # Without this the rename itself may not survive a crash.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
