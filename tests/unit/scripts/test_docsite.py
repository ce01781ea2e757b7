"""scripts/docsite.py: docs/*.md become the docs site's reStructuredText pages, and the committed ones are current."""

import importlib.util
import os
import re
import subprocess
import sys

import yaml

from tests.conftest import REPO

SCRIPT = os.path.join(REPO, 'scripts', 'docsite.py')
spec = importlib.util.spec_from_file_location('docsite', SCRIPT)
docsite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docsite)

PREFIX = 'ansible_collections.mailsec.mta_sts.docsite.'


def convert(markdown, page='findings'):
    return docsite.Converter(page).convert(markdown)


def test_headings_get_the_labels_their_markdown_anchors_had():
    rst = convert('# Findings\n\n## MX hosts (RFC 8461 §4)\n\n### `sts-dns-error`\n')
    assert rst == ('.. _%(p)sfindings:\n\n========\nFindings\n========\n\n'
                   '.. _%(p)sfindings.mx-hosts-rfc-8461-4:\n\nMX hosts (RFC 8461 §4)\n======================\n\n'
                   '.. _%(p)sfindings.sts-dns-error:\n\n``sts-dns-error``\n-----------------\n' % {'p': PREFIX})


def test_links_to_a_heading_another_page_a_url_or_a_file_outside_the_site():
    rst = convert('See [MX hosts](#mx-hosts), [the id](policy-id.md#algorithm), [RFC](https://example.org/x) '
                  'and [the bench](bench/README.md).')
    assert ':ref:`MX hosts <%sfindings.mx-hosts>`' % PREFIX in rst
    assert ':ref:`the id <%spolicy-id.algorithm>`' % PREFIX in rst
    assert '`RFC <https://example.org/x>`__' in rst
    assert rst.endswith('and the bench.\n')


def test_inline_markup_is_kept_apart_from_words_and_special_characters_escaped():
    rst = convert('`v=STSv1`s and **no** max_age *x* |y| a`b` done')
    assert rst == '``v=STSv1``\\ s and **no** max\\_age \\*x\\* \\|y\\| a\\ ``b`` done\n'


def test_a_code_span_may_cross_a_line_break_inside_a_list_item():
    rst = convert('- first `Content-Type:\n  text/plain` end\n- second\n')
    assert rst == '- first ``Content-Type:\n  text/plain`` end\n- second\n'


def test_nested_lists_get_the_blank_lines_restructuredtext_needs():
    rst = convert('Intro:\n- a\n  - a1\n    more\n  - a2\n- b\n\n1. one\n   two\n2. three\n')
    assert rst == 'Intro:\n\n- a\n\n  - a1\n    more\n  - a2\n\n- b\n\n1. one\n   two\n2. three\n'


def test_fenced_code_and_pipe_tables():
    rst = convert('```python\nx = 1\n\ny = 2\n```\n\n| step | value |\n|---|---|\n| id | `abc` |\n')
    assert rst == ('.. code-block:: python\n\n   x = 1\n\n   y = 2\n\n'
                   '.. list-table::\n   :header-rows: 1\n\n   * - step\n     - value\n   * - id\n     - ``abc``\n')


def test_every_reference_of_the_site_pages_names_a_label_they_define():
    labels, references = set(), set()
    for page in docsite.PAGES.values():
        with open(docsite.rst_path(page), encoding='utf-8') as rst:
            text = rst.read()
        labels.update(re.findall(r'^\.\. _([^:]+):$', text, re.M))
        references.update(re.findall(r':ref:`[^`<]*<([^>]+)>`', text))
    assert labels and references
    assert references <= labels


def test_the_site_lists_every_page_and_the_committed_pages_are_current():
    with open(os.path.join(REPO, 'docs', 'docsite', 'extra-docs.yml')) as index:
        listed = {entry['ref'] for section in yaml.safe_load(index)['sections'] for entry in section['toctree']}
    assert listed == set(docsite.PAGES.values())
    check = subprocess.run([sys.executable, SCRIPT, '--check'], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
