import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier, Retryable


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Throttled(Exception):
    pass


def classify(exc):
    if isinstance(exc, Throttled):
        raise Retryable('Throttling', retry_after=getattr(exc, 'retry_after', None))


def flaky(failures):
    calls = []

    def request():
        calls.append(1)
        if len(calls) <= failures:
            raise Throttled()
        return 'done'
    return request, calls


def make(max_retries=5, max_seconds=100.0):
    clock = Clock()
    return Retrier(max_retries=max_retries, max_seconds=max_seconds, sleep=clock.sleep, clock=clock.time, jitter=lambda: 1.0), clock


def test_retries_until_success_with_growing_delays():
    retrier, clock = make()
    request, calls = flaky(3)
    assert retrier.call(request, classify, 'list') == 'done'
    assert len(calls) == 4 and retrier.requests == 4 and retrier.retries == 3
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_retry_after_is_honoured():
    retrier, clock = make()
    request = flaky(1)[0]
    Throttled.retry_after = 7
    try:
        retrier.call(request, classify, 'list')
    finally:
        del Throttled.retry_after
    assert clock.sleeps == [7.0]


def test_gives_up_after_max_retries_naming_the_request():
    retrier = make(max_retries=2)[0]
    request, calls = flaky(10)
    with pytest.raises(ProviderError) as error:
        retrier.call(request, classify, 'ChangeResourceRecordSets example.com')
    assert len(calls) == 3
    assert str(error.value).startswith('ChangeResourceRecordSets example.com: gave up after 3 attempts')
    assert str(error.value).endswith('last: Throttling; the API is still throttling or failing: re-run later, '
                                     'or raise max_retries or retry_max_seconds')


def test_gives_up_when_the_time_budget_would_be_exceeded():
    retrier, clock = make(max_retries=50, max_seconds=3.0)
    request, calls = flaky(10)
    with pytest.raises(ProviderError):
        retrier.call(request, classify, 'list')
    assert sum(clock.sleeps) <= 3.0 and len(calls) == 3


def test_other_errors_pass_through_without_retry():
    retrier, clock = make()

    def request():
        raise KeyError('boom')
    with pytest.raises(KeyError):
        retrier.call(request, classify, 'list')
    assert retrier.requests == 1 and clock.sleeps == []


def test_from_params_takes_the_option_defaults_for_missing_or_null_values():
    retrier = Retrier.from_params({'max_retries': None})
    assert (retrier.max_retries, retrier.max_seconds) == (8, 120.0)
    assert Retrier.from_params({'max_retries': 0, 'retry_max_seconds': 5.0}).max_retries == 0
