# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The policy objects of an S3 bucket: validation, key layout and what to upload (pure, no I/O).

One object per domain at ``<prefix>mta-sts.<domain>/.well-known/mta-sts.txt``:
the key is the host name followed by the URL path, so a CDN in front of the
bucket maps ``https://<host><path>`` to ``<prefix><host><path>`` by putting
the request's host in front of its path (docs/policy-host-s3.md).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import re
from collections import namedtuple

from ansible_collections.mailsec.mta_sts.plugins.module_utils._dnsname import normalize_domain
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, policy_text

CONTENT_TYPE = 'text/plain; charset=utf-8'
DEFAULT_CACHE_CONTROL = 'max-age=300'
POLICY_PATH = '/.well-known/mta-sts.txt'

# S3's rules for bucket names that work with every addressing style (general purpose buckets).
_BUCKET = re.compile(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')
_IPV4 = re.compile(r'^\d+\.\d+\.\d+\.\d+$')
# Characters S3 and CloudFront both pass through unescaped in a key and a URI path.
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")
_HEADER_VALUE = re.compile(r'^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$')

PolicyObject = namedtuple('PolicyObject', 'domain host key text body id md5 sha256')
# What a HEAD request says about an object; ``None`` stands for no object at the key.
Stored = namedtuple('Stored', 'etag content_type cache_control sha256')


def check_bucket(bucket):
    if not isinstance(bucket, str) or not _BUCKET.match(bucket):
        raise ValidationError('bucket', bucket, 'must be 3 to 63 lower-case letters, digits, dots and hyphens, '
                              'starting and ending with a letter or digit')
    if '..' in bucket or '.-' in bucket or '-.' in bucket or _IPV4.match(bucket):
        raise ValidationError('bucket', bucket, 'must not hold two dots in a row, a dot next to a hyphen, '
                              'or look like an IP address')
    return bucket


def check_prefix(prefix):
    """'' or folders ending in '/': the key then reads ``<prefix>mta-sts.<domain>/...``."""
    prefix = prefix or ''
    if not prefix:
        return prefix
    if not _PREFIX.match(prefix):
        raise ValidationError('prefix', prefix, "may hold only letters, digits, '/' and !_.*'()-")
    if prefix.startswith('/') or not prefix.endswith('/'):
        raise ValidationError('prefix', prefix, "must not start with '/' and must end with '/' (for example policies/)")
    if any(part in ('', '.', '..') for part in prefix[:-1].split('/')):
        raise ValidationError('prefix', prefix, "must not hold an empty, '.' or '..' folder")
    return prefix


def check_cache_control(value):
    if not isinstance(value, str) or not _HEADER_VALUE.match(value):
        raise ValidationError('cache_control', value, 'must be a header value: visible ASCII characters and inner spaces')
    return value


def object_key(prefix, host):
    return prefix + host + POLICY_PATH


def build_objects(domains, prefix):
    """A PolicyObject for each ``domains`` item ({domain, policy}); raise ValidationError on the first fault."""
    if not domains:
        raise ValidationError('domains', domains, 'give at least one domain')
    objects = []
    seen = set()
    for index, item in enumerate(domains):
        where = 'domains[%d].' % index
        domain = normalize_domain(item.get('domain'), where + 'domain')
        if domain in seen:
            raise ValidationError(where + 'domain', domain, 'listed more than once')
        seen.add(domain)
        try:
            text = policy_text(item.get('policy'), where + 'policy')
        except ValidationError as exc:
            if str(exc.field).startswith(where):
                raise
            # Policy errors name their own field (mode, mx); say which item it came from.
            raise ValidationError(where + 'policy.' + str(exc.field), exc.value, exc.rule)
        body = text.encode('utf-8')
        host = 'mta-sts.' + domain
        objects.append(PolicyObject(
            domain=domain, host=host, key=object_key(prefix, host), text=text, body=body, id=policy_id(text),
            md5=hashlib.md5(body).hexdigest(),
            sha256=base64.b64encode(hashlib.sha256(body).digest()).decode('ascii'),
        ))
    return objects


def same_content(obj, stored):
    """Whether the stored object holds ``obj``'s bytes.

    S3's own SHA-256 when the object was uploaded with one (this module's uploads are); else the ETag, which is
    the MD5 of the bytes for a single-part upload without SSE-KMS. An ETag of another kind never matches, so such
    an object is uploaded again once and then has a checksum.
    """
    if stored.sha256:
        return stored.sha256 == obj.sha256
    return (stored.etag or '').strip('"').lower() == obj.md5


def differences(obj, stored, cache_control):
    """What must change for the object at ``obj.key`` to be served right: [] when nothing."""
    if stored is None:
        return ['missing']
    found = []
    if not same_content(obj, stored):
        found.append('content')
    if stored.content_type != CONTENT_TYPE:
        found.append('Content-Type')
    if stored.cache_control != cache_control:
        found.append('Cache-Control')
    return found


def object_text(content_type, cache_control, text):
    """An object as the diff shows it: its two headers, a blank line, the policy text."""
    return 'Content-Type: %s\nCache-Control: %s\n\n%s' % (content_type, cache_control, text)


def object_diff(obj, stored, stored_text, cache_control):
    """The ``diff`` entry of one changed object; ``stored_text`` is its current text (None when not read)."""
    after = object_text(CONTENT_TYPE, cache_control, obj.text)
    if stored is None:
        before = ''
    else:
        before = object_text(stored.content_type, stored.cache_control, obj.text if stored_text is None else stored_text)
    return {'before_header': obj.key, 'after_header': obj.key, 'before': before, 'after': after}


def policy_result(obj, changed):
    """One entry of the module's ``policies`` result."""
    return {
        'id': obj.id,
        'policy': obj.text,
        'host': obj.host,
        'url': 'https://' + obj.host + POLICY_PATH,
        'key': obj.key,
        'changed': changed,
    }
