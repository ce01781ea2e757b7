# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The postfix_tls module's pure core: what main.cf, master.cf and the map files should hold. No I/O.

``_postconf`` reads the current state with ``postconf`` and applies what this module plans; the module
file ties the two together. Every function here takes text or dicts and returns text or dicts, so the
decisions (feature support by version, the order of smtp_tls_policy_maps, what changed) are tested without
a Postfix.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import hostname_problem, normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError

PARTNER_LEVELS = ('encrypt', 'verify', 'secure', 'dane', 'dane-only')
# Postfix reads match= only at these levels (postconf(5) smtp_tls_policy_maps).
MATCH_LEVELS = ('verify', 'secure')
DANE_LEVELS = ('dane', 'dane-only')
# Keywords Postfix accepts in a match= list besides names (TLS_README "Server certificate verification").
MATCH_KEYWORDS = ('hostname', 'nexthop', 'dot-nexthop')

TABLE_HEADER = '# Managed by mailsec.mta_sts.postfix_tls: edits here are overwritten.\n'

_VERSION = re.compile(r'(\d+)\.(\d+)(?:\.(\d+))?')


# --- postconf output ---

def parse_postconf(text):
    """``{name: value}`` from ``postconf`` output (``name = value`` lines). Blank and ``#`` lines are skipped and
    a line starting with white space continues the one before, as in main.cf."""
    values = {}
    name = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        if line[0] in ' \t' and name is not None:
            values[name] = (values[name] + ' ' + line.strip()).strip()
            continue
        name, sep, value = line.partition('=')
        if not sep:
            raise ValueError('not a "name = value" line of postconf output: %r' % line)
        name = name.strip()
        values[name] = value.strip()
    return values


def parse_version(value):
    """``(major, minor, patch)`` of a ``mail_version`` value: ``3.7.11``, or ``3.11-20250101`` for a snapshot."""
    match = _VERSION.match(value or '')
    if not match:
        raise ValueError('mail_version %r is not a Postfix version' % (value,))
    return tuple(int(part or 0) for part in match.groups())


def split_list(value):
    """The items of a Postfix list value: separated by commas or white space, except inside ``{...}``.

    ``inline:{ a=b, c=d }`` and ``cidr:{{0.0.0.0/0 x}}`` stay one item each.
    """
    if isinstance(value, (list, tuple)):
        return [item for item in (str(v).strip() for v in value) if item]
    items = []
    current = []
    depth = 0
    for char in value or '':
        if char == '{':
            depth += 1
        elif char == '}' and depth:
            depth -= 1
        if depth == 0 and (char == ',' or char.isspace()):
            if current:
                items.append(''.join(current))
            current = []
            continue
        current.append(char)
    if current:
        items.append(''.join(current))
    return items


def same_value(old, new):
    """Whether two main.cf values mean the same to Postfix (list separators and spacing aside)."""
    return split_list(old) == split_list(new)


# --- partners ---

def _match_names(names, field):
    if isinstance(names, str):
        names = split_list(names.replace(':', ' '))
    cleaned = []
    for index, name in enumerate(names or []):
        where = '%s[%d]' % (field, index)
        if not isinstance(name, str):
            raise ValidationError(where, name, 'must be a string')
        if name in MATCH_KEYWORDS:
            cleaned.append(name)
            continue
        host = name[1:] if name.startswith('.') else name
        problem = hostname_problem(host.rstrip('.'))
        if problem:
            raise ValidationError(where, name, 'must be a host name, ".parent.domain" or one of %s: %s'
                                  % (', '.join(MATCH_KEYWORDS), problem))
        cleaned.append(name.rstrip('.').lower())
    return cleaned


def normalize_partners(partners, dane_enabled):
    """Validate the ``partners`` option: ``[{domain, level, match}]`` with A-label domains and clean match lists.

    Raises ValidationError naming ``partners[i].field`` and the rule, before anything is changed.
    """
    result = []
    seen = {}
    for index, partner in enumerate(partners or []):
        where = 'partners[%d]' % index
        if not isinstance(partner, dict):
            raise ValidationError(where, partner, 'must be a dict with domain, level and match')
        domain = normalize_domain(partner.get('domain'), where + '.domain')
        if domain in seen:
            raise ValidationError(where + '.domain', partner.get('domain'),
                                  'duplicate partner: %s is also partners[%d] (domains compare without case)'
                                  % (domain, seen[domain]))
        seen[domain] = index
        level = partner.get('level')
        if level not in PARTNER_LEVELS:
            raise ValidationError(where + '.level', level, 'must be one of %s' % ', '.join(PARTNER_LEVELS))
        if level in DANE_LEVELS and not dane_enabled:
            raise ValidationError(where + '.level', level, 'needs DANE: set dane.enabled (without DNSSEC lookups '
                                  'Postfix lowers "dane" to "may" and defers all mail at "dane-only")')
        match = _match_names(partner.get('match'), where + '.match')
        if match and level not in MATCH_LEVELS:
            raise ValidationError(where + '.match', partner.get('match'),
                                  'is only read at the levels %s, not at %s' % (' and '.join(MATCH_LEVELS), level))
        result.append(dict(domain=domain, level=level, match=match))
    return result


def render_partner_table(partners):
    """The source text of the partner policy table (one ``domain level [match=a:b]`` line each)."""
    lines = [TABLE_HEADER]
    for partner in partners:
        line = '%s %s' % (partner['domain'], partner['level'])
        if partner['match']:
            line += ' match=' + ':'.join(partner['match'])
        lines.append(line + '\n')
    return ''.join(lines)


# --- smtp_tls_policy_maps ---

def merge_policy_maps(current, ours, keep=True, managed=()):
    """The new ``smtp_tls_policy_maps`` list.

    ``current`` is the value now (a string or a list); ``ours`` the tables this module wants, in order (partners,
    DANE, MTA-STS). The admin's own entries come first, so a hand-written table still wins, then ours. ``managed``
    are entries this module may have written before and no longer wants (a DANE map after DANE is turned off):
    they are dropped, never kept as the admin's. With ``keep`` false only ours remain.
    """
    ours = split_list(ours)
    mine = set(ours) | set(managed)
    kept = []
    if keep:
        for entry in split_list(current):
            if entry not in mine and entry not in kept:
                kept.append(entry)
    merged = []
    for entry in kept + ours:
        if entry not in merged:
            merged.append(entry)
    return merged


def postfix_probe(dnssec_probe):
    """``dnssec_probe`` as main.cf gets it: the name without a final dot (the root stays ``.``). Postfix 3.7 answered
    ``ns:sts.example.`` with "DNSSEC validation may be unavailable" where ``ns:sts.example`` passed (seen in the lab)."""
    rdtype, _sep, name = dnssec_probe.partition(':')
    return '%s:%s' % (rdtype, name.rstrip('.') or '.')


def same_socketmaps(current, table):
    """The entries of ``current`` that are socketmaps with the same map name as ``table`` (at any address)."""
    if not table.startswith('socketmap:'):
        return []
    name = table.rsplit(':', 1)[-1]
    return [entry for entry in split_list(current)
            if entry.startswith('socketmap:') and entry.rsplit(':', 1)[-1] == name]


# --- inbound ---

def normalize_certificates(certificates):
    """Validate ``inbound.certificates``: ``[{names, cert, key}]`` with A-label names, each name once overall."""
    result = []
    owner = {}
    for index, item in enumerate(certificates or []):
        where = 'inbound.certificates[%d]' % index
        if not isinstance(item, dict):
            raise ValidationError(where, item, 'must be a dict with names, cert and key')
        names = item.get('names') or []
        if not names:
            raise ValidationError(where + '.names', names, 'at least one MX host name is required')
        clean = []
        for position, name in enumerate(names):
            host = normalize_domain(name, '%s.names[%d]' % (where, position))
            if host in owner:
                raise ValidationError('%s.names[%d]' % (where, position), name,
                                      'listed twice (also in inbound.certificates[%d])' % owner[host])
            owner[host] = index
            clean.append(host)
        for part in ('cert', 'key'):
            path = item.get(part)
            if not isinstance(path, str) or not path.startswith('/'):
                raise ValidationError('%s.%s' % (where, part), path, 'must be an absolute path')
            if re.search(r'[\s,]', path):
                raise ValidationError('%s.%s' % (where, part), path,
                                      'must not contain white space or commas (Postfix lists split on them)')
        result.append(dict(names=clean, cert=item['cert'], key=item['key']))
    return result


def render_sni_table(certificates):
    """The ``postmap -F`` source of ``tls_server_sni_maps``: ``name key cert`` for every name of every certificate.

    postmap -F replaces the file names by the files' contents, key first, then the chain (postconf(5)
    tls_server_sni_maps).
    """
    lines = [TABLE_HEADER]
    for item in certificates:
        for name in item['names']:
            lines.append('%s %s %s\n' % (name, item['key'], item['cert']))
    return ''.join(lines)


# --- settings ---

def plan_settings(current, desired):
    """``[(name, old, new)]`` for every desired main.cf setting whose current value means something else.

    ``current`` maps names to their values now (``postconf name...`` output, defaults included); a name missing
    there counts as empty. Sorted by name, so the ``postconf -e`` command line and the diff are stable.
    """
    changes = []
    for name in sorted(desired):
        old = current.get(name, '')
        new = desired[name]
        if not same_value(old, new):
            changes.append((name, old, new))
    return changes


def master_entry(listen, user, argv):
    """The master.cf line of the DANE socketmap: ``<listen> inet n n n - - spawn user=... argv=...``.

    Unprivileged, unchrooted (the script reads /etc/resolv.conf and its own interpreter), no wakeup, default
    process limit; Postfix's spawn(8) runs the program once per connection, on stdin/stdout.
    """
    return '%s inet n n n - - spawn user=%s argv=%s' % (listen, user, ' '.join(argv))


def same_master_entry(old, new):
    return (old or '').split() == (new or '').split()


# --- features by version ---

# What each feature sets, and the parameter whose presence in `postconf -d` shows the release supports it.
# tlsrpt: postconf.5 at v3.10.0 ("This feature is available in Postfix >= 3.10"; it "requires that Postfix is
#   built with a TLSRPT supporting library"). enforce_sts_mx_patterns: postconf.5 at v3.10.5 (">= 3.10.5").
#   requiretls: postconf.5 at v3.11.0 (requiretls_enable, ">= 3.11"). Read in postfix/proto/postconf.proto of
#   the vdukhovni/postfix mirror at those tags.
FEATURES = (
    ('tlsrpt', 'smtp_tlsrpt_enable', (3, 10, 0)),
    ('enforce_sts_mx_patterns', 'smtp_tls_enforce_sts_mx_patterns', (3, 10, 5)),
    ('requiretls', 'requiretls_enable', (3, 11, 0)),
)


def _dotted(version):
    return '.'.join(str(part) for part in version)


def feature_plan(defaults, wanted, tlsrpt_built=None, tlsrpt_socket='run/tlsrpt/tlsrpt.sock'):
    """Which optional features to apply on this Postfix: ``{name: {applied, reason, settings}}``.

    ``defaults`` is the parsed ``postconf -d`` output, ``wanted`` the ``features`` option (name -> bool).
    A feature is applied when it is wanted and ``postconf -d`` knows its parameter (a backport counts, a version
    number alone would not); otherwise ``reason`` says why not, naming the release that has it.

    TLSRPT needs more: ``postconf -d`` lists smtp_tlsrpt_enable in every 3.10 build, with or without the TLSRPT
    library (src/global/mail_params.h defines it outside ``#ifdef USE_TLSRPT``), so the build cannot be told
    from it. ``tlsrpt_built`` is what the caller found out from the smtp daemon (True, False, None = unknown;
    see ``_postconf.tlsrpt_built``): only True applies it.
    """
    version_text = defaults.get('mail_version', '')
    plan = {}
    for name, parameter, since in FEATURES:
        entry = dict(applied=False, reason='', settings={})
        plan[name] = entry
        if not wanted.get(name):
            entry['reason'] = 'not requested (features.%s is false): Postfix\'s own setting is left alone' % name
            continue
        if parameter not in defaults:
            entry['reason'] = ('skipped: needs Postfix %s or later (%s); this is Postfix %s'
                               % (_dotted(since), parameter, version_text or 'of unknown version'))
            continue
        if name == 'tlsrpt' and tlsrpt_built is not True:
            entry['reason'] = ('skipped: this Postfix %s was built without TLSRPT support (no libtlsrpt; its smtp '
                               'daemon says "TLSRPT is not compiled in")' % version_text
                               if tlsrpt_built is False else
                               'skipped: cannot tell whether this Postfix %s was built with TLSRPT support (its '
                               'smtp daemon could not be read)' % version_text)
            continue
        entry['applied'] = True
        entry['reason'] = 'applied: Postfix %s supports it' % version_text
        if name == 'tlsrpt':
            entry['settings'] = dict(smtp_tlsrpt_enable='yes', smtp_tlsrpt_socket_name=tlsrpt_socket)
        else:
            entry['settings'] = {parameter: 'yes'}
    return plan


# --- the whole run ---

CLIENT_LEVELS = ('none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure')
SERVER_LEVELS = ('none', 'may', 'encrypt')
DEFAULT_MTA_STS_MAP = 'socketmap:inet:127.0.0.1:8461:postfix'
DEFAULT_DANE_MAP = 'socketmap:inet:127.0.0.1:8462:dane'
# Table types a partner table of ours may have been built as, so a change of default_database_type (or of the
# partner list to empty) removes the old entry instead of keeping it as the admin's.
TABLE_TYPES = ('hash', 'btree', 'lmdb', 'cdb', 'dbm', 'sdbm')
_PROTOCOL = re.compile(r'(?:(?:>=|<=)?TLSv1(?:\.[0-3])?|!(?:SSLv2|SSLv3|TLSv1(?:\.[0-3])?))\Z')
_LISTEN = re.compile(r'(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|localhost):\d{1,5}\Z')


# Everything plan_tls may set or reads, for one `postconf name...` call.
MANAGED_SETTINGS = (
    'smtp_tls_CAfile', 'smtp_tls_CApath', 'smtp_tls_security_level', 'smtp_tls_policy_maps', 'smtp_dns_support_level',
    'dnssec_probe', 'smtpd_tls_chain_files', 'smtpd_tls_security_level', 'smtpd_tls_protocols',
    'smtpd_tls_mandatory_protocols', 'tls_server_sni_maps', 'smtp_tlsrpt_enable', 'smtp_tlsrpt_socket_name',
    'smtp_tls_enforce_sts_mx_patterns', 'requiretls_enable', 'default_database_type', 'daemon_directory',
)


class Plan(object):
    """Everything one run wants: main.cf ``settings`` (name -> value), map ``tables`` (path -> dict of text,
    table type and postmap flags), the DANE ``master`` entry (``(service, line, wanted)`` or None), ``features``, and the
    normalised inbound ``certificates`` (their files are checked at the edge)."""

    def __init__(self, settings, tables, master, features, policy_maps, certificates):
        self.certificates = certificates
        self.settings = settings
        self.tables = tables
        self.master = master
        self.features = features
        self.policy_maps = policy_maps


def _protocols(value, field):
    items = split_list(value)
    if not items:
        raise ValidationError(field, value, 'must name the TLS protocols, e.g. ">=TLSv1.2"')
    for item in items:
        if not _PROTOCOL.match(item):
            raise ValidationError(field, value, 'item %r is not a Postfix protocol: use ">=TLSv1.2", "TLSv1.3" or '
                                  '"!TLSv1.1" forms' % item)
    return ', '.join(items)


def check_options(params):
    """Validate what the argument spec cannot: raises ValidationError naming the option and the rule."""
    dane = params.get('dane') or {}
    level = params.get('security_level')
    if level not in CLIENT_LEVELS:
        raise ValidationError('security_level', level, 'must be one of %s' % ', '.join(CLIENT_LEVELS))
    if level in DANE_LEVELS and not dane.get('enabled'):
        raise ValidationError('security_level', level, 'needs dane.enabled (DNSSEC lookups and a validating resolver)')
    if bool(params.get('ca_file')) == bool(params.get('ca_path')):
        raise ValidationError('ca_file', params.get('ca_file'), 'give exactly one of ca_file and ca_path: without a '
                              'CA every "secure" delivery is deferred')
    if dane.get('enabled'):
        service = dane.get('service') or {}
        if not _LISTEN.match(service.get('listen') or ''):
            raise ValidationError('dane.service.listen', service.get('listen'), 'must be address:port, e.g. '
                                  '127.0.0.1:8462')
        if not service.get('argv'):
            raise ValidationError('dane.service.argv', service.get('argv'), 'must give the program and its arguments')
        for index, arg in enumerate(service['argv']):
            if not arg or re.search(r'[\s{}]', arg):
                raise ValidationError('dane.service.argv[%d]' % index, arg, 'must be non-empty, without white space or '
                                      'braces (master.cf splits on them)')
        if not re.match(r'[a-z0-9]+:\S+\Z', dane.get('dnssec_probe') or ''):
            raise ValidationError('dane.dnssec_probe', dane.get('dnssec_probe'), 'must be type:name, e.g. ns:. or '
                                  'soa:example.org.')
    inbound = params.get('inbound') or {}
    level = inbound.get('security_level', 'may')
    if level not in SERVER_LEVELS:
        raise ValidationError('inbound.security_level', level, 'must be one of %s' % ', '.join(SERVER_LEVELS))


def plan_tls(params, current, defaults, tlsrpt_built=None):
    """The Plan for the module's ``params`` (validated here first), given ``current`` main.cf values and the parsed
    ``postconf -d`` output ``defaults``. Raises ValidationError before anything is read from or written to disk."""
    check_options(params)
    dane = params.get('dane') or {}
    dane_on = bool(dane.get('enabled'))
    partners = normalize_partners(params.get('partners'), dane_on)
    inbound = params.get('inbound') or {}
    certificates = normalize_certificates(inbound.get('certificates'))
    config_dir = params['config_dir'].rstrip('/') or '/'
    db_type = current.get('default_database_type') or defaults.get('default_database_type') or 'hash'
    features = feature_plan(defaults, params.get('features') or {}, tlsrpt_built,
                            (params.get('features') or {}).get('tlsrpt_socket_name') or 'run/tlsrpt/tlsrpt.sock')

    tables = {}
    partner_map = params.get('partner_map') or config_dir + '/mailsec_tls_partners'
    ours = []
    if partners:
        tables[partner_map] = dict(text=render_partner_table(partners), type=db_type, flags=[])
        ours.append('%s:%s' % (db_type, partner_map))
    if dane_on:
        ours.append(dane['map'])
    if params.get('mta_sts_map'):
        ours.append(params['mta_sts_map'])
    managed = ['%s:%s' % (kind, partner_map) for kind in TABLE_TYPES]
    managed += [DEFAULT_MTA_STS_MAP, DEFAULT_DANE_MAP, dane.get('map') or DEFAULT_DANE_MAP]
    current_maps = current.get('smtp_tls_policy_maps', '')
    # A resolver or the DANE lookup moved to another address leaves its old entry behind; kept as the admin's
    # (in front), that dead socketmap would defer every delivery it is asked about. Socketmaps are told apart by
    # their map name, which the resolver and our DANE lookup fix.
    managed += same_socketmaps(current_maps, dane.get('map') or DEFAULT_DANE_MAP)
    if params.get('mta_sts_map'):
        managed += same_socketmaps(current_maps, params['mta_sts_map'])
    policy_maps = merge_policy_maps(current_maps, ours, params.get('keep_policy_maps', True), managed)

    settings = dict(
        smtp_tls_CAfile=params.get('ca_file') or '',
        smtp_tls_CApath=params.get('ca_path') or '',
        smtp_tls_security_level='dane' if dane_on else params['security_level'],
        smtp_tls_policy_maps=', '.join(policy_maps),
    )
    if dane_on:
        settings.update(smtp_dns_support_level='dnssec', dnssec_probe=postfix_probe(dane['dnssec_probe']))
    if certificates:
        first = certificates[0]
        settings.update(
            smtpd_tls_chain_files='%s, %s' % (first['key'], first['cert']),
            smtpd_tls_security_level=inbound.get('security_level') or 'may',
            smtpd_tls_protocols=_protocols(inbound.get('protocols') or '>=TLSv1.2', 'inbound.protocols'),
        )
        settings['smtpd_tls_mandatory_protocols'] = settings['smtpd_tls_protocols']
        sni_map = inbound.get('sni_map') or config_dir + '/mailsec_sni'
        sni_entry = '%s:%s' % (db_type, sni_map)
        if sum(len(item['names']) for item in certificates) > 1:
            tables[sni_map] = dict(text=render_sni_table(certificates), type=db_type, flags=['-F'])
            settings['tls_server_sni_maps'] = sni_entry
        elif split_list(current.get('tls_server_sni_maps', '')) == [sni_entry]:
            # One name needs no SNI table: drop ours, never an admin's own.
            settings['tls_server_sni_maps'] = ''
    for entry in features.values():
        settings.update(entry['settings'])

    master = None
    service = dane.get('service') or {}
    if dane_on or (service.get('argv') and _LISTEN.match(service.get('listen') or '')):
        # With DANE off the entry is still named, so that one exactly as this module writes it is removed.
        master = ('%s/inet' % service['listen'], master_entry(service['listen'], service['user'], service['argv']),
                  dane_on)
    return Plan(settings, tables, master, features, policy_maps, certificates)
