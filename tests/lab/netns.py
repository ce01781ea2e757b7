"""Is this process in a private network and mount namespace (``scripts/lab-netns``)?

The Postfix tests bind 127.0.0.1:25, :53 and :443 and bind-mount a lab
resolv.conf over /etc/resolv.conf: on the machine's own loopback and mount
table that would collide with its services and change what every other
process resolves.  So they run only where both are private.

PID 1's namespaces cannot always be read (here PID 1 is a protected init),
so "private" is judged against this process's ancestors: ``lab-netns`` is
started from the machine's namespaces, and the command it runs is not.
"""

import contextlib
import os
import subprocess

PROC = '/proc'


def _namespace(pid, kind):
    """Inode of ``/proc/PID/ns/KIND``, or None if it cannot be read."""
    try:
        return os.stat(f'{PROC}/{pid}/ns/{kind}').st_ino
    except OSError:
        return None


def _parent(pid):
    try:
        with open(f'{PROC}/{pid}/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('PPid:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def outside_process(kind):
    """The nearest ancestor in another ``kind`` namespace ('net', 'mnt')
    than this process, or None when every readable ancestor shares ours."""
    own = _namespace('self', kind)
    pid = _parent(os.getpid())
    while pid > 0:
        theirs = _namespace(pid, kind)
        if theirs is not None and theirs != own:
            return pid
        pid = _parent(pid)
    return None


def network_interfaces():
    """Names of the interfaces in this process's network namespace."""
    with open(f'{PROC}/self/net/dev', encoding='ascii') as f:
        return [line.split(':', 1)[0].strip() for line in f.readlines()[2:]]


def shared_mounts():
    """Mount points of this namespace that propagate mounts to other namespaces."""
    with open(f'{PROC}/self/mountinfo', encoding='utf-8') as f:
        rows = [line.split(' - ', 1)[0].split() for line in f]
    # Fields: id, parent, major:minor, root, mount point, options, optional fields...
    return [row[4] for row in rows if any(tag.startswith('shared:') for tag in row[6:])]


def private_namespace_problems():
    """Why this process is not in a private net+mount namespace; [] if it is."""
    problems = []
    if outside_process('net') is None:
        problems.append("the network namespace is the machine's (no ancestor in another one)")
    others = [name for name in network_interfaces() if name != 'lo']
    if others:
        problems.append(f'network interfaces other than lo: {", ".join(others)}')
    if outside_process('mnt') is None:
        problems.append("the mount namespace is the machine's (no ancestor in another one)")
    shared = shared_mounts()
    if shared:
        problems.append(f'mounts that propagate to other namespaces: {", ".join(shared[:5])}')
    return problems


def require_private_namespace(what):
    """Raise RuntimeError naming ``what`` and scripts/lab-netns unless private."""
    problems = private_namespace_problems()
    if problems:
        raise RuntimeError(f'{what} only runs inside scripts/lab-netns (a private network and '
                           f'mount namespace): {"; ".join(problems)}')


@contextlib.contextmanager
def bind_mount(source, target, what):
    """``source`` mounted over ``target`` until the block ends.

    Only inside a private mount namespace (``what`` names the caller in the
    refusal): anywhere else the mount would change the whole machine.
    """
    require_private_namespace(what)
    subprocess.run(['mount', '--bind', source, target], check=True)
    try:
        yield
    finally:
        subprocess.run(['umount', target], check=True)
