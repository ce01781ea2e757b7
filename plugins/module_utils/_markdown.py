# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Markdown tables for CI job summaries (the TLS-RPT summary, the drift report). Pure code."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re


# Report values come from senders: every character that could start Markdown or HTML is escaped,
# and white space runs (a newline would end the table row) become one space.
_MARKDOWN_SPECIAL = re.compile(r'([\\`*_\[\]|~])')


def cell(value):
    if value is None:
        return '-'
    text = re.sub(r'\s+', ' ', '%s' % value).strip()
    text = text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return _MARKDOWN_SPECIAL.sub(r'\\\1', text)


def rate_cell(rate):
    return 'n/a' if rate is None else '%.2f %%' % rate


def table(header, alignment, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '| ' + ' | '.join(alignment) + ' |']
    lines.extend('| ' + ' | '.join(row) + ' |' for row in rows)
    return lines
