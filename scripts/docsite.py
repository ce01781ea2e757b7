"""Write the antsibull-docs site pages (docs/docsite/rst/*.rst) from the Markdown pages under docs/.

docs/*.md stay the pages people edit and read in a checkout; the collection's generated docs site takes
reStructuredText only, so the pages listed in PAGES are converted here, and `--check` (in `make test`)
fails when a committed .rst no longer matches its Markdown. Only the Markdown these pages use is
understood: headings, paragraphs, nested `-` and numbered lists, fenced code, pipe tables, inline code,
bold, and links (to a heading on the page, to another converted page, or to a URL).

    python3 scripts/docsite.py            rewrite the .rst files (make docsite)
    python3 scripts/docsite.py --check    exit 1, naming the stale files, if any differs
"""

import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Markdown page under docs/ -> page name in the docs site (docs/docsite/rst/<name>.rst, extra-docs.yml)
PAGES = {'findings.md': 'findings', 'policy-id.md': 'policy-id'}
# antsibull-docs requires every label of a collection's extra docs to start with this.
LABEL_PREFIX = 'ansible_collections.mailsec.mta_sts.docsite.'
HEADING_UNDERLINES = {1: '=', 2: '=', 3: '-', 4: '~', 5: '^'}

FENCE = re.compile(r'^```\s*(\S*)\s*$')
HEADING = re.compile(r'^(#{1,5})\s+(.*?)\s*#*\s*$')
LIST_ITEM = re.compile(r'^(\s*)([-*]|\d+\.)\s+(.*)$')
TABLE_ROW = re.compile(r'^\s*\|.*\|\s*$')
TABLE_RULE = re.compile(r'^\s*\|(\s*:?-+:?\s*\|)+\s*$')
# Inline spans, tried in this order at each position.
INLINE = re.compile(r'(?P<code>`+)(?P<code_text>.+?)(?P=code)'
                    r'|\*\*(?P<bold>.+?)\*\*'
                    r'|\[(?P<link_text>[^\]]+)\]\((?P<target>[^)\s]+)\)', re.S)
# Characters reStructuredText gives a meaning to in running text.
RST_SPECIAL = re.compile(r'([\\*`|_])')


def slug(title):
    """The anchor a Markdown renderer gives a heading (GitHub's rule), so the pages' #links keep working."""
    text = re.sub(r'[^\w\- ]', '', title.replace('`', '').lower())
    return text.replace(' ', '-')


def label(page, anchor=None):
    return LABEL_PREFIX + page + ('.' + anchor if anchor else '')


class Converter:
    def __init__(self, page):
        self.page = page

    def link(self, text, target):
        if re.match(r'[a-z]+:', target):
            return '`%s <%s>`__' % (text, target)
        path, anchor = (target.split('#', 1) + [''])[:2]
        page = PAGES.get(os.path.basename(path), self.page if not path else None)
        if page is None:   # a file of the checkout that the docs site does not have
            return RST_SPECIAL.sub(r'\\\1', text)
        return ':ref:`%s <%s>`' % (text.replace('`', ''), label(page, anchor or None))

    def inline(self, text):
        out = []
        position = 0
        for match in INLINE.finditer(text):
            out.append(RST_SPECIAL.sub(r'\\\1', text[position:match.start()]))
            if match.group('code'):
                span = '``%s``' % match.group('code_text').strip()
            elif match.group('bold'):
                span = '**%s**' % match.group('bold')
            else:
                span = self.link(match.group('link_text'), match.group('target'))
            # Inline markup must stand apart from word characters around it; "\ " is an empty separator.
            if match.start() > 0 and text[match.start() - 1].isalnum():
                span = '\\ ' + span
            if match.end() < len(text) and text[match.end()].isalnum():
                span += '\\ '
            out.append(span)
            position = match.end()
        out.append(RST_SPECIAL.sub(r'\\\1', text[position:]))
        return ''.join(out)

    def heading(self, level, title):
        text = self.inline(title)
        rule = HEADING_UNDERLINES[level] * max(len(text), 3)
        anchor = label(self.page) if level == 1 else label(self.page, slug(title))
        lines = ['.. _%s:' % anchor, '']
        if level == 1:
            lines.append(rule)
        return lines + [text, rule, '']

    def table(self, rows):
        cells = [[cell.strip() for cell in row.strip().strip('|').split('|')] for row in rows]
        header, body = cells[0], [row for row, line in zip(cells[1:], rows[1:]) if not TABLE_RULE.match(line)]
        lines = ['.. list-table::', '   :header-rows: 1', '']
        for row in [header] + body:
            for index, cell in enumerate(row):
                lines.append(('   * - ' if index == 0 else '     - ') + (self.inline(cell) or '\\ '))
        return lines + ['']

    def convert(self, markdown):
        lines = markdown.splitlines()
        out = []
        list_indents = []   # the marker columns of the open (nested) list items
        index = 0

        def blank():
            if out and out[-1] != '':
                out.append('')

        while index < len(lines):
            line = lines[index]
            fence = FENCE.match(line)
            heading = HEADING.match(line)
            item = LIST_ITEM.match(line)
            if not line.strip():
                blank()   # kept: it may end one list before another begins
                index += 1
                continue
            if fence:
                blank()
                out += ['.. code-block:: %s' % (fence.group(1) or 'text'), '']
                index += 1
                while index < len(lines) and not FENCE.match(lines[index]):
                    out.append(('   ' + lines[index]).rstrip())
                    index += 1
                index += 1
                out.append('')
                list_indents = []
            elif heading:
                blank()
                out += self.heading(len(heading.group(1)), heading.group(2))
                index += 1
                list_indents = []
            elif TABLE_ROW.match(line):
                blank()
                rows = []
                while index < len(lines) and TABLE_ROW.match(lines[index]):
                    rows.append(lines[index])
                    index += 1
                out += self.table(rows)
                list_indents = []
            else:
                # A paragraph or one list item, with its continuation lines.
                indent = len(item.group(1)) if item else len(line) - len(line.lstrip())
                marker = (item.group(2) + ' ') if item else ''
                if item:
                    depth_changed = not list_indents or list_indents[-1] != indent
                    while list_indents and list_indents[-1] > indent:
                        list_indents.pop()
                    if not list_indents or list_indents[-1] != indent:
                        list_indents.append(indent)
                    if depth_changed:
                        blank()   # reStructuredText needs a blank line where a list or a nested list starts
                else:
                    blank()
                    list_indents = [i for i in list_indents if i < indent]
                text = [item.group(3) if item else line.strip()]
                index += 1
                while index < len(lines) and lines[index].strip() and not (
                        LIST_ITEM.match(lines[index]) or FENCE.match(lines[index]) or HEADING.match(lines[index])
                        or TABLE_ROW.match(lines[index])):
                    text.append(lines[index].strip())
                    index += 1
                converted = self.inline('\n'.join(text)).split('\n')
                lead = ' ' * indent
                out.append(lead + marker + converted[0])
                out += [lead + ' ' * len(marker) + rest for rest in converted[1:]]
                if not item:
                    out.append('')
        while out and out[-1] == '':
            out.pop()
        return '\n'.join(out) + '\n'


def rst_path(page):
    return os.path.join(REPO, 'docs', 'docsite', 'rst', page + '.rst')


def render(source):
    with open(os.path.join(REPO, 'docs', source), encoding='utf-8') as markdown:
        text = markdown.read()
    header = '..\n   Written by scripts/docsite.py from docs/%s: edit that file, then run make docsite.\n\n' % source
    return header + Converter(PAGES[source]).convert(text)


def main(argv):
    check = argv[1:] == ['--check']
    stale = []
    for source, page in sorted(PAGES.items()):
        wanted = render(source)
        path = rst_path(page)
        current = open(path, encoding='utf-8').read() if os.path.exists(path) else None
        if current == wanted:
            continue
        stale.append(os.path.relpath(path, REPO))
        if not check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w', encoding='utf-8') as rst:
                rst.write(wanted)
    if check and stale:
        sys.stderr.write('docsite: %s out of date with docs/*.md; run make docsite\n' % ', '.join(stale))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
