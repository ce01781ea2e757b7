# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The policy objects of one S3 bucket through boto3: the I/O edge of ``policy_s3``.

Every request goes through one Retrier (throttling, 5xx, dropped connections);
many objects are read and written side by side on one client (thread safe).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mailsec.mta_sts.plugins.module_utils._aws import (
    CREDENTIAL_CODES, aws_client, classify, error_code, error_message, http_status, is_client_error, no_credentials,
)
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier
from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3 import CONTENT_TYPE, Stored

# Requests in flight at once; also the size of the client's connection pool.
CONCURRENCY = 16
# A policy is at most 64 KiB (RFC 8461 section 3.3); the diff never reads more.
MAX_POLICY_BYTES = 64 * 1024
CREDENTIALS_HINT = ('check aws_access_key_id, aws_secret_access_key, aws_session_token or profile, and that they '
                    'may s3:ListBucket, s3:GetObject and s3:PutObject on the bucket')


class S3PolicyStore(object):
    def __init__(self, client, retrier, bucket, concurrency=CONCURRENCY):
        self.client = client
        self.retrier = retrier
        self.bucket = bucket
        self.concurrency = concurrency

    @classmethod
    def from_params(cls, params):
        client = aws_client('s3', params, max_pool_connections=CONCURRENCY)
        return cls(client, Retrier.from_params(params), params['bucket'])

    def _call(self, operation, what, missing=False, **kwargs):
        """``operation`` through the Retrier; with ``missing`` true, None when S3 answers 404 (no such key)."""
        request = functools.partial(getattr(self.client, operation), Bucket=self.bucket, **kwargs)
        what = 's3 %s %s' % (operation, what)
        try:
            return self.retrier.call(request, lambda exc: classify(exc, self.client), what)
        except ProviderError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # The bucket was found first (check_bucket), so a 404 here is the key's.
            if missing and is_client_error(exc) and http_status(exc) == 404:
                return None
            error = self._failure(exc, what)
            if error is None:
                raise
            raise error

    def _failure(self, exc, what):
        if not is_client_error(exc):
            return no_credentials(exc, what)
        # HEAD answers carry no error document: only the status tells what went wrong.
        status = http_status(exc)
        if error_code(exc) in CREDENTIAL_CODES or status == 403:
            return ProviderError('%s: AWS refused the request (%s); %s' % (what, error_message(exc), CREDENTIALS_HINT))
        if error_code(exc) == 'NoSuchBucket' or status == 404:
            return ProviderError('%s: bucket %s does not exist; check bucket, region and endpoint_url' % (what, self.bucket))
        if status == 301:
            region = exc.response.get('ResponseMetadata', {}).get('HTTPHeaders', {}).get('x-amz-bucket-region')
            return ProviderError('%s: bucket %s is in another region%s; set region' % (
                what, self.bucket, ' (%s)' % region if region else ''))
        return ProviderError('%s: %s' % (what, error_message(exc)))

    def check_bucket(self):
        """Fail before any upload when the bucket is missing or the credentials are refused."""
        self._call('head_bucket', self.bucket)

    def _parallel(self, function, items):
        """``[(item, result or exception)]`` of ``function(item)`` for every item, side by side."""
        def attempt(item):
            try:
                return item, function(item)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                return item, exc
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(attempt, items))

    def _each(self, function, keys):
        """``{key: function(key)}`` for every key, side by side; the first failure is raised."""
        found = {}
        for key, result in self._parallel(function, keys):
            if isinstance(result, Exception):
                raise result
            found[key] = result
        return found

    def head(self, key):
        """What S3 holds at ``key`` (Stored), or None when there is no object."""
        answer = self._call('head_object', key, missing=True, Key=key, ChecksumMode='ENABLED')
        if answer is None:
            return None
        return Stored(etag=answer.get('ETag'), content_type=answer.get('ContentType'),
                      cache_control=answer.get('CacheControl'), sha256=answer.get('ChecksumSHA256'))

    def read(self, keys):
        """``{key: Stored or None}`` for every key; the first failure is raised."""
        return self._each(self.head, keys)

    def texts(self, keys):
        """``{key: text}`` of the objects at ``keys`` (for the diff); bytes that are no UTF-8 are shown escaped."""
        def get(key):
            answer = self._call('get_object', key, Key=key, Range='bytes=0-%d' % (MAX_POLICY_BYTES - 1))
            return answer['Body'].read().decode('utf-8', 'backslashreplace')
        return self._each(get, keys)

    def upload(self, objects, cache_control):
        """Put every object; returns ``(uploaded objects, [(object, error)])``."""
        def put(obj):
            self._call('put_object', obj.key, Key=obj.key, Body=obj.body, ContentType=CONTENT_TYPE,
                       CacheControl=cache_control, ChecksumAlgorithm='SHA256')
        done, failed = [], []
        for obj, result in self._parallel(put, objects):
            if isinstance(result, Exception):
                failed.append((obj, result))
            else:
                done.append(obj)
        return done, failed
