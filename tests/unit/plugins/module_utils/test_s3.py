import base64
import hashlib

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._policy import policy_id, render_policy
from ansible_collections.mailsec.mta_sts.plugins.module_utils._s3 import (
    CONTENT_TYPE, Stored, build_objects, check_bucket, check_cache_control, check_prefix, differences, object_diff,
    policy_result,
)

POLICY = {'mode': 'enforce', 'mx': ['mx1.example.com'], 'max_age': 604800}
TEXT = 'version: STSv1\nmode: testing\nmx: mx.example.net\nmax_age: 86400\n'


def stored_as_uploaded(obj, cache_control='max-age=300', content_type=CONTENT_TYPE):
    """What S3 answers to HEAD for an object this module uploaded (with its SHA-256 checksum)."""
    return Stored(etag='"%s"' % obj.md5, content_type=content_type, cache_control=cache_control, sha256=obj.sha256)


@pytest.fixture(name='objects')
def objects_fixture():
    return build_objects([{'domain': 'Example.COM.', 'policy': POLICY}, {'domain': 'bücher.example', 'policy': TEXT}],
                         'policies/')


def test_keys_are_prefix_host_and_path(objects):
    assert [obj.key for obj in objects] == [
        'policies/mta-sts.example.com/.well-known/mta-sts.txt',
        'policies/mta-sts.xn--bcher-kva.example/.well-known/mta-sts.txt',
    ]
    assert [obj.host for obj in objects] == ['mta-sts.example.com', 'mta-sts.xn--bcher-kva.example']


def test_a_dict_is_rendered_and_text_kept_byte_for_byte(objects):
    assert objects[0].text == render_policy(POLICY)
    assert objects[1].body == TEXT.encode()
    assert [obj.id for obj in objects] == [policy_id(POLICY), policy_id(TEXT)]


def test_digests_are_those_s3_reports(objects):
    body = objects[1].body
    assert objects[1].md5 == hashlib.md5(body).hexdigest()
    assert objects[1].sha256 == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_result_carries_id_url_and_key(objects):
    assert policy_result(objects[0], True) == {
        'id': policy_id(POLICY), 'policy': render_policy(POLICY), 'host': 'mta-sts.example.com',
        'url': 'https://mta-sts.example.com/.well-known/mta-sts.txt',
        'key': 'policies/mta-sts.example.com/.well-known/mta-sts.txt', 'changed': True,
    }


@pytest.mark.parametrize('domains, field, rule', [
    ([], 'domains', 'at least one'),
    ([{'domain': 'a.example', 'policy': POLICY}, {'domain': 'A.example.', 'policy': POLICY}], 'domains[1].domain', 'more than once'),
    ([{'domain': 'a..example', 'policy': POLICY}], 'domains[0].domain', ''),
    ([{'domain': 'a.example', 'policy': dict(POLICY, mode='strict')}], 'domains[0].policy.mode', ''),
    ([{'domain': 'a.example', 'policy': 'version: STSv1\nmode: enforce\n'}], 'domains[0].policy.', 'missing'),
    ([{'domain': 'a.example', 'policy': 42}], 'domains[0].policy', 'dict or the policy text'),
])
def test_bad_domains_name_the_item_and_the_rule(domains, field, rule):
    with pytest.raises(ValidationError) as caught:
        build_objects(domains, '')
    assert str(caught.value.field).startswith(field)
    assert rule in caught.value.rule


@pytest.mark.parametrize('prefix', ['', 'policies/', 'a/b-c/', "x_(y)!/"])
def test_good_prefixes(prefix):
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize('prefix, rule', [
    ('policies', "end with '/'"),
    ('/policies/', "start with '/'"),
    ('a//b/', "empty, '.' or '..'"),
    ('a/../', "empty, '.' or '..'"),
    ('a b/', 'only letters'),
    ('a?/', 'only letters'),
])
def test_bad_prefixes(prefix, rule):
    with pytest.raises(ValidationError) as caught:
        check_prefix(prefix)
    assert caught.value.field == 'prefix' and rule in caught.value.rule


@pytest.mark.parametrize('bucket', ['ab', 'A-bucket', '-bucket', 'bucket-', 'b_c', 'a..b', 'a.-b', '192.168.1.2', 'x' * 64, None])
def test_bad_buckets(bucket):
    with pytest.raises(ValidationError) as caught:
        check_bucket(bucket)
    assert caught.value.field == 'bucket'


@pytest.mark.parametrize('bucket', ['abc', 'my.policies-1', 'x' * 63])
def test_good_buckets(bucket):
    assert check_bucket(bucket) == bucket


@pytest.mark.parametrize('value', ['', ' max-age=300', 'max-age=300\r\nX-Evil: 1', 'max-age=300 ', 'caf\u00e9'])
def test_bad_cache_control(value):
    with pytest.raises(ValidationError) as caught:
        check_cache_control(value)
    assert caught.value.field == 'cache_control'


def test_cache_control_with_inner_spaces():
    assert check_cache_control('public, max-age=300') == 'public, max-age=300'


def test_nothing_differs_for_what_was_uploaded(objects):
    assert differences(objects[0], stored_as_uploaded(objects[0]), 'max-age=300') == []


def test_missing_object(objects):
    assert differences(objects[0], None, 'max-age=300') == ['missing']


def test_each_difference_is_named(objects):
    other = objects[1]
    stored = Stored(etag='"%s"' % other.md5, content_type='text/plain', cache_control='max-age=3600', sha256=other.sha256)
    assert differences(objects[0], stored, 'max-age=300') == ['content', 'Content-Type', 'Cache-Control']


def test_without_checksum_the_etag_is_the_md5(objects):
    obj = objects[0]
    same = Stored(etag='"%s"' % obj.md5.upper(), content_type=CONTENT_TYPE, cache_control='max-age=300', sha256=None)
    assert differences(obj, same, 'max-age=300') == []
    # A multipart or SSE-KMS ETag is no MD5: uploaded again (then with a checksum).
    opaque = same._replace(etag='"%s-2"' % obj.md5)
    assert differences(obj, opaque, 'max-age=300') == ['content']


def test_the_checksum_wins_over_the_etag(objects):
    obj = objects[0]
    # SSE-KMS: the ETag is no MD5, the checksum S3 computed still says the bytes are the same.
    stored = stored_as_uploaded(obj)._replace(etag='"0123456789abcdef0123456789abcdef"')
    assert differences(obj, stored, 'max-age=300') == []
    stale = stored_as_uploaded(objects[1])._replace(etag='"%s"' % obj.md5)
    assert differences(obj, stale, 'max-age=300') == ['content']


def test_diff_of_a_new_object(objects):
    diff = object_diff(objects[1], None, None, 'max-age=60')
    assert diff['before'] == ''
    assert diff['after'] == 'Content-Type: text/plain; charset=utf-8\nCache-Control: max-age=60\n\n' + TEXT
    assert diff['before_header'] == diff['after_header'] == objects[1].key


def test_diff_of_a_changed_body_shows_the_old_text(objects):
    stored = stored_as_uploaded(objects[1])
    diff = object_diff(objects[1], stored, 'version: STSv1\nmode: none\nmax_age: 1\n', 'max-age=300')
    assert diff['before'].endswith('\n\nversion: STSv1\nmode: none\nmax_age: 1\n')
    assert diff['after'].endswith('\n\n' + TEXT)


def test_diff_of_a_header_change_keeps_the_text(objects):
    stored = stored_as_uploaded(objects[1], content_type='binary/octet-stream')
    diff = object_diff(objects[1], stored, None, 'max-age=300')
    assert diff['before'] == 'Content-Type: binary/octet-stream\nCache-Control: max-age=300\n\n' + TEXT
    assert diff['after'] == 'Content-Type: text/plain; charset=utf-8\nCache-Control: max-age=300\n\n' + TEXT
