# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Apache httpd 2.4 configuration of the policy host. Pure code: Sites and settings in, ``{path: text}`` out.

Apache picks a certificate per virtual host and cannot take one from a variable, so (docs/policy-host.md says why):

* one ``<VirtualHost>`` on the HTTPS port per certificate (a SAN or wildcard certificate serves all its domains
  from one), named by its hosts (``ServerName`` the first, ``ServerAlias`` the rest);
* the policy file picked by mod_rewrite through a ``RewriteMap`` file of the KNOWN names to known file names
  under the policy directory; an unknown name maps to nothing and gets 404. No request name ever becomes part
  of a file path;
* one ``<VirtualHost>`` on the HTTP port for every host: ACME challenges, 404 on the policy path, a redirect to
  HTTPS for the rest (for hosts that have a certificate; 404 for those still waiting for one).

Apache reads certificates only when it (re)loads its configuration. Each certificate's expiry date is written
beside it, so a renewed certificate at the same path changes the configuration and the role reloads Apache.
A new or changed policy file needs no reload (read per request; the map file is re-read when it changes).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

POLICY_MAP = 'apache-policies.map'
MAP_NAME = 'mailsec_mta_sts_policy'
MEDIA_TYPE = 'text/plain; charset=utf-8'
POLICY_URL_PATH = '/.well-known/mta-sts.txt'
CHALLENGE_URL_PATH = '/.well-known/acme-challenge/'
# The same paths as regular expressions, for RewriteRule.
POLICY_URL_PATTERN = '^/\\.well-known/mta-sts\\.txt$'
CHALLENGE_URL_PATTERN = '^/\\.well-known/acme-challenge/'

HEADER = ('# Written by mailsec.mta_sts.policy_site: changes here are overwritten. A server-level include.\n'
          '# One HTTPS virtual host per certificate, one HTTP virtual host for every MTA-STS policy host;\n'
          '# see the collection\'s docs/policy-host.md (Apache).\n')

# Without these modules the directives below are unknown; say which module to enable instead of
# Apache's "Invalid command" (the configuration test fails either way, and nothing is reloaded).
REQUIRED_MODULES = (('ssl_module', 'ssl'), ('rewrite_module', 'rewrite'), ('mime_module', 'mime'))


def _quote(value):
    # Paths are checked before rendering (no quotes, backslashes, "$" or control characters).
    return '"%s"' % value


def _substitution(directory, reference):
    # A RewriteRule target expands "%N" and "%{...}": a literal "%" in the directory is escaped.
    return _quote('%s/%s' % (directory.rstrip('/').replace('%', '\\%'), reference))


def virtual_host_addresses(listen):
    """The addresses of ``<VirtualHost>``: the wildcards ``0.0.0.0`` and ``[::]`` are both ``*``.

    A virtual host on ``0.0.0.0`` would not match connections to ``[::]``; ``*`` matches both, as the
    stock Debian sites (``<VirtualHost *:443>``) do. Other addresses are kept, in the order given.
    """
    out = []
    for address in listen:
        address = '*' if address in ('0.0.0.0', '[::]') else address
        if address not in out:
            out.append(address)
    return out


def certificate_groups(sites):
    """``[(certificate, private_key, [site, ...]), ...]`` of the sites that have a certificate, one per pair
    of files, ordered by the first host of each (sites come sorted by host)."""
    groups = {}
    order = []
    for site in sites:
        if not site.certificate:
            continue
        pair = (site.certificate, site.private_key)
        if pair not in groups:
            groups[pair] = []
            order.append(pair)
        groups[pair].append(site)
    return [(pair[0], pair[1], groups[pair]) for pair in order]


def _names(hosts):
    lines = ['    ServerName %s\n' % hosts[0]]
    lines.extend('    ServerAlias %s\n' % host for host in hosts[1:])
    # The map is keyed by the request's host name, never by the virtual host's first name.
    lines.append('    UseCanonicalName Off\n')
    return lines


def _vhost_open(addresses, port):
    return '<VirtualHost %s>\n' % ' '.join('%s:%d' % (address, port) for address in addresses)


def _policy_lookup(map_path):
    return ['    RewriteEngine on\n',
            '    RewriteMap %s %s\n' % (MAP_NAME, _quote('txt:' + map_path))]


def _known_host_condition():
    # The map gives the file name of a known host; "-" (the default) for any other name.
    return '    RewriteCond "${%s:%%{SERVER_NAME}|-}" "^([^/]+\\.txt)$"\n' % MAP_NAME


def _https_vhost(certificate, private_key, sites, settings, addresses, map_path):
    expiry = (settings.get('certificates') or {}).get(sites[0].domain, {}).get('not_after')
    lines = [_vhost_open(addresses, settings['https_port'])]
    lines.extend(_names([site.host for site in sites]))
    lines.append('    SSLEngine on\n')
    lines.append('    SSLProtocol -all +TLSv1.2 +TLSv1.3\n')
    if expiry:
        lines.append('    # Valid until %s: a renewal changes this line, so Apache is reloaded and reads it.\n' % expiry)
    lines.extend([
        '    SSLCertificateFile %s\n' % _quote(certificate),
        '    SSLCertificateKeyFile %s\n' % _quote(private_key),
        '\n',
    ])
    lines.extend(_policy_lookup(map_path))
    lines.extend([
        _known_host_condition(),
        # no-gzip: the exact bytes and Content-Length whatever the client accepts (Debian enables mod_deflate).
        '    RewriteRule "%s" %s [E=no-gzip:1,L]\n' % (
            POLICY_URL_PATTERN, _substitution(settings['policy_dir'], '%1')),
        '    RewriteRule "^" "-" [R=404]\n',
        '\n',
        # Location, not Directory: the grant and the media type hold for this URL in these hosts only, and
        # Location wins over the server's Directory sections (Debian: "Require all denied" for "/").
        '    <Location "%s">\n' % POLICY_URL_PATH,
        '        Require all granted\n',
        '        Options None\n',
        # ForceType with the charset: AddDefaultCharset and AddCharset add or change a charset only on a
        # type without one.
        '        ForceType "%s"\n' % MEDIA_TYPE,
        '    </Location>\n',
        '</VirtualHost>\n',
    ])
    return lines


def _http_vhost(sites, settings, addresses, map_path):
    https_port = settings['https_port']
    target = 'https://%%{SERVER_NAME}%s%%{REQUEST_URI}' % ('' if https_port == 443 else ':%d' % https_port)
    challenge_dir = settings.get('acme_challenge_dir')
    lines = [_vhost_open(addresses, settings['http_port'])]
    lines.extend(_names([site.host for site in sites]))
    lines.extend(_policy_lookup(map_path))
    if challenge_dir:
        # HTTP-01 tokens are base64url (RFC 8555 section 8.3): nothing else can name a file there.
        lines.append('    RewriteRule "%s([A-Za-z0-9_-]+)$" %s [L]\n'
                     % (CHALLENGE_URL_PATTERN, _substitution(challenge_dir, '$1')))
    lines.extend([
        '    RewriteRule "%s" "-" [R=404]\n' % CHALLENGE_URL_PATTERN,
        # Never a redirect on the policy path (RFC 8461 section 3.3): senders do not follow one.
        '    RewriteRule "%s" "-" [R=404]\n' % POLICY_URL_PATTERN,
        # Only hosts served over HTTPS are sent there; a host still waiting for its certificate gets 404.
        _known_host_condition(),
        '    RewriteRule "^" "%s" [R=301,L]\n' % target,
        '    RewriteRule "^" "-" [R=404]\n',
    ])
    if challenge_dir:
        lines.extend([
            '\n',
            '    <Location "%s">\n' % CHALLENGE_URL_PATH,
            '        Require all granted\n',
            '        Options None\n',
            '        ForceType text/plain\n',
            '    </Location>\n',
        ])
    lines.append('</VirtualHost>\n')
    return lines


def _modules_required():
    lines = []
    for module, name in REQUIRED_MODULES:
        lines.extend([
            '<IfModule !%s>\n' % module,
            '    Error "mailsec-mta-sts needs mod_%s: a2enmod %s"\n' % (name, name),
            '</IfModule>\n',
        ])
    return lines


def render(sites, settings):
    """``{path: text}``: the drop-in at ``settings['config_path']`` and the policy map in the data dir.

    ``settings`` as every renderer takes them; an optional ``certificates`` (``{domain: {not_after, ...}}``,
    the module's check results) puts each certificate's expiry date into the configuration.
    """
    map_path = os.path.join(settings['data_dir'], POLICY_MAP)
    addresses = virtual_host_addresses(settings['listen'])
    groups = certificate_groups(sites)
    config = [HEADER, '\n']
    config.extend(_modules_required())
    for certificate, private_key, group in groups:
        config.append('\n')
        config.extend(_https_vhost(certificate, private_key, group, settings, addresses, map_path))
    if settings['http_port'] and sites:
        config.append('\n')
        config.extend(_http_vhost(sites, settings, addresses, map_path))
    policy_map = ''.join('%s %s\n' % (site.host, os.path.basename(site.policy_path))
                         for site in sites if site.certificate)
    return {settings['config_path']: ''.join(config), map_path: policy_map}
