"""Write every task result of a playbook run to the JSON file named by RECORD_RESULTS_FILE.

The tests read module results from this file instead of scraping the
human-oriented output of the default callback.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: record_results
type: aggregate
short_description: record task results to a JSON file for the test suite
description: Tests only.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.results = []

    def _record(self, result, status):
        entry = dict(result._result)
        entry['_task'] = result._task.get_name()
        entry['_status'] = status
        self.results.append(entry)

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['RECORD_RESULTS_FILE'], 'w') as handle:
            json.dump(self.results, handle, default=str)
