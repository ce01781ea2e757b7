#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: policy_site
short_description: Serve the MTA-STS policy files of many domains from one web server
version_added: 0.1.0
description:
  - Writes each domain's policy file, the web server's map files and its one drop-in configuration file, so that
    C(https://mta-sts.<domain>/.well-known/mta-sts.txt) answers C(200) with C(text/plain; charset=utf-8) and the exact
    bytes the policy id is derived from, every other path answers C(404), the policy path is never redirected, and
    only TLS 1.2 and 1.3 are offered.
  - One run handles every domain. Everything is checked before anything is written; after writing, O(test_command)
    runs when the configuration changed, and a failure restores every file written in the run.
  - The module never reloads the server. A changed policy file needs no reload; a changed configuration does
    (RV(config_changed)). The C(mailsec.mta_sts.policy_host) role does both; see docs/policy-host.md for the nginx
    design (one server for every domain, certificates picked by SNI through a map).
extends_documentation_fragment:
  - mailsec.mta_sts.attributes
options:
  backend:
    description:
      - The web server the configuration is written for.
      - V(apache) (httpd 2.4) needs mod_ssl, mod_rewrite and mod_mime; it reads certificates only when it loads
        its configuration, so each certificate's expiry date is written into the drop-in and a renewed certificate
        at the same path counts as a configuration change (RV(config_changed)).
    type: str
    required: true
    choices: [apache, nginx]
  domains:
    description: The domains to serve, at least one. Policy files of domains no longer listed are removed.
    type: list
    elements: dict
    required: true
    suboptions:
      domain:
        description:
          - The mail domain; U-labels are converted to A-labels. Served as C(mta-sts.<domain>). Each domain once.
        type: str
        required: true
      policy:
        description:
          - The policy, as the record modules' O(mailsec.mta_sts.mta_sts_record#module:policy) option takes it, a dict
            rendered canonically, or the exact policy text, validated and served byte for byte.
        type: raw
        required: true
      certificate:
        description:
          - PEM file with the certificate for C(mta-sts.<domain>), leaf first, then the chain. Give it with
            O(domains[].private_key).
          - A domain with neither is served on the HTTP port only (waiting for a certificate), with a warning.
          - Checked before any change, since nginx reads it only at handshake time. It must parse, match the key,
            cover C(mta-sts.<domain>) in its subject alternative names (a wildcard covers one label), and be valid now.
        type: path
      private_key:
        description: PEM file with the unencrypted private key of O(domains[].certificate).
        type: path
  data_dir:
    description:
      - Directory owned by the module. Policy files go to C(<data_dir>/policies/mta-sts.<domain>.txt) (mode C(0644));
        map files directly under it.
    type: path
    required: true
  config_path:
    description:
      - The one configuration file the module writes; the server must include it (nginx, inside C(http {}), as
        C(/etc/nginx/conf.d/*.conf) are; Apache, at server level, as C(/etc/apache2/sites-enabled/*.conf) are).
        No other configuration file is touched.
    type: path
    required: true
  listen:
    description:
      - Addresses to listen on.
      - For V(apache) these are the virtual hosts' addresses (V(0.0.0.0) and V([::]) become V(*)); the C(Listen)
        lines stay in the server's own configuration (Debian's C(ports.conf)), since Apache refuses a second
        C(Listen) for the same address and port.
    type: list
    elements: str
    default: ['0.0.0.0', '[::]']
  https_port:
    description: The HTTPS port.
    type: int
    default: 443
  http_port:
    description:
      - The HTTP port. It answers C(404) on the policy path, serves O(acme_challenge_dir) at
        C(/.well-known/acme-challenge/) and redirects every other path to HTTPS. V(0) means no HTTP server.
    type: int
    default: 80
  acme_challenge_dir:
    description: Directory served at C(/.well-known/acme-challenge/) on the HTTP port for every listed host.
    type: path
  acme_challenges:
    description:
      - HTTP-01 challenge files to write into O(acme_challenge_dir), file name to content. Challenge files not in it
        are removed. Writing them is not a configuration change.
    type: dict
  test_command:
    description:
      - Command run after writing when the configuration changed, for example V([nginx, -t]). When it fails, every
        file written in this run is restored and the module fails with the command's output.
    type: list
    elements: str
  key_reader:
    description:
      - A user that must be able to read every private key (nginx's workers read them at each handshake). Checked from
        each key file's owner, group and mode against the user's uid and groups.
    type: str
author:
  - mailsec maintainers (@mailsec)
seealso:
  - name: RFC 8461 section 3.3 (policy retrieval)
    description: How senders fetch the policy file this module serves.
    link: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
'''

EXAMPLES = r'''
- name: Serve two domains from nginx, one with its own certificate, one with a wildcard
  mailsec.mta_sts.policy_site:
    backend: nginx
    domains:
      - domain: example.com
        policy:
          mode: enforce
          mx: [mx1.example.com]
          max_age: 604800
        certificate: /etc/ssl/mta-sts.example.com.pem
        private_key: /etc/ssl/private/mta-sts.example.com.key
      - domain: example.net
        policy: "{{ lookup('file', 'files/example.net.txt', rstrip=false) }}"
        certificate: /etc/ssl/wildcard.example.net.pem
        private_key: /etc/ssl/private/wildcard.example.net.key
    data_dir: /var/lib/mailsec-mta-sts
    config_path: /etc/nginx/conf.d/mailsec-mta-sts.conf
    test_command: [nginx, -t]
    key_reader: www-data
  register: site

- name: Reload nginx only when its configuration changed
  ansible.builtin.command:
    argv: [systemctl, reload, nginx]
  when: site.config_changed
  changed_when: true
'''

RETURN = r'''
policies:
  description: Every domain served, by A-label domain.
  returned: success
  type: dict
  sample:
    example.com:
      id: 2n7k6q3v5x2m4h3a7d4f6g2j5k7l3m4n
      policy: "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"
      host: mta-sts.example.com
      url: https://mta-sts.example.com/.well-known/mta-sts.txt
      path: /var/lib/mailsec-mta-sts/policies/mta-sts.example.com.txt
      changed: true
changed_policies:
  description: The domains whose policy file changed (or would change in check mode).
  returned: success
  type: list
  elements: str
  sample: [example.com]
config_changed:
  description: The server configuration (drop-in or map files) changed, so the server needs a reload.
  returned: success
  type: bool
certificates:
  description: The certificate of each domain that has one, by A-label domain.
  returned: success
  type: dict
  sample:
    example.com:
      path: /etc/ssl/mta-sts.example.com.pem
      not_after: '2027-03-01T12:00:00Z'
      days_left: 89
'''

from ansible_collections.mailsec.mta_sts.plugins.module_utils._site import run_module


def main():
    run_module()


if __name__ == '__main__':
    main()
