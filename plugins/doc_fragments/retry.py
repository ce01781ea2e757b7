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
    type: float
    default: 120.0
'''
