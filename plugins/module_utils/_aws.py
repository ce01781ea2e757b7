# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""boto3 clients and AWS errors, shared by the Route 53 provider and the S3 policy module.

Clients are made with botocore's own retries off: ``_retry.Retrier`` is the
only retry layer, and ``classify`` says which AWS failures it retries.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retryable

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    BOTO3_IMPORT_ERROR = exc

# The answers that mean the quota was met, not that something failed.
THROTTLING_CODES = frozenset([
    'Throttling', 'ThrottlingException', 'PriorRequestNotComplete', 'RequestLimitExceeded', 'SlowDown',
])
RETRYABLE_CODES = frozenset([
    'Throttling', 'ThrottlingException', 'PriorRequestNotComplete', 'RequestLimitExceeded',
    'ServiceUnavailable', 'InternalError', 'InternalFailure', 'SlowDown', 'RequestTimeout',
])
CREDENTIAL_CODES = frozenset([
    'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException', 'ExpiredToken',
    'ExpiredTokenException', 'InvalidAccessKeyId', 'AccessDenied', 'AccessDeniedException', 'IncompleteSignature',
    'InvalidToken', 'TokenRefreshRequired',
])
# The module options of an AWS client; the secrets are never logged.
CLIENT_OPTIONS = {
    'aws_access_key_id': {'type': 'str', 'aliases': ['access_key']},
    'aws_secret_access_key': {'type': 'str', 'no_log': True, 'aliases': ['secret_key']},
    'aws_session_token': {'type': 'str', 'no_log': True, 'aliases': ['session_token']},
    'profile': {'type': 'str'},
    'region': {'type': 'str'},
    'endpoint_url': {'type': 'str'},
}


def aws_client(service, settings, default_region=None, max_pool_connections=10):
    """A boto3 client for ``service`` from the CLIENT_OPTIONS and ``timeout`` in ``settings``."""
    if BOTO3_IMPORT_ERROR is not None:
        raise ProviderError('%s: needs the boto3 Python library: %s' % (service, BOTO3_IMPORT_ERROR))
    try:
        session = boto3.session.Session(
            aws_access_key_id=settings['aws_access_key_id'],
            aws_secret_access_key=settings['aws_secret_access_key'],
            aws_session_token=settings['aws_session_token'],
            profile_name=settings['profile'],
            region_name=settings['region'] or default_region,
        )
        config = botocore.config.Config(retries={'total_max_attempts': 1, 'mode': 'standard'},
                                        connect_timeout=settings['timeout'], read_timeout=settings['timeout'],
                                        max_pool_connections=max_pool_connections)
        return session.client(service, endpoint_url=settings['endpoint_url'], config=config)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ProviderError('%s: profile: %s' % (service, exc))
    except botocore.exceptions.BotoCoreError as exc:
        raise ProviderError('%s: %s' % (service, exc))


def classify(exc, client):
    """Raise Retryable for throttling, a 5xx or 429, a timeout or a dropped connection; return otherwise."""
    if isinstance(exc, botocore.exceptions.ClientError):
        if error_code(exc) in RETRYABLE_CODES or http_status(exc) >= 500 or http_status(exc) == 429:
            raise Retryable(error_message(exc), throttled=error_code(exc) in THROTTLING_CODES or http_status(exc) == 429)
        return
    if isinstance(exc, (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError)):
        raise Retryable('no answer from %s within %s s' % (client.meta.endpoint_url, client.meta.config.read_timeout))
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError)):
        raise Retryable('cannot connect to %s: %s' % (client.meta.endpoint_url, connection_cause(exc)))


def no_credentials(exc, what):
    """The ProviderError for botocore's own failures (no credentials found, a bad parameter), or None."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return ProviderError('%s: no AWS credentials: set aws_access_key_id and aws_secret_access_key, profile, '
                             'or the usual AWS environment variables' % what)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return ProviderError('%s: %s' % (what, exc))
    return None


def is_client_error(exc):
    return isinstance(exc, botocore.exceptions.ClientError)


def error_code(exc):
    return exc.response.get('Error', {}).get('Code', '')


def http_status(exc):
    return exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', 0)


def error_message(exc):
    error = exc.response.get('Error', {})
    return '%s: %s' % (error.get('Code', 'error'), error.get('Message', ''))


def connection_cause(exc):
    """The socket's reason (connection refused, name not known) under a botocore connection error."""
    reason = exc.kwargs.get('error') if hasattr(exc, 'kwargs') else None
    return str(reason or exc)
