# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The policy_site module: serve many domains' policy files from one web server, in one transaction.

Inside out: ``build_sites`` turns the validated ``domains`` option into Sites and policy texts (pure);
a backend renderer (``RENDERERS``, pure) turns Sites into configuration files; ``check_certificates``
reads each certificate FILE once and judges it with ``_certs``; ``apply_files`` compares every wanted
file with the disk, writes the changed ones atomically, runs the configuration test and restores
everything it wrote when the test fails. ``run_module`` is the module's body.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import errno
import ipaddress
import os
import re

from collections import namedtuple

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _apache_conf, _certs, _nginx_conf
from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._files import read_text, replace_file
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, policy_text

Site = namedtuple('Site', ['domain', 'host', 'policy_path', 'certificate', 'private_key'])

RENDERERS = {'apache': _apache_conf.render, 'nginx': _nginx_conf.render}

POLICY_URL_PATH = '/.well-known/mta-sts.txt'
POLICY_SUBDIR = 'policies'
FILE_MODE = 0o644
DIR_MODE = 0o755
_POLICY_FILE = re.compile(r'mta-sts\.(.+)\.txt\Z')
# HTTP-01 tokens are base64url (RFC 8555 section 8.3); anything else could name a path outside the directory.
_CHALLENGE_NAME = re.compile(r'[A-Za-z0-9_-]{1,255}\Z')
# Paths go into the server's configuration quoted; these would end the quotes or be read as a variable.
_UNSAFE_PATH = re.compile(r'["\\$\x00-\x1f\x7f]')

SITE_SPEC = dict(
    domain=dict(type='str', required=True),
    policy=dict(type='raw', required=True),
    certificate=dict(type='path'),
    private_key=dict(type='path'),
)

ARGUMENT_SPEC = dict(
    backend=dict(type='str', required=True, choices=sorted(RENDERERS)),
    domains=dict(type='list', elements='dict', required=True, options=SITE_SPEC),
    data_dir=dict(type='path', required=True),
    config_path=dict(type='path', required=True),
    listen=dict(type='list', elements='str', default=['0.0.0.0', '[::]']),
    https_port=dict(type='int', default=443),
    http_port=dict(type='int', default=80),
    acme_challenge_dir=dict(type='path'),
    acme_challenges=dict(type='dict'),
    test_command=dict(type='list', elements='str'),
    # A user name, not a secret.
    key_reader=dict(type='str', no_log=False),
)


class SiteError(Exception):
    """The run cannot go on; the message names the domain or option and the reason."""


# --- pure: input to Sites and files ---

def check_path(value, field):
    """An absolute path that can be written into a server configuration between double quotes."""
    if not isinstance(value, str) or not os.path.isabs(value):
        raise ValidationError(field, value, 'must be an absolute path')
    if _UNSAFE_PATH.search(value):
        raise ValidationError(field, value, 'must not contain double quotes, backslashes, "$" or control characters')
    return os.path.normpath(value)


def listen_address(value):
    """An IP address as a server's listen directive takes it: IPv6 in brackets."""
    try:
        address = ipaddress.ip_address(value[1:-1] if value.startswith('[') and value.endswith(']') else value)
    except ValueError:
        raise SiteError('listen %r: must be an IPv4 or IPv6 address' % (value,))
    return '[%s]' % address if address.version == 6 else str(address)


def policy_path(policy_dir, domain):
    return os.path.join(policy_dir, 'mta-sts.%s.txt' % domain)


def build_sites(domains, policy_dir):
    """Validate the ``domains`` option: ``(sites sorted by host, {domain: policy text})``.

    Raises SiteError naming the item and domain. U-labels become A-labels, so a domain given both ways is
    "listed twice".
    """
    if not domains:
        raise SiteError('domains: at least one domain is required')
    first_index = {}
    sites = []
    texts = {}
    for index, item in enumerate(domains):
        where = 'domains[%d]' % index
        try:
            domain = normalize_domain(item.get('domain'), where + '.domain')
        except ValidationError as exc:
            raise SiteError(str(exc))
        if domain in first_index:
            raise SiteError('%s: %s is listed twice (also domains[%d]); give each domain once'
                            % (where, domain, first_index[domain]))
        first_index[domain] = index
        where = '%s (%s)' % (where, domain)
        try:
            texts[domain] = policy_text(item.get('policy'), 'policy')
        except ValidationError as exc:
            raise SiteError('%s: invalid policy: %s' % (where, exc))
        certificate, private_key = item.get('certificate'), item.get('private_key')
        if bool(certificate) != bool(private_key):
            raise SiteError('%s: give certificate and private_key together, or neither' % where)
        try:
            if certificate:
                certificate = check_path(certificate, 'certificate')
                private_key = check_path(private_key, 'private_key')
        except ValidationError as exc:
            raise SiteError('%s: %s' % (where, exc))
        host = 'mta-sts.' + domain
        sites.append(Site(domain, host, policy_path(policy_dir, domain), certificate or None, private_key or None))
    sites.sort(key=lambda site: site.host)
    return sites, texts


def build_settings(params):
    """The renderers' settings from the module's parameters (paths checked, normalised)."""
    try:
        data_dir = check_path(params['data_dir'], 'data_dir')
        challenge_dir = params.get('acme_challenge_dir')
        settings = dict(
            config_path=check_path(params['config_path'], 'config_path'),
            data_dir=data_dir,
            policy_dir=os.path.join(data_dir, POLICY_SUBDIR),
            listen=list(params.get('listen') or []),
            https_port=params['https_port'],
            http_port=params['http_port'],
            acme_challenge_dir=check_path(challenge_dir, 'acme_challenge_dir') if challenge_dir else None,
        )
    except ValidationError as exc:
        raise SiteError(str(exc))
    if not settings['listen']:
        raise SiteError('listen: at least one address is required')
    settings['listen'] = [listen_address(address) for address in settings['listen']]
    for port in ('https_port', 'http_port'):
        low = 1 if port == 'https_port' else 0
        if not low <= settings[port] <= 65535:
            raise SiteError('%s %r: must be from %d to 65535' % (port, settings[port], low))
    if settings['http_port'] == settings['https_port']:
        raise SiteError('http_port and https_port must differ')
    if settings['config_path'].startswith(data_dir + os.sep):
        raise SiteError('config_path %r: must not be inside data_dir %r (the module owns data_dir)'
                        % (settings['config_path'], data_dir))
    return settings


def challenge_files(challenges, challenge_dir):
    """``{path: text}`` of the ``acme_challenges`` option."""
    if challenges is None:
        return {}
    if not challenge_dir:
        raise SiteError('acme_challenges needs acme_challenge_dir')
    files = {}
    for name, content in challenges.items():
        if not isinstance(name, str) or not _CHALLENGE_NAME.match(name):
            raise SiteError('acme_challenges: file name %r must be 1 to 255 letters, digits, "-" or "_" '
                            '(an HTTP-01 token)' % (name,))
        if not isinstance(content, str):
            raise SiteError('acme_challenges: the content of %s must be a string' % name)
        files[os.path.join(challenge_dir, name)] = content
    return files


def policy_results(sites, texts, changed_paths):
    return dict((site.domain, dict(
        id=policy_id(texts[site.domain]),
        policy=texts[site.domain],
        host=site.host,
        url='https://%s%s' % (site.host, POLICY_URL_PATH),
        path=site.policy_path,
        changed=site.policy_path in changed_paths,
    )) for site in sites)


# --- certificates: each file read once, judged by _certs ---

def _read_bytes(path):
    with open(path, 'rb') as handle:
        return handle.read()


def check_certificates(sites, now, read=_read_bytes, key_reader=None, stat=os.stat):
    """Check every site's certificate; return ``{domain: {path, not_after, days_left}}`` or raise SiteError.

    A pair of files shared by many sites (a SAN or wildcard certificate) is read and parsed once.
    ``key_reader`` is ``(name, uid, gids)`` of the user that must read every key, or None.
    """
    pairs = {}
    readable = {}  # path -> why the key_reader cannot read it, or None
    results = {}
    for site in sites:
        if not site.certificate:
            continue
        where = 'domains (%s)' % site.domain
        pair = (site.certificate, site.private_key)
        if pair not in pairs:
            pairs[pair] = _load_pair(pair, read)
        info = pairs[pair]
        if isinstance(info, str):
            raise SiteError('%s: %s' % (where, info))
        try:
            _certs.check_host(info, site.host, now)
        except _certs.CertificateError as exc:
            raise SiteError('%s: %s: %s' % (where, site.certificate, exc))
        if key_reader is not None:
            for kind, path in zip(('certificate', 'private key'), pair):
                if path not in readable:
                    readable[path] = _unreadable_part(path, key_reader, stat)
                if readable[path]:
                    raise SiteError('%s: %s %s is not readable by %s (key_reader), who must read it at every '
                                    'handshake: %s' % (where, kind, path, key_reader[0], readable[path]))
        results[site.domain] = dict(path=site.certificate, not_after=_certs.iso_utc(info.not_after),
                                    days_left=_certs.days_left(info, now))
    return results


def _load_pair(pair, read=_read_bytes):
    """The CertificateInfo of a (certificate, key) pair of files, or the reason it cannot be served (a str)."""
    contents = []
    for kind, path in zip(('certificate', 'private key'), pair):
        try:
            contents.append(read(path))
        except (IOError, OSError) as exc:
            return '%s file %s cannot be read: %s' % (kind, path, exc.strerror or exc)
    try:
        return _certs.read_certificate(*contents)
    except _certs.CertificateError as exc:
        return '%s (%s, %s)' % (exc, pair[0], pair[1])


def _unreadable_part(path, key_reader, stat):
    """Why the user ``key_reader`` cannot read ``path`` (a directory it cannot enter, or the file's mode), or None."""
    _name, uid, gids = key_reader
    directory = os.path.dirname(path)
    while True:
        info = stat(directory)
        if not _certs.can_search(info.st_mode, info.st_uid, info.st_gid, uid, gids):
            return 'the directory %s (mode %04o) cannot be entered' % (directory, info.st_mode & 0o7777)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    info = stat(path)
    if not _certs.can_read(info.st_mode, info.st_uid, info.st_gid, uid, gids):
        return 'mode %04o, owner uid %d, group gid %d; give the user read access through the group or owner' % (
            info.st_mode & 0o7777, info.st_uid, info.st_gid)
    return None


def reader_ids(name):
    """``(name, uid, gids)`` of a local user, from the password and group databases."""
    import grp
    import pwd
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise SiteError('key_reader %r: no such user on the managed host' % name)
    gids = set([user.pw_gid])
    gids.update(group.gr_gid for group in grp.getgrall() if name in group.gr_mem)
    return name, user.pw_uid, gids


# --- the edge: compare, write, test, restore ---

def write_atomic(path, text):
    """Replace ``path`` with ``text`` (mode 0644) by a rename, so a reader sees the old file or the new one."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, DIR_MODE)
    replace_file(path, text.encode('utf-8', 'surrogateescape'), FILE_MODE)


def stale_files(directory, wanted, pattern=None):
    """Files in ``directory`` (matching ``pattern``) that are not in ``wanted``."""
    try:
        names = os.listdir(directory)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise
    paths = (os.path.join(directory, name) for name in sorted(names) if pattern is None or pattern.match(name))
    return [path for path in paths if path not in wanted and os.path.isfile(path)]


class Changes(object):
    """Every file to write or remove, with its content before, so the run can be shown, done and undone."""

    def __init__(self, wanted, remove):
        self.before = {}
        self.times = {}
        self.write = {}
        for path in sorted(wanted):
            current = read_text(path)
            if current != wanted[path]:
                self.before[path] = current
                if current is not None:
                    info = os.stat(path)
                    self.times[path] = (info.st_atime_ns, info.st_mtime_ns)
                self.write[path] = wanted[path]
        self.remove = list(remove)
        for path in self.remove:
            self.before[path] = read_text(path)

    @property
    def paths(self):
        return set(self.write) | set(self.remove)

    def diff(self):
        return [dict(before_header=path, after_header=path, before=self.before[path] or '',
                     after=self.write.get(path, '')) for path in sorted(self.paths)]

    def apply(self, test):
        """Write, then ``test()`` (a reason for failure, or None); on failure restore and raise SiteError."""
        written = []
        try:
            for path in sorted(self.write):
                written.append(path)
                write_atomic(path, self.write[path])
            failure = test()
        except (IOError, OSError) as exc:
            failure = 'writing %s failed: %s' % (written[-1] if written else '?', exc)
        if failure:
            self.restore(written)
            raise SiteError('%s; every file written in this run was restored' % failure)
        for path in self.remove:
            os.unlink(path)

    def restore(self, written):
        """Put back what ``written`` held, with its modification time, so the files look untouched."""
        for path in reversed(written):
            if self.before[path] is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                write_atomic(path, self.before[path])
                os.utime(path, ns=self.times[path])


def run_module():
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        settings = build_settings(params)
        sites, texts = build_sites(params['domains'], settings['policy_dir'])
        challenges = challenge_files(params['acme_challenges'], settings['acme_challenge_dir'])
        key_reader = reader_ids(params['key_reader']) if params['key_reader'] else None
        now = datetime.datetime.now(datetime.timezone.utc)
        certificates = check_certificates(sites, now, key_reader=key_reader)
        # Apache reads certificates only at (re)load: its renderer writes each one's expiry date.
        config = RENDERERS[params['backend']](sites, dict(settings, certificates=certificates))
    except SiteError as exc:
        module.fail_json(msg=str(exc))
    for site in sites:
        if not site.certificate:
            module.warn('%s: no certificate yet, served on the HTTP port only (no HTTPS name until it has one)'
                        % site.domain)

    policies = dict((site.policy_path, texts[site.domain]) for site in sites)
    remove = stale_files(settings['policy_dir'], policies, _POLICY_FILE)
    if params['acme_challenges'] is not None:
        remove += stale_files(settings['acme_challenge_dir'], challenges)
    wanted = dict(policies)
    wanted.update(challenges)
    wanted.update(config)
    changes = Changes(wanted, remove)
    config_changed = bool(changes.paths & set(config))

    def test():
        if not (config_changed and params['test_command']):
            return None
        rc, out, err = module.run_command(params['test_command'])
        if rc == 0:
            return None
        return ('test_command %s failed (exit %d): %s' % (' '.join(params['test_command']), rc,
                                                          (err + out).strip()))

    if changes.paths and not module.check_mode:
        try:
            changes.apply(test)
        except SiteError as exc:
            module.fail_json(msg=str(exc), changed=False)

    result = dict(
        changed=bool(changes.paths),
        policies=policy_results(sites, texts, changes.paths),
        changed_policies=[site.domain for site in sites if site.policy_path in changes.paths],
        removed_policies=[_POLICY_FILE.match(os.path.basename(path)).group(1)
                          for path in remove if path.startswith(settings['policy_dir'] + os.sep)],
        config_changed=config_changed,
        certificates=certificates,
    )
    if module._diff:
        result['diff'] = changes.diff()
    module.exit_json(**result)
