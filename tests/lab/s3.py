"""S3 on loopback: moto's server (it serves S3 beside Route53) behind the counting ``FaultProxy``.

``S3Lab`` starts both; ``proxy.counts()`` then says how many requests of each
S3 operation reached moto, so a test can require "no PutObject" of a re-run.
Requests are told apart by method and path-style URL (``/bucket`` or
``/bucket/key``), which is what boto3 sends to an ``endpoint_url`` on an address.
"""

import json
import os
import urllib.parse

from .route53 import CREDENTIALS, REGION, FaultProxy, MotoServer

AUTH_VARIABLE = 'INITIAL_NO_AUTH_ACTION_COUNT'
OPERATIONS = ('HeadBucket', 'CreateBucket', 'ListObjects', 'HeadObject', 'GetObject', 'PutObject', 'other')


def classify(method, path):
    """The S3 operation of a path-style request; 'other' for anything else."""
    parts = urllib.parse.urlsplit(path)
    bucket, key = (parts.path.lstrip('/').split('/', 1) + [''])[:2]
    method = method.upper()
    if not bucket:
        return 'other'
    if not key:
        if method == 'GET':
            return 'ListObjects'
        return 'other' if parts.query else {'HEAD': 'HeadBucket', 'PUT': 'CreateBucket'}.get(method, 'other')
    return {'HEAD': 'HeadObject', 'GET': 'GetObject', 'PUT': 'PutObject'}.get(method, 'other')


def s3_client(endpoint_url, **credentials):
    """A boto3 S3 client for ``endpoint_url``, dummy credentials unless given, no environment proxies."""
    import boto3
    import botocore.config
    return boto3.client('s3', endpoint_url=endpoint_url, region_name=REGION,
                        config=botocore.config.Config(proxies={}),
                        **(credentials or CREDENTIALS))


class S3Lab:
    """moto + a counting proxy in front of it; ``endpoint_url`` is the proxy's.

    With ``authenticate=N``, moto checks credentials and IAM policies after its
    first N requests (its ``INITIAL_NO_AUTH_ACTION_COUNT``), so the set-up can
    create a user and a key (``create_user``) and a wrong key is refused as S3 would.
    """

    def __init__(self, authenticate=None):
        self.moto = MotoServer()
        self.proxy = None
        self._authenticate = authenticate

    def start(self):
        saved = os.environ.get(AUTH_VARIABLE)
        if self._authenticate is not None:
            # moto reads it from its environment at start, which is a copy of ours.
            os.environ[AUTH_VARIABLE] = str(self._authenticate)
        try:
            self.moto.start()
        finally:
            if saved is None:
                os.environ.pop(AUTH_VARIABLE, None)
            else:
                os.environ[AUTH_VARIABLE] = saved
        try:
            self.proxy = FaultProxy(self.moto.endpoint_url, classify_request=classify, operations=OPERATIONS).start()
        except BaseException:
            self.moto.stop()
            raise
        return self

    def stop(self):
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        self.moto.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint_url(self):
        return self.proxy.endpoint_url

    def client(self, **credentials):
        """A client talking to moto directly: what the tests set up or read is not counted."""
        return s3_client(self.moto.endpoint_url, **credentials)

    def create_user(self, name='policy-host'):
        """An IAM user allowed every S3 action; its credentials as boto3 keyword arguments (3 requests)."""
        import boto3
        import botocore.config
        iam = boto3.client('iam', endpoint_url=self.moto.endpoint_url, region_name=REGION,
                           config=botocore.config.Config(proxies={}), **CREDENTIALS)
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName='s3', PolicyDocument=json.dumps({
            'Version': '2012-10-17',
            'Statement': [{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}]}))
        key = iam.create_access_key(UserName=name)['AccessKey']
        return {'aws_access_key_id': key['AccessKeyId'], 'aws_secret_access_key': key['SecretAccessKey']}
