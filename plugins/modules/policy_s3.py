#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: policy_s3
short_description: Put the MTA-STS policy files of many domains into an S3 bucket, for serving behind a CDN
version_added: 0.1.0
description:
  - Puts each domain's policy at the key C(<prefix>mta-sts.<domain>/.well-known/mta-sts.txt) with the
    C(Content-Type) C(text/plain; charset=utf-8) and the O(cache_control) header, for serving at
    C(https://mta-sts.<domain>/.well-known/mta-sts.txt) behind CloudFront or another CDN. S3 alone cannot serve it
    (its website endpoints have no HTTPS, its REST endpoint has no certificate for C(mta-sts.<domain>)); the key
    layout, a CloudFront Function that routes every C(mta-sts) host of one distribution, and the certificate
    quotas are in C(docs/policy-host-s3.md).
  - Compares first and uploads only what differs. Every object is read with C(HEAD) (side by side), and its bytes
    (S3's SHA-256 checksum, else the ETag), C(Content-Type) and C(Cache-Control) are compared with what is wanted.
    A second identical run uploads nothing and reports no change.
  - Every domain and option is validated before the first request. The bucket is checked (C(HeadBucket)) before any
    upload, so a missing bucket or refused credentials fail the run with nothing written.
  - Objects of domains no longer listed are left in the bucket. Retire a policy with C(mode) V(none) first
    (RFC 8461 section 8.3).
  - The credentials need C(s3:ListBucket) (without it S3 answers a missing key with 403, not 404),
    C(s3:GetObject) and C(s3:PutObject).
extends_documentation_fragment:
  - mailsec.mta_sts.attributes
options:
  domains:
    description:
      - The domains whose policies to put, one item each.
    type: list
    elements: dict
    required: true
    suboptions:
      domain:
        description:
          - The mail domain. U-labels are converted to A-labels. Listed twice is an error.
        type: str
        required: true
      policy:
        description:
          - The policy, as the record modules take it (M(mailsec.mta_sts.mta_sts_record)'s O(mailsec.mta_sts.mta_sts_record#module:policy)).
            A dict (C(mode), C(mx), C(max_age), optional C(extensions)) is rendered canonically; text is validated
            and uploaded byte for byte. The returned C(id) is derived from exactly the uploaded bytes.
        type: raw
        required: true
  bucket:
    description:
      - The bucket that holds the policy objects. It must exist.
    type: str
    required: true
  prefix:
    description:
      - Folder of the objects in the bucket, empty or ending in C(/) (for example V(mta-sts/)). With a CloudFront
        origin path C(/mta-sts), the prefix is V(mta-sts/).
    type: str
    default: ''
  cache_control:
    description:
      - The C(Cache-Control) header of each object. Keep it short, so that a changed policy is served before its new
        id is published and senders fetch it.
    type: str
    default: max-age=300
  aws_access_key_id:
    description:
      - AWS access key id. When not given, boto3's usual chain applies (environment, shared credentials file,
        instance role).
    type: str
    aliases: [access_key]
  aws_secret_access_key:
    description:
      - AWS secret access key. Never logged.
    type: str
    aliases: [secret_key]
  aws_session_token:
    description:
      - AWS session token, for temporary credentials. Never logged.
    type: str
    aliases: [session_token]
  profile:
    description:
      - Named profile of the shared AWS configuration.
    type: str
  region:
    description:
      - Region of the bucket. When not given, boto3's usual chain applies.
    type: str
  endpoint_url:
    description:
      - URL of the S3 API, for an S3-compatible service or a test server.
    type: str
  timeout:
    description:
      - Seconds to wait for each answer from S3.
    type: float
    default: 10.0
  max_retries:
    description:
      - How many times a throttled (C(SlowDown), HTTP 503), failed (HTTP 5xx) or dropped request is tried again, with
        exponential backoff and jitter. boto3's own retries are turned off, so attempts never multiply.
    type: int
    default: 8
  retry_max_seconds:
    description:
      - Upper bound of the time spent retrying one request.
    type: float
    default: 120.0
requirements:
  - boto3
author:
  - mailsec maintainers (@mailsec)
seealso:
  - module: mailsec.mta_sts.mta_sts_record
  - name: RFC 8461 section 3.3 (policy retrieval)
    description: How senders fetch the policy (HTTPS, a certificate for C(mta-sts.<domain>), no redirects).
    link: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
'''

EXAMPLES = r'''
- name: Put the policies of two domains under policies/ in a bucket
  mailsec.mta_sts.policy_s3:
    bucket: example-mta-sts
    prefix: policies/
    region: eu-west-1
    domains:
      - domain: example.com
        policy:
          mode: enforce
          mx: [mx1.example.com, mx2.example.com]
          max_age: 1209600
      - domain: example.net
        policy: "{{ lookup('file', 'example.net.txt', rstrip=false) }}"
  register: policies

- name: Publish each domain's record with the id of the policy now served
  mailsec.mta_sts.mta_sts_record:
    domain: "{{ item.key }}"
    id: "{{ item.value.id }}"
    provider: route53
  loop: "{{ policies.policies | dict2items }}"
'''

RETURN = r'''
policies:
  description: Each domain's policy, keyed by the A-label domain.
  returned: success
  type: dict
  contains:
    id:
      description: The policy id, derived from the uploaded bytes (the P(mailsec.mta_sts.policy_id#filter) rule).
      type: str
      sample: 3y7ujqjvfltq6yzxbhhaz5ojpbfv2sdc
    policy:
      description: The policy text uploaded.
      type: str
    host:
      description: The policy host name.
      type: str
      sample: mta-sts.example.com
    url:
      description: Where senders fetch the policy.
      type: str
      sample: https://mta-sts.example.com/.well-known/mta-sts.txt
    key:
      description: The object key in the bucket.
      type: str
      sample: policies/mta-sts.example.com/.well-known/mta-sts.txt
    changed:
      description: Whether the object was (in check mode, would be) uploaded.
      type: bool
  sample:
    example.com:
      id: 3y7ujqjvfltq6yzxbhhaz5ojpbfv2sdc
      policy: "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 1209600\r\n"
      host: mta-sts.example.com
      url: https://mta-sts.example.com/.well-known/mta-sts.txt
      key: mta-sts.example.com/.well-known/mta-sts.txt
      changed: true
changed_policies:
  description: The domains whose objects were (in check mode, would be) uploaded.
  returned: success
  type: list
  elements: str
  sample: [example.com]
uploaded:
  description: When the run failed part-way, the domains whose objects were uploaded before it stopped.
  returned: failure
  type: list
  elements: str
not_uploaded:
  description: When the run failed part-way, the domains whose uploads failed; a re-run uploads them (and only them).
  returned: failure
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailsec.mta_sts.plugins.module_utils._aws import CLIENT_OPTIONS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError, ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.base import SHARED_OPTIONS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import RETRY_OPTIONS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3 import (
    DEFAULT_CACHE_CONTROL, build_objects, check_bucket, check_cache_control, check_prefix, differences, object_diff,
    policy_result,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3_store import S3PolicyStore


def argument_spec():
    spec = dict(
        domains=dict(type='list', elements='dict', required=True, options=dict(
            domain=dict(type='str', required=True),
            policy=dict(type='raw', required=True),
        )),
        bucket=dict(type='str', required=True),
        prefix=dict(type='str', default=''),
        cache_control=dict(type='str', default=DEFAULT_CACHE_CONTROL),
    )
    spec.update(CLIENT_OPTIONS)
    spec.update(SHARED_OPTIONS)
    spec.update(RETRY_OPTIONS)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        check_bucket(params['bucket'])
        cache_control = check_cache_control(params['cache_control'])
        objects = build_objects(params['domains'], check_prefix(params['prefix']))
    except ValidationError as exc:
        module.fail_json(msg=str(exc), field=exc.field)

    try:
        store = S3PolicyStore.from_params(params)
        store.check_bucket()
        stored = store.read([obj.key for obj in objects])
        changed = [obj for obj in objects if differences(obj, stored[obj.key], cache_control)]
        diff = []
        if module._diff:
            # Only a changed body needs its old bytes; a header-only change shows the same text.
            texts = store.texts([obj.key for obj in changed if stored[obj.key] and 'content' in differences(
                obj, stored[obj.key], cache_control)])
            diff = [object_diff(obj, stored[obj.key], texts.get(obj.key), cache_control) for obj in changed]
        uploaded, failed = [], []
        if changed and not module.check_mode:
            uploaded, failed = store.upload(changed, cache_control)
    except ProviderError as exc:
        module.fail_json(msg=str(exc))

    if failed:
        module.fail_json(
            msg='%d of %d uploads failed, first: %s: %s' % (len(failed), len(changed), failed[0][0].domain, failed[0][1]),
            changed=bool(uploaded), uploaded=[obj.domain for obj in uploaded], not_uploaded=[pair[0].domain for pair in failed])

    changed_domains = set(obj.domain for obj in changed)
    result = dict(
        changed=bool(changed),
        policies=dict((obj.domain, policy_result(obj, obj.domain in changed_domains)) for obj in objects),
        changed_policies=[obj.domain for obj in changed],
    )
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
