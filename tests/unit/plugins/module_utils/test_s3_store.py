"""What S3PolicyStore makes of S3's answers, with a stand-in client that answers as botocore does.

The requests themselves are tested against moto in tests/integration/test_policy_host_s3.py;
here are the answers moto does not give (wrong region, throttling, one failed upload among many).
"""

import botocore.exceptions
import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier
from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3 import Stored, build_objects
from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3_store import S3PolicyStore

POLICY = {'mode': 'testing', 'mx': ['mx.example.com'], 'max_age': 86400}


def client_error(status, code=None, message='', operation='HeadObject', headers=None):
    # HEAD answers have no body: botocore then uses the status as the code.
    return botocore.exceptions.ClientError({
        'Error': {'Code': code or str(status), 'Message': message},
        'ResponseMetadata': {'HTTPStatusCode': status, 'HTTPHeaders': headers or {}},
    }, operation)


class Meta:
    endpoint_url = 'http://127.0.0.1:9'

    class config:  # noqa: N801 - botocore's attribute name
        read_timeout = 10


class FakeS3:
    """Answers each operation from a list of results (an exception is raised); records the calls."""

    meta = Meta

    def __init__(self, **answers):
        self.answers = answers
        self.calls = []

    def _answer(self, operation, kwargs):
        self.calls.append((operation, kwargs.get('Key')))
        answers = self.answers[operation]
        answer = answers.pop(0) if isinstance(answers, list) else answers(kwargs)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def head_bucket(self, **kwargs):
        return self._answer('head_bucket', kwargs)

    def head_object(self, **kwargs):
        return self._answer('head_object', kwargs)

    def put_object(self, **kwargs):
        return self._answer('put_object', kwargs)


def store(client, max_retries=3):
    return S3PolicyStore(client, Retrier(max_retries=max_retries, sleep=lambda seconds: None), 'policies', concurrency=4)


def test_a_missing_bucket_is_named():
    with pytest.raises(ProviderError) as caught:
        store(FakeS3(head_bucket=[client_error(404, operation='HeadBucket')])).check_bucket()
    assert 'bucket policies does not exist; check bucket, region and endpoint_url' in str(caught.value)


@pytest.mark.parametrize('error', [client_error(403, operation='HeadBucket'),
                                   client_error(403, 'InvalidAccessKeyId', 'no such key', operation='PutObject')])
def test_refused_credentials_say_what_to_check(error):
    with pytest.raises(ProviderError) as caught:
        store(FakeS3(head_bucket=[error])).check_bucket()
    assert 'AWS refused the request' in str(caught.value)
    assert 'aws_secret_access_key' in str(caught.value) and 's3:ListBucket' in str(caught.value)


def test_a_bucket_in_another_region_names_it():
    error = client_error(301, operation='HeadBucket', headers={'x-amz-bucket-region': 'eu-west-1'})
    with pytest.raises(ProviderError) as caught:
        store(FakeS3(head_bucket=[error])).check_bucket()
    assert 'bucket policies is in another region (eu-west-1); set region' in str(caught.value)


def test_no_credentials_at_all():
    with pytest.raises(ProviderError) as caught:
        store(FakeS3(head_bucket=[botocore.exceptions.NoCredentialsError()])).check_bucket()
    assert 'no AWS credentials' in str(caught.value)


def test_a_missing_key_is_none_and_a_found_one_is_read():
    found = {'ETag': '"abc"', 'ContentType': 'text/plain', 'CacheControl': 'max-age=1', 'ChecksumSHA256': 'c2hh'}
    client = FakeS3(head_object=lambda kwargs: client_error(404) if kwargs['Key'] == 'gone' else found)
    assert store(client).read(['gone', 'here']) == {
        'gone': None, 'here': Stored(etag='"abc"', content_type='text/plain', cache_control='max-age=1', sha256='c2hh')}


def test_throttling_is_retried_then_given_up():
    slow = client_error(503, 'SlowDown', 'Please reduce your request rate.')
    client = FakeS3(head_object=[slow, {'ETag': '"abc"'}])
    target = store(client)
    assert target.head('k').etag == '"abc"'
    assert target.retrier.retries == 1
    with pytest.raises(ProviderError) as caught:
        store(FakeS3(head_object=[slow] * 3), max_retries=2).head('k')
    assert 'gave up after 3 attempts' in str(caught.value) and 'SlowDown' in str(caught.value)


def test_one_failed_upload_does_not_hide_the_others():
    objects = build_objects([{'domain': 'd%d.example' % number, 'policy': POLICY} for number in range(5)], '')
    refused = objects[2].key
    client = FakeS3(put_object=lambda kwargs: client_error(400, 'InvalidRequest', 'no', 'PutObject')
                    if kwargs['Key'] == refused else {})
    done, failed = store(client).upload(objects, 'max-age=300')
    assert [obj.domain for obj in done] == ['d0.example', 'd1.example', 'd3.example', 'd4.example']
    assert [(obj.domain, 'InvalidRequest' in str(error)) for obj, error in failed] == [('d2.example', True)]
    assert len(client.calls) == 5
