# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options of provider rfc2136.
    DOCUMENTATION = r'''
options:
  server:
    description:
      - Provider V(rfc2136). Address or host name of the primary authoritative server that accepts updates.
      - Reads (SOA, TXT, and AXFR when several names share a zone) go to the same server, over TCP.
      - Defaults to the E(MAILSEC_RFC2136_SERVER) environment variable.
      - Required with O(provider=rfc2136), given or from the environment; checked before anything is sent.
    type: str
  port:
    description:
      - Provider V(rfc2136). TCP port of O(server).
    type: int
    default: 53
  key_name:
    description:
      - Provider V(rfc2136). Name of the TSIG key that signs every message.
      - Defaults to the E(MAILSEC_RFC2136_KEY_NAME) environment variable.
      - Give O(key_name) and O(key_secret) together, or neither (unsigned updates).
    type: str
  key_secret:
    description:
      - Provider V(rfc2136). Base64 secret of the TSIG key. Never logged.
      - Defaults to the E(MAILSEC_RFC2136_KEY_SECRET) environment variable.
    type: str
  key_algorithm:
    description:
      - Provider V(rfc2136). TSIG algorithm of the key.
    type: str
    default: hmac-sha256
    choices: [hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5]
notes:
  - Options of one provider given to a task that uses another (for example O(server) with O(provider=route53)) are
    ignored with a warning that names them. Values from environment variables and option defaults never warn.
'''
