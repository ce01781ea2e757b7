#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: postfix_tls
short_description: Configure every TLS setting of one Postfix instance in one run
version_added: 0.1.0
description:
  - Sets the outbound TLS policy of Postfix (the CA, the default security level, C(smtp_tls_policy_maps) with a table
    of key partners, an optional DANE lookup and the MTA-STS socketmap, in that order), the inbound certificates
    (with an SNI table for several names) and the newer features this Postfix supports.
  - Every option is checked before anything is changed, certificates included (file present, key matches, every
    name covered, valid now). With O(dane.enabled) the host's resolver must validate DNSSEC, or nothing is changed.
  - Current values are read with C(postconf) first; C(postconf -e) runs once, with only the settings that differ.
    A map file is written and C(postmap) run only when its source changed (or its indexed file is missing or
    older). A second identical run changes nothing and runs no command that writes.
  - The module never reloads Postfix; RV(reload_required) says when main.cf or master.cf changed. The
    C(mailsec.mta_sts.postfix) role runs C(postfix check) and then the reload.
extends_documentation_fragment:
  - mailsec.mta_sts.attributes
  - mailsec.mta_sts.attributes.POSTFIX_GROUP
options:
  config_dir:
    description: The instance's configuration directory; every command gets C(-c config_dir).
    type: path
    default: /etc/postfix
  postconf_command:
    description: The C(postconf) program.
    type: str
    default: postconf
  postmap_command:
    description: The C(postmap) program.
    type: str
    default: postmap
  ca_file:
    description:
      - CA bundle for verifying servers (C(smtp_tls_CAfile)). Give this or O(ca_path); without a CA every
        C(secure) delivery, MTA-STS ones included, is deferred. The other of the two is set empty.
    type: path
  ca_path:
    description: Directory of hashed CA certificates (C(smtp_tls_CApath)), instead of O(ca_file).
    type: path
  security_level:
    description:
      - The default outbound level (C(smtp_tls_security_level)) for destinations no table answers for.
      - V(dane) and V(dane-only) need O(dane.enabled); with O(dane.enabled) the level is always V(dane).
    type: str
    default: may
    choices: [none, may, encrypt, dane, dane-only, fingerprint, verify, secure]
  partners:
    description:
      - Key partners with mandatory TLS, written to O(partner_map) (type C(default_database_type)) and placed
        first among this module's entries of C(smtp_tls_policy_maps).
      - Each domain once (compared without case; U-labels become A-labels).
    type: list
    elements: dict
    default: []
    suboptions:
      domain:
        description: The recipient domain (next hop).
        type: str
        required: true
      level:
        description:
          - One of V(encrypt), V(verify), V(secure), V(dane), V(dane-only). The DANE levels need O(dane.enabled).
        type: str
        required: true
      match:
        description:
          - Names the server certificate must match, rendered C(match=a:b); only at V(verify) and V(secure).
            Host names, C(.parent.domain), or the keywords C(hostname), C(nexthop), C(dot-nexthop).
        type: list
        elements: str
  partner_map:
    description: The partner table's source file. Default C(<config_dir>/mailsec_tls_partners).
    type: path
  mta_sts_map:
    description: The MTA-STS resolver's socketmap, placed last; an empty string leaves MTA-STS out.
    type: str
    default: socketmap:inet:127.0.0.1:8461:postfix
  keep_policy_maps:
    description:
      - Keep the entries of C(smtp_tls_policy_maps) that are not this module's, ahead of its own (the admin's
        hand-written tables win). V(false) leaves only this module's entries.
    type: bool
    default: true
  dane:
    description: DANE (RFC 7672) that wins over MTA-STS through a DNSSEC-aware socketmap ahead of the MTA-STS one.
    type: dict
    default: {}
    suboptions:
      enabled:
        description:
          - Sets C(smtp_dns_support_level=dnssec), C(smtp_tls_security_level=dane), C(dnssec_probe), puts O(dane.map)
            into C(smtp_tls_policy_maps) and adds the C(spawn) service of O(dane.service) to master.cf.
          - V(false) after V(true) takes O(dane.map) out of C(smtp_tls_policy_maps) and removes the master.cf entry
            when it is exactly the one O(dane.service) describes; C(smtp_dns_support_level) and C(dnssec_probe) are
            left as they are (harmless without DANE levels).
        type: bool
        default: false
      map:
        description: The DANE policy socketmap as C(smtp_tls_policy_maps) names it.
        type: str
        default: socketmap:inet:127.0.0.1:8462:dane
      dnssec_probe:
        description:
          - A signed name, C(type:name), that a validating resolver answers with the AD bit. Set as Postfix's own
            C(dnssec_probe) too (its default C(ns:.) needs the internet).
        type: str
        default: ns:.
      bogus_name:
        description: A name with a broken signature; a validating resolver answers it with SERVFAIL.
        type: str
        default: dnssec-failed.org
      check_resolver:
        description: Refuse DANE unless the resolver validates (AD on O(dane.dnssec_probe), SERVFAIL on O(dane.bogus_name)).
        type: bool
        default: true
      nameservers:
        description: Resolvers to check; empty means those of C(/etc/resolv.conf), which Postfix uses.
        type: list
        elements: str
        default: []
      service:
        description: The master.cf C(spawn) service that answers the DANE socketmap.
        type: dict
        default: {}
        suboptions:
          listen:
            description: C(address:port) of the service; must match O(dane.map).
            type: str
            default: 127.0.0.1:8462
          user:
            description: The unprivileged user spawn runs the program as.
            type: str
            default: nobody
          argv:
            description: The program and its arguments (no white space inside one).
            type: list
            elements: str
  inbound:
    description: The SMTP server's certificates and TLS settings. Without certificates, inbound settings are left alone.
    type: dict
    default: {}
    suboptions:
      certificates:
        description:
          - The first is the default (C(smtpd_tls_chain_files)). With more than one name in all, an SNI table
            (C(tls_server_sni_maps), built with C(postmap -F), mode 0600 since it holds the keys) maps each name
            to its key and chain.
        type: list
        elements: dict
        default: []
        suboptions:
          names:
            description: The MX host names this certificate serves; each must be covered by it.
            type: list
            elements: str
            required: true
          cert:
            description: PEM file, the leaf first, then the chain.
            type: path
            required: true
          key:
            description: PEM file with the certificate's unencrypted private key.
            type: path
            required: true
      sni_map:
        description: The SNI table's source file. Default C(<config_dir>/mailsec_sni).
        type: path
      protocols:
        description: C(smtpd_tls_protocols) and C(smtpd_tls_mandatory_protocols).
        type: str
        default: '>=TLSv1.2'
      security_level:
        description: C(smtpd_tls_security_level).
        type: str
        default: may
        choices: [none, may, encrypt]
  features:
    description:
      - Newer Postfix features, each applied only where C(postconf -d) shows the release has it; otherwise skipped
        with the reason in RV(features) and a warning. V(false) leaves Postfix's own setting alone.
    type: dict
    default: {}
    suboptions:
      tlsrpt:
        description:
          - TLSRPT events (C(smtp_tlsrpt_enable)), Postfix 3.10 and later built with libtlsrpt. The build is read
            from the smtp daemon, whose warning text says when TLSRPT is not compiled in.
        type: bool
        default: true
      tlsrpt_socket_name:
        description: C(smtp_tlsrpt_socket_name), where the tlsrpt-reporter collector listens.
        type: str
        default: run/tlsrpt/tlsrpt.sock
      enforce_sts_mx_patterns:
        description: C(smtp_tls_enforce_sts_mx_patterns), Postfix 3.10.5 and later.
        type: bool
        default: true
      requiretls:
        description: C(requiretls_enable) (RFC 8689 REQUIRETLS), Postfix 3.11 and later.
        type: bool
        default: true
author:
  - mailsec maintainers (@mailsec)
seealso:
  - name: Postfix TLS_README
    description: The TLS levels and policy tables.
    link: https://www.postfix.org/TLS_README.html
  - name: RFC 8461 section 2
    description: DANE wins over MTA-STS where both exist.
    link: https://www.rfc-editor.org/rfc/rfc8461#section-2
'''

EXAMPLES = r'''
- name: MTA-STS for everyone, mandatory TLS for a bank, two MX names inbound
  mailsec.mta_sts.postfix_tls:
    ca_file: /etc/ssl/certs/ca-certificates.crt
    partners:
      - domain: bank.example
        level: secure
        match: [mx1.bank.example, mx2.bank.example]
    inbound:
      certificates:
        - names: [mx1.example.com, mx2.example.com]
          cert: /etc/ssl/mx.example.com.pem
          key: /etc/ssl/private/mx.example.com.key
  register: postfix_tls

- name: With DANE, against a validating local resolver
  mailsec.mta_sts.postfix_tls:
    ca_file: /etc/ssl/certs/ca-certificates.crt
    dane:
      enabled: true
      dnssec_probe: "soa:example.com."
      service:
        argv: [/opt/mailsec-mta-sts-resolver/bin/python, /usr/local/libexec/mailsec_dane_policy.py]
'''

RETURN = r'''
postfix_version:
  description: C(mail_version) of the instance.
  returned: success
  type: str
  sample: 3.7.11
settings:
  description: Every main.cf setting the module manages in this run, with its final value.
  returned: success
  type: dict
  sample:
    smtp_tls_CAfile: /etc/ssl/certs/ca-certificates.crt
    smtp_tls_security_level: may
    smtp_tls_policy_maps: hash:/etc/postfix/mailsec_tls_partners, socketmap:inet:127.0.0.1:8461:postfix
policy_maps:
  description: The final C(smtp_tls_policy_maps), in order.
  returned: success
  type: list
  elements: str
  sample: [hash:/etc/postfix/tls_policy, hash:/etc/postfix/mailsec_tls_partners, socketmap:inet:127.0.0.1:8461:postfix]
features:
  description: For each newer feature, whether it was applied and why (or why not).
  returned: success
  type: dict
  sample:
    requiretls:
      applied: false
      reason: "skipped: needs Postfix 3.11.0 or later (requiretls_enable); this is Postfix 3.7.11"
changed_settings:
  description: The main.cf settings that changed (or would in check mode).
  returned: success
  type: list
  elements: str
  sample: [smtp_tls_policy_maps]
reload_required:
  description: main.cf or master.cf changed, so Postfix must be reloaded. Tables rebuilt by postmap need no reload.
  returned: success
  type: bool
'''

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _certs, _postfix
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._files import read_text
from ansible_collections.mailsec.mta_sts.plugins.module_utils._postconf import (
    PostconfError, Postfix, table_is_stale, tlsrpt_built, write_text)

ARGUMENT_SPEC = dict(
    config_dir=dict(type='path', default='/etc/postfix'),
    postconf_command=dict(type='str', default='postconf'),
    postmap_command=dict(type='str', default='postmap'),
    ca_file=dict(type='path'),
    ca_path=dict(type='path'),
    security_level=dict(type='str', default='may', choices=list(_postfix.CLIENT_LEVELS)),
    # Levels are checked by _postfix, so the error names partners[i].level.
    partners=dict(type='list', elements='dict', default=[], options=dict(
        domain=dict(type='str', required=True),
        level=dict(type='str', required=True),
        match=dict(type='list', elements='str'),
    )),
    partner_map=dict(type='path'),
    mta_sts_map=dict(type='str', default=_postfix.DEFAULT_MTA_STS_MAP),
    keep_policy_maps=dict(type='bool', default=True),
    dane=dict(type='dict', default={}, options=dict(
        enabled=dict(type='bool', default=False),
        map=dict(type='str', default=_postfix.DEFAULT_DANE_MAP),
        dnssec_probe=dict(type='str', default='ns:.'),
        bogus_name=dict(type='str', default='dnssec-failed.org'),
        check_resolver=dict(type='bool', default=True),
        nameservers=dict(type='list', elements='str', default=[]),
        service=dict(type='dict', default={}, options=dict(
            listen=dict(type='str', default='127.0.0.1:8462'),
            user=dict(type='str', default='nobody'),
            argv=dict(type='list', elements='str'),
        )),
    )),
    inbound=dict(type='dict', default={}, options=dict(
        certificates=dict(type='list', elements='dict', default=[], options=dict(
            names=dict(type='list', elements='str', required=True),
            cert=dict(type='path', required=True),
            # A file name, not a secret.
            key=dict(type='path', required=True, no_log=False),
        )),
        sni_map=dict(type='path'),
        protocols=dict(type='str', default='>=TLSv1.2'),
        security_level=dict(type='str', default='may', choices=list(_postfix.SERVER_LEVELS)),
    )),
    features=dict(type='dict', default={}, options=dict(
        tlsrpt=dict(type='bool', default=True),
        tlsrpt_socket_name=dict(type='str', default='run/tlsrpt/tlsrpt.sock'),
        enforce_sts_mx_patterns=dict(type='bool', default=True),
        requiretls=dict(type='bool', default=True),
    )),
)


def check_certificates(certificates, now):
    """Raise ValidationError unless every inbound certificate is readable, matches its key, covers its names and
    is valid ``now``: Postfix would otherwise turn STARTTLS off or fail handshakes after the reload."""
    for index, item in enumerate(certificates):
        where = 'inbound.certificates[%d]' % index
        contents = []
        for part in ('cert', 'key'):
            try:
                with open(item[part], 'rb') as handle:
                    contents.append(handle.read())
            except (IOError, OSError) as exc:
                raise ValidationError('%s.%s' % (where, part), item[part], 'cannot be read: %s' % (exc.strerror or exc))
        try:
            info = _certs.read_certificate(*contents)
            for name in item['names']:
                _certs.check_host(info, name, now)
        except _certs.CertificateError as exc:
            raise ValidationError(where, item['cert'], str(exc))


def check_resolver(dane):
    """Refuse DANE when the resolver Postfix uses does not validate DNSSEC (DANE would silently do nothing)."""
    from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnssec import probe_resolver
    problems = probe_resolver(dane['dnssec_probe'], dane['bogus_name'], dane['nameservers'] or None)
    if problems:
        raise ValidationError('dane.enabled', True, 'refused, the resolver does not validate DNSSEC: %s'
                              % '; '.join(problems))


def settings_diff(changes):
    return dict(before_header='main.cf', after_header='main.cf',
                before=''.join('%s = %s\n' % (name, old) for name, old, _new in changes),
                after=''.join('%s = %s\n' % (name, new) for name, _old, new in changes))


def run(module, postfix):
    params = module.params
    defaults = postfix.defaults()
    current = postfix.values(name for name in _postfix.MANAGED_SETTINGS if name in defaults)
    built = tlsrpt_built(current.get('daemon_directory', '')) if 'smtp_tlsrpt_enable' in defaults else None
    plan = _postfix.plan_tls(params, current, defaults, built)
    check_certificates(plan.certificates, datetime.datetime.now(datetime.timezone.utc))
    if params['dane']['enabled'] and params['dane']['check_resolver']:
        check_resolver(params['dane'])

    changes = _postfix.plan_settings(current, plan.settings)
    diffs = [settings_diff(changes)] if changes else []
    tables = []
    for path in sorted(plan.tables):
        table = plan.tables[path]
        before = read_text(path)
        if before != table['text'] or table_is_stale(table['type'], path):
            tables.append((path, table, before != table['text']))
            diffs.append(dict(before_header=path, after_header=path, before=before or '', after=table['text']))
    master_change = None
    if plan.master:
        service, line, wanted = plan.master
        before = postfix.master_entry(service)
        ours = _postfix.same_master_entry(before, line)
        if wanted != ours:
            master_change = (service, line if wanted else None)
            diffs.append(dict(before_header='master.cf ' + service, after_header='master.cf ' + service,
                              before=before + '\n' if before else '', after=line + '\n' if wanted else ''))

    if not module.check_mode:
        # Tables and the service first, so main.cf never names a table or socket that is not there yet.
        for path, table, text_changed in tables:
            if text_changed:
                write_text(path, table['text'], 0o600 if '-F' in table['flags'] else 0o644)
            postfix.build_table(table['type'], path, table['flags'])
        if master_change and master_change[1]:
            postfix.set_master_entry(*master_change)
        elif master_change:
            postfix.remove_master_entry(master_change[0])
        if changes:
            postfix.set_values(changes)

    for name, entry in sorted(plan.features.items()):
        if params['features'][name] and not entry['applied']:
            module.warn('%s %s' % (name, entry['reason']))
    result = dict(
        changed=bool(changes or tables or master_change),
        postfix_version=defaults.get('mail_version', ''),
        settings=plan.settings,
        policy_maps=plan.policy_maps,
        features=dict((name, dict(applied=entry['applied'], reason=entry['reason']))
                      for name, entry in plan.features.items()),
        changed_settings=[name for name, _old, _new in changes],
        reload_required=bool(changes or master_change),
    )
    if module._diff:
        result['diff'] = diffs
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if not os.path.isfile(os.path.join(params['config_dir'], 'main.cf')):
        module.fail_json(msg='config_dir %r: has no main.cf' % params['config_dir'])
    postfix = Postfix(module, params['config_dir'], params['postconf_command'], params['postmap_command'])
    try:
        module.exit_json(**run(module, postfix))
    except ValidationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except (PostconfError, IOError, OSError) as exc:
        module.fail_json(msg=str(exc), changed=bool(postfix.commands), commands=postfix.commands)


if __name__ == '__main__':
    main()
