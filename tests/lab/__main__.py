"""Run the Knot lab outside pytest (``make demo``, manual poking).

    .venv/bin/python -m tests.lab up --dir DIR --zone alpha.example --zone beta.example [--port 5300]
    .venv/bin/python -m tests.lab status --dir DIR
    .venv/bin/python -m tests.lab down --dir DIR

``up`` leaves knotd running in its own session and writes DIR/knotd.pid,
DIR/lab.env (``. DIR/lab.env`` in a shell) and DIR/lab.json.
"""

import argparse
import json
import os
import shlex
import signal
import sys
import time

import dns.message
import dns.query
import dns.rcode

from .knot import STOP_TIMEOUT, KnotLab, LabError

PID_FILE = 'knotd.pid'
ENV_FILE = 'lab.env'
JSON_FILE = 'lab.json'


def _path(workdir, name):
    return os.path.join(workdir, name)


def _read_pid(workdir):
    try:
        with open(_path(workdir, PID_FILE), encoding='ascii') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _is_our_knotd(pid, workdir):
    """True if ``pid`` is alive and is the knotd of this lab.

    Checking the command line guards against signalling an unrelated
    process that reused the pid.  A zombie counts as gone: once detached,
    knotd's parent is whatever reaps orphans here, which may be slow to.
    """
    try:
        with open(f'/proc/{pid}/stat', encoding='ascii') as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            argv = f.read().split(b'\0')
    except (OSError, IndexError):
        return False
    conf = _path(os.path.abspath(workdir), 'knot.conf').encode()
    return state != 'Z' and os.path.basename(argv[0]) == b'knotd' and conf in argv


def _load_facts(workdir):
    with open(_path(workdir, JSON_FILE), encoding='utf-8') as f:
        return json.load(f)


def _write_facts(lab, workdir):
    facts = lab.facts()
    with open(_path(workdir, ENV_FILE), 'w', encoding='utf-8') as f:
        for key, value in facts.items():
            f.write(f'export {key}={shlex.quote(value)}\n')
    as_json = dict(facts, LAB_DNS_PORT=lab.port, LAB_ZONES=lab.zones)
    with open(_path(workdir, JSON_FILE), 'w', encoding='utf-8') as f:
        json.dump(as_json, f, indent=2)
        f.write('\n')
    for name in (ENV_FILE, JSON_FILE):
        os.chmod(_path(workdir, name), 0o600)   # they hold the TSIG secret


def cmd_up(args):
    workdir = os.path.abspath(args.dir)
    pid = _read_pid(workdir)
    if pid and _is_our_knotd(pid, workdir):
        print(f'lab already running in {workdir} (pid {pid})', file=sys.stderr)
        return 1
    lab = KnotLab(workdir, args.zone, port=args.port)
    try:
        lab.start(detach=True)
    except LabError as exc:
        print(f'lab failed to start: {exc}', file=sys.stderr)
        return 1
    with open(_path(workdir, PID_FILE), 'w', encoding='ascii') as f:
        f.write(f'{lab.pid}\n')
    _write_facts(lab, workdir)
    print(f'knotd pid {lab.pid} on {lab.address}@{lab.port}, {len(lab.zones)} zone(s), '
          f'ready in {lab.startup_seconds:.2f}s; . {_path(workdir, ENV_FILE)}')
    return 0


def cmd_down(args):
    workdir = os.path.abspath(args.dir)
    pid = _read_pid(workdir)
    if not pid or not _is_our_knotd(pid, workdir):
        print('lab not running')
        _remove(_path(workdir, PID_FILE))
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _is_our_knotd(pid, workdir):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
        time.sleep(0.02)
    _remove(_path(workdir, PID_FILE))
    print(f'knotd pid {pid} stopped')
    return 0


def cmd_status(args):
    """Exit 0 if knotd runs and answers SOA for every zone, 3 otherwise."""
    workdir = os.path.abspath(args.dir)
    pid = _read_pid(workdir)
    if not pid or not _is_our_knotd(pid, workdir):
        print('lab not running')
        return 3
    facts = _load_facts(workdir)
    server, port = facts['LAB_DNS_SERVER'], facts['LAB_DNS_PORT']
    bad = []
    for zone in facts['LAB_ZONES']:
        try:
            r = dns.query.tcp(dns.message.make_query(zone + '.', 'SOA'), server,
                              port=port, timeout=2)
            if r.rcode() != dns.rcode.NOERROR:
                bad.append(zone)
        except Exception:  # any failure means "not answering"; keep going
            bad.append(zone)
    state = 'answering' if not bad else f'NOT answering for {", ".join(bad[:5])}'
    print(f'knotd pid {pid} on {server}@{port}, {len(facts["LAB_ZONES"])} zone(s), {state}')
    return 0 if not bad else 3


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.lab',
                                     description='Knot DNS test lab on loopback')
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up', help='start knotd in the background')
    up.add_argument('--dir', required=True, help='work directory (created)')
    up.add_argument('--zone', action='append', required=True, help='zone to serve (repeat)')
    up.add_argument('--port', type=int, default=None, help='port (default: a free one)')
    for name, text in (('down', 'stop knotd and wait for it'), ('status', 'is it running?')):
        sub.add_parser(name, help=text).add_argument('--dir', required=True)
    args = parser.parse_args(argv)
    return {'up': cmd_up, 'down': cmd_down, 'status': cmd_status}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
