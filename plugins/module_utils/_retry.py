# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one retry layer of the cloud providers: bounded exponential backoff, honouring Retry-After,
and pacing under the API's quota.

The SDKs' own retries are turned off where the clients are made, so attempts
never multiply. Every request a provider makes goes through ``Retrier.call``,
which also counts them and, with a ``RequestBudget``, takes each attempt
from the quota first, so a large run waits instead of being locked out.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import random
import threading
import time

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ProviderError, ValidationError

MAX_RETRIES = 8
RETRY_MAX_SECONDS = 120.0
RETRY_OPTIONS = {
    'max_retries': {'type': 'int', 'default': MAX_RETRIES},
    'retry_max_seconds': {'type': 'float', 'default': RETRY_MAX_SECONDS},
}
# The pacing under an API quota; the quota's defaults are each provider's (``budget_from``).
BUDGET_OPTIONS = {
    'api_budget': {'type': 'dict', 'apply_defaults': True, 'options': {
        'enabled': {'type': 'bool', 'default': True},
        'requests': {'type': 'int'},
        'seconds': {'type': 'float'},
        'burst': {'type': 'int'},
    }},
}
# What a request is, for the counts of ``Retrier.report``.
REQUEST_KINDS = ('zones', 'read', 'write', 'other')


class RequestBudget(object):
    """The API quota of one account or token, shared by every thread and zone of one module run.

    With ``burst`` None a sliding window: at most ``requests`` in any ``seconds`` (Cloudflare's 1,200 per
    300 s, whose excess locks the token out). With ``burst`` N a token bucket refilled at ``requests``
    per ``seconds`` that holds at most N (Route 53's 10 per second, burst 50).

    Each ``take()`` reserves the earliest moment its request may go under the lock, then sleeps outside
    it, so waiting threads queue in order without holding each other up.

    The API counts a request when it arrives, somewhere between ``take()`` and its answer; a first request
    that opens a connection arrives much later after its ``take()`` than the ones after it. Counted from
    ``take()``, the request that reuses its slot a window later would arrive inside the API's window
    (Cloudflare's lockout). So ``answered()``, called when the answer is in, moves the request's moment
    to then: a window slot is counted from the answer, and the bucket is not empty before the answer
    plus one interval.
    """

    def __init__(self, requests, seconds, burst=None, clock=time.monotonic, sleep=time.sleep):
        if requests < 1 or seconds <= 0 or (burst is not None and burst < 1):
            raise ValueError('a request budget needs requests >= 1, seconds > 0 and burst None or >= 1')
        self.requests = requests
        self.seconds = float(seconds)
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self.waited = 0.0
        self._lock = threading.Lock()
        # Window: the moments of the last ``requests`` requests, oldest first, each a one-item list that
        # ``answered()`` moves on; the calling thread's own in ``_own.slot``.
        self._sent = collections.deque(maxlen=requests)
        self._own = threading.local()
        # Bucket: the moment the bucket is empty again after the requests reserved so far (GCRA's
        # theoretical arrival time); a request may go once that is at most ``burst - 1`` intervals away.
        self._empty_at = None

    def describe(self):
        """The quota in words, for messages: '1200 requests per 300 s' or '10 requests per 1 s, burst 50'."""
        text = '%d requests per %s s' % (self.requests, '%g' % self.seconds)
        return text if self.burst is None else '%s, burst %d' % (text, self.burst)

    def _reserve(self, now):
        """The moment the next request may go (``now`` or later), counted as sent then."""
        if self.burst is None:
            at = now if len(self._sent) < self.requests else max(now, self._sent[0][0] + self.seconds)
            self._own.slot = [at]
            self._sent.append(self._own.slot)
            return at
        interval = self.seconds / self.requests
        empty_at = now if self._empty_at is None else max(self._empty_at, now)
        at = max(now, empty_at - (self.burst - 1) * interval)
        self._empty_at = max(empty_at, at) + interval
        return at

    def take(self):
        """Block until one request may go; return the seconds waited."""
        with self._lock:
            now = self.clock()
            wait = self._reserve(now) - now
            self.waited += wait
        if wait > 0:
            self.sleep(wait)
        return wait

    def answered(self):
        """The calling thread's request (its last ``take()``) has its answer: the API has counted it by now."""
        with self._lock:
            now = self.clock()
            if self.burst is None:
                slot = getattr(self._own, 'slot', None)
                if slot is not None:
                    slot[0] = max(slot[0], now)
            elif self._empty_at is not None:
                self._empty_at = max(self._empty_at, now + self.seconds / self.requests)


class Retryable(Exception):
    """Raised by a classifier for a failure worth another attempt (throttling, 5xx, a dropped connection)."""

    def __init__(self, reason, retry_after=None, throttled=False):
        super(Retryable, self).__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        # The API refused for its quota (HTTP 429, Throttling, PriorRequestNotComplete), not a failure.
        self.throttled = throttled


def budget_from(options, default):
    """The RequestBudget of the ``api_budget`` option, or None when pacing is off.

    ``default`` is the provider's quota as ``(requests, seconds, burst)``; a missing or null
    field takes its value. Raises ValidationError, naming the field, before any request is sent.
    """
    options = options or {}
    if options.get('enabled') is False:
        return None
    requests, seconds, burst = [default[index] if options.get(key) is None else options[key]
                                for index, key in enumerate(('requests', 'seconds', 'burst'))]
    if requests < 1:
        raise ValidationError('api_budget.requests', requests, 'must be at least 1 request')
    if seconds <= 0:
        raise ValidationError('api_budget.seconds', seconds, 'must be more than 0 seconds')
    if burst is not None and burst < 1:
        raise ValidationError('api_budget.burst', burst, 'must be at least 1 request, or null for a sliding window')
    return RequestBudget(requests, seconds, burst)


class Retrier(object):
    def __init__(self, max_retries=MAX_RETRIES, max_seconds=RETRY_MAX_SECONDS, base_delay=0.5, max_delay=20.0,
                 sleep=time.sleep, clock=time.monotonic, jitter=random.random, budget=None):
        self.max_retries = max_retries
        self.max_seconds = max_seconds
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.clock = clock
        self.jitter = jitter
        self.budget = budget
        self.requests = 0
        # Every kind present, 0 when none was made, so that a pipeline reads the same keys on every run.
        self.requests_by_kind = dict((kind, 0) for kind in REQUEST_KINDS)
        self.retries = 0
        self.throttled = 0
        self.quota_wait = 0.0
        # Threads of one run share the counts.
        self._lock = threading.Lock()

    @classmethod
    def from_params(cls, params, budget=None):
        """From module parameters; a missing or null option takes its default."""
        max_retries = params.get('max_retries')
        max_seconds = params.get('retry_max_seconds')
        return cls(max_retries=MAX_RETRIES if max_retries is None else max_retries,
                   max_seconds=RETRY_MAX_SECONDS if max_seconds is None else max_seconds, budget=budget)

    def report(self):
        """What the run asked of the API: the module result's ``api``."""
        with self._lock:
            return {
                'requests': self.requests,
                'requests_by_kind': dict(self.requests_by_kind),
                'retries': self.retries,
                'throttled': self.throttled,
                'quota_wait_seconds': round(self.quota_wait, 3),
            }

    def _count(self, kind, quota_wait):
        with self._lock:
            self.requests += 1
            self.requests_by_kind[kind] = self.requests_by_kind.get(kind, 0) + 1
            self.quota_wait += quota_wait

    def delay(self, attempt, retry_after):
        """Full-jitter exponential backoff, never shorter than what the server asked for."""
        backoff = min(self.max_delay, self.base_delay * (2 ** attempt)) * (0.5 + self.jitter() / 2)
        if retry_after is not None:
            backoff = max(backoff, float(retry_after))
        return backoff

    def _attempt(self, request):
        """``request()``, after which the budget learns that its answer is in (RequestBudget.answered)."""
        try:
            return request()
        finally:
            if self.budget is not None:
                self.budget.answered()

    def call(self, request, classify, what, kind='other'):
        """Run ``request()``; on an error ``classify(exc)`` raises Retryable to retry, or returns to let it through.

        ``what`` names the request in the error when giving up; ``kind`` (REQUEST_KINDS) is what it is counted as.
        Every attempt, retries too, first takes its turn from the budget.
        """
        started = self.clock()
        attempt = 0
        # Waiting for the quota is pacing, not retrying: it does not count against retry_max_seconds.
        paced = 0.0
        while True:
            quota_wait = self.budget.take() if self.budget is not None else 0.0
            paced += quota_wait
            self._count(kind, quota_wait)
            try:
                return self._attempt(request)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                try:
                    classify(exc)
                except Retryable as retryable:
                    if retryable.throttled:
                        with self._lock:
                            self.throttled += 1
                    wait = self.delay(attempt, retryable.retry_after)
                    spent = self.clock() - started - paced
                    if attempt >= self.max_retries or spent + wait > self.max_seconds:
                        raise ProviderError('%s: gave up after %d attempts in %.1f s, last: %s; the API is still '
                                            'throttling or failing: re-run later, or raise max_retries or retry_max_seconds'
                                            % (what, attempt + 1, spent, retryable.reason))
                    attempt += 1
                    with self._lock:
                        self.retries += 1
                    self.sleep(wait)
                    continue
                raise
