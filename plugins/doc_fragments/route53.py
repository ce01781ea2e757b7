# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options of provider route53.
    DOCUMENTATION = r'''
options:
  aws_access_key_id:
    description:
      - Provider V(route53). AWS access key id. When not given, boto3's usual chain applies (environment, shared
        credentials file, instance role), so no option is required with O(provider=route53).
    type: str
    aliases: [access_key]
  aws_secret_access_key:
    description:
      - Provider V(route53). AWS secret access key. Never logged.
    type: str
    aliases: [secret_key]
  aws_session_token:
    description:
      - Provider V(route53). AWS session token, for temporary credentials. Never logged.
    type: str
    aliases: [session_token]
  profile:
    description:
      - Provider V(route53). Named profile of the shared AWS configuration.
    type: str
  region:
    description:
      - Provider V(route53). Region for the API client; Route 53 is global, so this rarely matters.
      - Defaults to V(us-east-1).
    type: str
  endpoint_url:
    description:
      - Provider V(route53). URL of the Route 53 API, for a compatible service or a test server.
    type: str
  hosted_zone_id:
    description:
      - Provider V(route53). Use this hosted zone instead of finding it by name.
    type: str
  private_zone:
    description:
      - Provider V(route53). Find private hosted zones instead of public ones.
    type: bool
    default: false
  wait:
    description:
      - Provider V(route53). Wait until Route 53 reports each change C(INSYNC) on its name servers.
    type: bool
    default: false
  wait_timeout:
    description:
      - Provider V(route53). Seconds to wait for C(INSYNC) with O(wait=true).
    type: int
    default: 300
notes:
  - Provider V(route53) sends all changes of a zone in one C(ChangeBatch), a C(DELETE) of the exact TXT RRset read
    and a C(CREATE) of the new one, so a concurrent change makes Route 53 reject the batch instead of it being lost.
'''
