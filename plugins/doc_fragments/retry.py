# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options of the retry layer shared by the cloud providers.
    DOCUMENTATION = r'''
options:
  max_retries:
    description:
      - Providers V(route53) and V(cloudflare). How many times a throttled (Route 53 C(Throttling),
        C(PriorRequestNotComplete); HTTP 429), failed (HTTP 5xx) or dropped request is tried again, with exponential
        backoff and jitter, never sooner than a C(Retry-After) the API sends.
      - The SDKs' own retries are turned off, so attempts never multiply.
    type: int
    default: 8
  retry_max_seconds:
    description:
      - Providers V(route53) and V(cloudflare). Upper bound of the time spent retrying one request. When it or
        O(max_retries) is exhausted the module fails, saying which zones were already changed; a re-run converges.
      - Time spent waiting for the quota of O(api_budget) is pacing, not retrying, and does not count.
    type: float
    default: 120.0
  api_budget:
    description:
      - Providers V(route53) and V(cloudflare). Client-side pacing under the API's quota, so that a large run waits
        instead of being locked out. Every request the module sends, retries included, first takes its turn from the
        budget, which is shared by all the threads and zones of one module run.
      - Defaults are the documented quotas. V(cloudflare) 1200 requests in any 300 seconds (a sliding window; past it,
        Cloudflare refuses every request of the token, dashboard included, for 5 minutes). V(route53) 10 requests per
        second with a burst of 50 (a token bucket; per account).
      - A run that waits says so in a warning (how long, how many requests), and in the result's C(api.quota_wait_seconds).
      - The budget cannot see other clients of the same account or token (two concurrent runs, another tool, the
        dashboard) share the quota. Lower O(api_budget.requests) when the account is shared, and give each
        run its part.
      - Providers V(rfc2136) and V(zonefile) have no API quota; the option does not apply to them.
    type: dict
    suboptions:
      enabled:
        description:
          - V(false) turns pacing off; throttling answers are then still retried with backoff (O(max_retries)).
        type: bool
        default: true
      requests:
        description:
          - How many requests the quota allows in O(api_budget.seconds). Default per provider (see above).
        type: int
      seconds:
        description:
          - The quota's period in seconds. Default per provider (see above).
        type: float
      burst:
        description:
          - The size of a token bucket refilled at O(api_budget.requests) per O(api_budget.seconds). Unset, the
            provider's own kind of quota, for V(cloudflare) a sliding window (at most O(api_budget.requests) in any
            O(api_budget.seconds)), for V(route53) a bucket of 50.
        type: int
'''
