# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The nginx configuration of the policy host. Pure code: Sites and settings in, ``{path: text}`` out.

One ``server`` per port serves every domain, whatever their number (docs/policy-host.md says why):

* ``server_name ~^mta-sts\\.`` (a regex: no server-name hash to size, however many names);
* the certificate and key picked by SNI through ``map $ssl_server_name`` from a map file of the KNOWN
  names to known paths; an unknown name maps to nothing and its handshake fails;
* the policy file picked through ``map $host`` from a map file of known names to known files; an unknown
  name gets 404. No request name ever becomes part of a file path.

Adding or removing a domain changes the map files (a reload); a new policy or a renewed certificate at the
same path changes no configuration, since nginx reads both per request or per handshake.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

CERTIFICATE_MAP = 'nginx-certificates.map'
PRIVATE_KEY_MAP = 'nginx-private-keys.map'
POLICY_MAP = 'nginx-policies.map'
VARIABLE_PREFIX = 'mailsec_mta_sts_'
# nginx's defaults (64 on x86-64, the CPU cache line; 2048): set only when the names need more.
DEFAULT_BUCKET_SIZE = 64
DEFAULT_MAX_SIZE = 2048
POINTER_SIZE = 8

HEADER = ('# Written by mailsec.mta_sts.policy_site: changes here are overwritten. Included inside http {}.\n'
          '# One server per port for every MTA-STS policy host; see the collection\'s docs/policy-host.md.\n')


def _quote(value):
    # Paths and names are checked before rendering (no quotes, backslashes, "$" or control characters).
    return '"%s"' % value


def _map_file(pairs):
    return ''.join('%s %s;\n' % (_quote(name), _quote(value)) for name, value in pairs)


def hash_sizes(names):
    """``(bucket_size, max_size)`` for nginx's map hashes of ``names``, or None where the default does.

    nginx refuses to start when one name does not fit in a bucket (a pointer, the name and its length
    aligned to a pointer, and the bucket's end marker), and only warns, with a slower hash, when the table
    would need more than max_size buckets. Both are sized here so neither happens: buckets big enough for
    the longest name (a power of two), and a table that may grow to two buckets per name (measured: enough
    for 5,000 names with no warning; the default 2,048 warns there).
    """
    longest = max([len(name) for name in names] or [0])
    element = POINTER_SIZE + -(-(longest + 2) // POINTER_SIZE) * POINTER_SIZE
    bucket = DEFAULT_BUCKET_SIZE
    while bucket < element + POINTER_SIZE:
        bucket *= 2
    max_size = DEFAULT_MAX_SIZE
    while max_size < 2 * len(names):
        max_size *= 2
    return (bucket if bucket != DEFAULT_BUCKET_SIZE else None,
            max_size if max_size != DEFAULT_MAX_SIZE else None)


def _map_block(source, variable, path):
    return ('map $%s $%s%s {\n'
            '    default "";\n'
            '    include %s;\n'
            '}\n' % (source, VARIABLE_PREFIX, variable, _quote(path)))


def _listen(address, port, ssl):
    return '    listen %s:%d%s;\n' % (address, port, ' ssl' if ssl else '')


POLICY_VARIABLE = '$%spolicy' % VARIABLE_PREFIX
# Inside a location: a name the maps do not know gets 404 (an "if" that only returns is safe in nginx).
_UNKNOWN_NAME_404 = ('        if (%s = "") {\n'
                     '            return 404;\n'
                     '        }\n' % POLICY_VARIABLE)
# text/plain whatever mime.types says; "charset" adds "; charset=utf-8" to it.
_TEXT_PLAIN = ('        types { }\n'
               '        default_type text/plain;\n')


def _server(port, ssl, settings, body):
    return ('server {\n'
            + ''.join(_listen(address, port, ssl) for address in settings['listen'])
            + '    server_name ~^mta-sts\\.;\n'
            + body
            + '}\n')


def _https_server(settings):
    return _server(settings['https_port'], True, settings, (
        '    ssl_certificate $%(p)scertificate;\n'
        '    ssl_certificate_key $%(p)sprivate_key;\n'
        '    # nginx takes the protocols from the default server of the address: see docs/policy-host.md.\n'
        '    ssl_protocols TLSv1.2 TLSv1.3;\n'
        '\n'
        '    location = /.well-known/mta-sts.txt {\n'
        '%(unknown)s'
        '%(text)s'
        '        charset utf-8;\n'
        '        alias %(policy)s;\n'
        '    }\n'
        '\n'
        '    location / {\n'
        '        return 404;\n'
        '    }\n' % dict(p=VARIABLE_PREFIX, policy=POLICY_VARIABLE, unknown=_UNKNOWN_NAME_404, text=_TEXT_PLAIN)))


def _http_server(settings):
    port = settings['https_port']
    target = 'https://$host%s$request_uri' % ('' if port == 443 else ':%d' % port)
    challenge_dir = settings.get('acme_challenge_dir')
    if challenge_dir:
        challenge = _TEXT_PLAIN + '        alias %s;\n' % _quote(challenge_dir.rstrip('/') + '/')
    else:
        challenge = '        return 404;\n'
    return _server(settings['http_port'], False, settings, (
        '\n'
        '    # Never a redirect on the policy path (RFC 8461 section 3.3): senders do not follow one.\n'
        '    location = /.well-known/mta-sts.txt {\n'
        '        return 404;\n'
        '    }\n'
        '\n'
        '    location ^~ /.well-known/acme-challenge/ {\n'
        '%(unknown)s'
        '%(challenge)s'
        '    }\n'
        '\n'
        '    location / {\n'
        '%(unknown)s'
        '        return 301 %(target)s;\n'
        '    }\n' % dict(unknown=_UNKNOWN_NAME_404, challenge=challenge, target=target)))


def render(sites, settings):
    """``{path: text}``: the drop-in at ``settings['config_path']`` and the three map files in the data dir."""
    data_dir = settings['data_dir']
    paths = dict((name, os.path.join(data_dir, name)) for name in (CERTIFICATE_MAP, PRIVATE_KEY_MAP, POLICY_MAP))
    with_certificate = [site for site in sites if site.certificate]
    bucket, max_size = hash_sizes([site.host for site in sites])
    config = [HEADER]
    if bucket:
        config.append('map_hash_bucket_size %d;\n' % bucket)
    if max_size:
        config.append('map_hash_max_size %d;\n' % max_size)
    config.extend([
        '\n',
        _map_block('ssl_server_name', 'certificate', paths[CERTIFICATE_MAP]),
        _map_block('ssl_server_name', 'private_key', paths[PRIVATE_KEY_MAP]),
        _map_block('host', 'policy', paths[POLICY_MAP]),
        '\n',
        _https_server(settings),
    ])
    if settings['http_port']:
        config.extend(['\n', _http_server(settings)])
    return {
        settings['config_path']: ''.join(config),
        paths[CERTIFICATE_MAP]: _map_file((site.host, site.certificate) for site in with_certificate),
        paths[PRIVATE_KEY_MAP]: _map_file((site.host, site.private_key) for site in with_certificate),
        paths[POLICY_MAP]: _map_file((site.host, site.policy_path) for site in sites),
    }
