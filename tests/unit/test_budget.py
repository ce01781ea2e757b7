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
        for _ in range(takes):
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
    assert [budget.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(4.0)
    assert budget.take() == pytest.approx(6.0)      # the first left the window at 10 s
    assert clock.now == pytest.approx(10.0)
    assert [budget.take() for _ in range(2)] == [0.0, 0.0]     # the second and third left at 10 s too
    assert budget.take() == pytest.approx(10.0)     # then the three sent at 10 s must leave first
    assert budget.waited == pytest.approx(16.0)


def test_a_slow_caller_never_waits():
    clock = SharedClock()
    budget = RequestBudget(2, 1.0, clock=clock.time, sleep=clock.sleep)
    for _ in range(20):
        clock.advance(0.5)
        assert budget.take() == 0.0
    assert budget.waited == 0.0


def test_bucket_lets_the_burst_go_at_once_then_paces_at_the_rate():
    clock = SharedClock()
    budget = RequestBudget(10, 1.0, burst=50, clock=clock.time, sleep=clock.sleep)
    sent = [clock.sent_at(budget.take()) for _ in range(80)]
    assert sent[:50] == [0.0] * 50
    # Then one every 0.1 s: the 51st after 0.1 s, the 80th after 3 s.
    assert sent[50:] == pytest.approx([0.1 * n for n in range(1, 31)])
    assert budget.waited == pytest.approx(3.0)       # one caller: each wait is 0.1 s


def test_bucket_refills_while_idle_up_to_its_burst_only():
    clock = SharedClock()
    budget = RequestBudget(10, 1.0, burst=5, clock=clock.time, sleep=clock.sleep)
    for _ in range(5):
        assert budget.take() == 0.0
    assert budget.take() == pytest.approx(0.1)
    clock.advance(60.0)                             # a long pause refills the bucket, but only to 5
    assert [budget.take() for _ in range(5)] == pytest.approx([0.0] * 5)
    assert budget.take() == pytest.approx(0.1)


@pytest.mark.parametrize('seed', range(20))
def test_bucket_never_exceeds_burst_plus_rate(seed):
    rng = random.Random(seed)
    rate, burst = rng.randint(1, 10), rng.randint(1, 20)
    clock = SharedClock()
    budget = RequestBudget(rate, 1.0, burst=burst, clock=clock.time, sleep=clock.sleep)
    sent, _ = run_threads(budget, clock, rng.randint(1, 6), rng.randint(5, 40), rng.choice([0.001, 0.1, 1.0]) / rate, seed)
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
