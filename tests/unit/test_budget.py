"""RequestBudget: the client-side pacing under an API quota, and its use by the Retrier (fake clock and sleep)."""

import random
import threading

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import RequestBudget


class SharedClock:
    """One fake monotonic clock for many threads: each thread remembers the last time it read, so a test can
    tell the moment its request was let go (that reading plus the wait ``take()`` returns). Sleeping moves
    the clock on, as real time would."""

    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()
        self.local = threading.local()

    def time(self):
        with self.lock:
            self.local.read = self.now
            return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now = max(self.now, self.local.read + seconds)

    def advance(self, seconds):
        with self.lock:
            self.now += seconds

    def sent_at(self, waited):
        return self.local.read + waited


def most_in_any_window(moments, seconds):
    """The largest number of moments within any half-open window [t, t + seconds)."""
    moments = sorted(moments)
    most, start = 0, 0
    for end, moment in enumerate(moments):
        while moment - moments[start] >= seconds - 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


def run_threads(budget, clock, threads, takes, gap, seed):
    """``threads`` threads each taking ``takes`` times, the clock moving on by a random gap before each."""
    sent, waits = [], []
    lock = threading.Lock()

    def worker(number):
        rng = random.Random(seed * 1000 + number)
        for _attempt in range(takes):
            clock.advance(rng.random() * gap)
            waited = budget.take()
            with lock:
                sent.append(clock.sent_at(waited))
                waits.append(waited)
    workers = [threading.Thread(target=worker, args=(number,)) for number in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return sent, waits


@pytest.mark.parametrize('seed', range(40))
def test_window_never_lets_more_than_the_quota_into_any_window(seed):
    rng = random.Random(seed)
    requests, seconds = rng.randint(1, 12), rng.choice([0.5, 2.0, 300.0])
    clock = SharedClock()
    budget = RequestBudget(requests, seconds, clock=clock.time, sleep=clock.sleep)
    # Arrivals from far faster than the quota to slower than it, from one to eight threads.
    gap = seconds / requests * rng.choice([0.01, 0.5, 1.0, 3.0])
    sent, waits = run_threads(budget, clock, rng.randint(1, 8), rng.randint(5, 40), gap, seed)
    assert most_in_any_window(sent, seconds) <= requests
    assert budget.waited == pytest.approx(sum(waits))


def test_window_lets_a_full_quota_go_at_once_then_waits_for_the_oldest_to_leave():
    clock = SharedClock()
    budget = RequestBudget(3, 10.0, clock=clock.time, sleep=clock.sleep)
    assert [budget.take() for _attempt in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(4.0)
    assert budget.take() == pytest.approx(6.0)      # the first left the window at 10 s
    assert clock.now == pytest.approx(10.0)
    assert [budget.take() for _attempt in range(2)] == [0.0, 0.0]     # the second and third left at 10 s too
    assert budget.take() == pytest.approx(10.0)     # then the three sent at 10 s must leave first
    assert budget.waited == pytest.approx(16.0)


def test_a_slow_caller_never_waits():
    clock = SharedClock()
    budget = RequestBudget(2, 1.0, clock=clock.time, sleep=clock.sleep)
    for _attempt in range(20):
        clock.advance(0.5)
        assert budget.take() == 0.0
    assert budget.waited == 0.0


def test_bucket_lets_the_burst_go_at_once_then_paces_at_the_rate():
    clock = SharedClock()
    budget = RequestBudget(10, 1.0, burst=50, clock=clock.time, sleep=clock.sleep)
    sent = [clock.sent_at(budget.take()) for _attempt in range(80)]
    assert sent[:50] == [0.0] * 50
    # Then one every 0.1 s: the 51st after 0.1 s, the 80th after 3 s.
    assert sent[50:] == pytest.approx([0.1 * n for n in range(1, 31)])
    assert budget.waited == pytest.approx(3.0)       # one caller: each wait is 0.1 s


def test_bucket_refills_while_idle_up_to_its_burst_only():
    clock = SharedClock()
    budget = RequestBudget(10, 1.0, burst=5, clock=clock.time, sleep=clock.sleep)
    for _attempt in range(5):
        assert budget.take() == 0.0
    assert budget.take() == pytest.approx(0.1)
    clock.advance(60.0)                             # a long pause refills the bucket, but only to 5
    assert [budget.take() for _attempt in range(5)] == pytest.approx([0.0] * 5)
    assert budget.take() == pytest.approx(0.1)


@pytest.mark.parametrize('seed', range(20))
def test_bucket_never_exceeds_burst_plus_rate(seed):
    rng = random.Random(seed)
    rate, burst = rng.randint(1, 10), rng.randint(1, 20)
    clock = SharedClock()
    budget = RequestBudget(rate, 1.0, burst=burst, clock=clock.time, sleep=clock.sleep)
    sent, _waits = run_threads(budget, clock, rng.randint(1, 6), rng.randint(5, 40), rng.choice([0.001, 0.1, 1.0]) / rate, seed)
    sent.sort()
    # A token bucket lets at most burst + rate * (t_j - t_i) requests go in [t_i, t_j].
    for i in range(len(sent)):
        for j in range(i, len(sent)):
            assert j - i + 1 <= burst + rate * (sent[j] - sent[i]) + 1e-6


def test_waiting_threads_queue_and_the_wait_is_summed():
    clock = SharedClock()
    budget = RequestBudget(4, 1.0, clock=clock.time, sleep=clock.sleep)
    sent, waits = run_threads(budget, clock, threads=4, takes=10, gap=0.0, seed=1)
    # 40 requests at 4 per second: the last goes at 9 s, and every wait is counted.
    assert max(sent) == pytest.approx(9.0)
    assert budget.waited == pytest.approx(sum(waits)) and budget.waited > 0


@pytest.mark.parametrize('requests, seconds, burst', [(0, 1.0, None), (1, 0.0, None), (10, 1.0, 0)])
def test_a_budget_that_lets_nothing_through_is_refused(requests, seconds, burst):
    with pytest.raises(ValueError):
        RequestBudget(requests, seconds, burst)


def test_describe_names_the_quota():
    assert RequestBudget(1200, 300).describe() == '1200 requests per 300 s'
    assert RequestBudget(10, 1.0, burst=50).describe() == '10 requests per 1 s, burst 50'


# The Retrier with a budget: every attempt is paced and counted.

from ansible_collections.mailsec.mta_sts.plugins.module_utils._aws import classify as aws_classify  # noqa: E402
from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError, ValidationError  # noqa: E402
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.cloudflare import CloudflareProvider  # noqa: E402
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.route53 import Route53Provider  # noqa: E402
from ansible_collections.mailsec.mta_sts.plugins.module_utils._retry import Retrier, Retryable, budget_from  # noqa: E402


class Answers:
    """A request that fails with the given Retryables in turn, then answers 'done'."""

    def __init__(self, *failures):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return 'done'


def reraise(exc):
    if isinstance(exc, Retryable):
        raise exc


def paced_retrier(budget_requests=2, budget_seconds=10.0, burst=None, **kwargs):
    clock = SharedClock()
    budget = RequestBudget(budget_requests, budget_seconds, burst, clock=clock.time, sleep=clock.sleep)
    retrier = Retrier(sleep=clock.sleep, clock=clock.time, jitter=lambda: 0.0, budget=budget, **kwargs)
    return retrier, clock


def test_every_attempt_retries_included_takes_from_the_budget_and_is_counted_by_kind():
    retrier, clock = paced_retrier()
    retrier.call(Answers(), reraise, 'list zones', 'zones')
    request = Answers(Retryable('HTTP 502'))
    assert retrier.call(request, reraise, 'list records', 'read') == 'done'
    # The third attempt (the retry) had to wait for the first to leave the 10 s window.
    assert request.calls == 2 and clock.now == pytest.approx(10.0)
    retrier.call(Answers(), reraise, 'batch', 'write')
    assert retrier.report() == {
        'requests': 4, 'requests_by_kind': {'zones': 1, 'read': 2, 'write': 1, 'other': 0}, 'retries': 1, 'throttled': 0,
        'quota_wait_seconds': pytest.approx(retrier.budget.waited),
    }
    assert retrier.budget.waited == pytest.approx(9.75)     # after the 0.25 s backoff; the write then went at once


def test_a_throttling_answer_is_counted_and_retry_after_still_honoured():
    retrier, clock = paced_retrier(budget_requests=100)
    request = Answers(Retryable('HTTP 429 rate limited', retry_after=30, throttled=True))
    assert retrier.call(request, reraise, 'list records', 'read') == 'done'
    assert clock.now == pytest.approx(30.0)
    report = retrier.report()
    assert report['throttled'] == 1 and report['retries'] == 1 and report['quota_wait_seconds'] == 0.0


def test_waiting_for_the_quota_does_not_use_up_retry_max_seconds():
    # A 60 s quota wait before a retry, with only 5 s allowed for retrying: the retry still happens.
    retrier, clock = paced_retrier(budget_requests=1, budget_seconds=60.0, max_seconds=5.0)
    request = Answers(Retryable('HTTP 502'))
    assert retrier.call(request, reraise, 'list records', 'read') == 'done'
    assert clock.now == pytest.approx(60.0)


def test_without_a_budget_nothing_waits_and_the_report_says_so():
    retrier = Retrier(sleep=lambda seconds: None, jitter=lambda: 0.0)
    retrier.call(Answers(), reraise, 'x')
    assert retrier.report() == {'requests': 1, 'requests_by_kind': {'zones': 0, 'read': 0, 'write': 0, 'other': 1}, 'retries': 0, 'throttled': 0,
                                'quota_wait_seconds': 0.0}


def client_error(code, status=400):
    import botocore.exceptions
    return botocore.exceptions.ClientError({'Error': {'Code': code, 'Message': 'Rate exceeded'},
                                            'ResponseMetadata': {'HTTPStatusCode': status}}, 'ListResourceRecordSets')


@pytest.mark.parametrize('code, status, throttled', [
    ('Throttling', 400, True), ('PriorRequestNotComplete', 400, True), ('SlowDown', 503, True),
    ('ServiceUnavailable', 503, False), ('InternalError', 500, False),
])
def test_aws_throttling_and_prior_request_not_complete_are_retried_and_counted_as_throttled(code, status, throttled):
    with pytest.raises(Retryable) as caught:
        aws_classify(client_error(code, status), client=None)
    assert caught.value.throttled is throttled


def test_route53_prior_request_not_complete_is_retried_through_a_paced_retrier():
    retrier, clock = paced_retrier(budget_requests=10, budget_seconds=1.0, burst=50)
    request = Answers(client_error('PriorRequestNotComplete'), client_error('Throttling'))
    assert retrier.call(request, lambda exc: aws_classify(exc, None), 'change', 'write') == 'done'
    assert retrier.report()['throttled'] == 2 and retrier.report()['requests_by_kind']['write'] == 3


@pytest.mark.parametrize('provider, quota', [
    (CloudflareProvider, (1200, 300.0, None)),
    (Route53Provider, (10, 1.0, 50)),
])
def test_each_provider_paces_at_its_documented_quota_by_default(provider, quota):
    budget = provider.retrier_from({'api_budget': {'enabled': True, 'requests': None, 'seconds': None, 'burst': None}}).budget
    assert (budget.requests, budget.seconds, budget.burst) == quota
    assert provider.retrier_from({}).budget.requests == quota[0]


def test_the_budget_is_configurable_and_can_be_turned_off():
    budget = budget_from({'enabled': True, 'requests': 600, 'seconds': 300, 'burst': None}, (1200, 300.0, None))
    assert (budget.requests, budget.seconds, budget.burst) == (600, 300, None)
    budget = budget_from({'requests': 5, 'burst': 20}, (10, 1.0, 50))
    assert (budget.requests, budget.seconds, budget.burst) == (5, 1.0, 20)
    assert budget_from({'enabled': False, 'requests': 0}, (10, 1.0, 50)) is None


@pytest.mark.parametrize('options, field', [
    ({'requests': 0}, 'api_budget.requests'),
    ({'seconds': 0}, 'api_budget.seconds'),
    ({'seconds': -1.5}, 'api_budget.seconds'),
    ({'burst': 0}, 'api_budget.burst'),
])
def test_a_bad_budget_is_refused_naming_the_field(options, field):
    with pytest.raises(ValidationError) as caught:
        budget_from(options, (10, 1.0, 50))
    assert caught.value.field == field and field in str(caught.value)


def test_the_quota_warning_says_how_long_and_how_many_requests():
    provider = CloudflareProvider(None, Retrier(budget=RequestBudget(1200, 300)))
    provider.retrier.requests, provider.retrier.quota_wait = 1020, 12.34
    assert provider.api_warnings() == ['waited 12.3 s for the cloudflare API quota (1200 requests per 300 s); '
                                       'made 1,020 requests']
    provider.retrier.quota_wait = 0.0
    assert provider.api_warnings() == []
    assert provider.api_report()['requests'] == 1020


def test_giving_up_still_names_the_request():
    retrier, _budget = paced_retrier(budget_requests=100, max_retries=1)
    with pytest.raises(ProviderError, match='list records: gave up after 2 attempts'):
        retrier.call(Answers(Retryable('HTTP 502'), Retryable('HTTP 502')), reraise, 'list records', 'read')


@pytest.mark.parametrize('burst', [None, 3])
@pytest.mark.parametrize('seed', range(15))
def test_counted_from_the_answer_the_quota_holds_wherever_the_server_saw_the_request(seed, burst):
    # The server counts a request when it arrives, anywhere between take() and the answer; the first one,
    # opening a connection, arrives latest. Whatever the arrival, the server's count stays within the quota.
    rng = random.Random(seed)
    requests, seconds = rng.randint(1, 6), 1.0
    clock = SharedClock()
    budget = RequestBudget(requests, seconds, burst, clock=clock.time, sleep=clock.sleep)
    arrivals = []
    for number in range(60):
        sent = clock.sent_at(budget.take())
        took = rng.random() * (0.5 if number == 0 else 0.05) * seconds
        arrivals.append(sent + rng.choice([0.0, 1.0, rng.random()]) * took)
        clock.advance(took)
        budget.answered()
    if burst is None:
        assert most_in_any_window(arrivals, seconds) <= requests
    else:
        for i in range(len(arrivals)):
            for j in range(i, len(arrivals)):
                assert j - i + 1 <= burst + requests / seconds * (arrivals[j] - arrivals[i]) + 1e-6


def test_counted_from_take_the_server_could_see_one_too_many():
    # Why answered() exists: without it, a slow first request and a fast one a window later share a window.
    clock = SharedClock()
    budget = RequestBudget(1, 1.0, clock=clock.time, sleep=clock.sleep)
    first = clock.sent_at(budget.take()) + 0.3      # arrives 0.3 s after it was let go
    clock.advance(0.3)
    second = clock.sent_at(budget.take())           # no answered(): let go 1 s after the first was
    assert second - first < 1.0
