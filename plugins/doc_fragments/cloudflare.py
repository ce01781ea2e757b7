# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options of provider cloudflare.
    DOCUMENTATION = r'''
options:
  api_token:
    description:
      - Provider V(cloudflare). API token with C(Zone:Read) and C(DNS:Edit) on the zones. Never logged.
      - Defaults to the E(CLOUDFLARE_API_TOKEN) environment variable.
      - Required with O(provider=cloudflare), given or from the environment; checked before anything is sent.
    type: str
  base_url:
    description:
      - Provider V(cloudflare). Base URL of the API, for a test server; the SDK's default otherwise.
      - Defaults to the E(CLOUDFLARE_BASE_URL) environment variable.
    type: str
notes:
  - Provider V(cloudflare) keeps each TXT value as its own record; a change to a zone is sent as one batch request,
    which Cloudflare applies all or nothing. Zone ids are listed once per run.
'''
