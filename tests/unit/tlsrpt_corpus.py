"""The TLS-RPT report corpus (tests/unit/data/tlsrpt/) and the wrappers senders put around reports.

The shipped JSON files are the shapes real senders send (SPEC.md §6):

- ``rfc8460-example``: RFC 8460 Appendix B, as published, except that its
  ``additional-information`` value, which the RFC wraps over two lines inside
  the string (a raw line break is not valid JSON), is joined into one line.
  The odd spaces in that value and the ``failure-error-code`` key (the schema
  in §4.4 says ``failure-reason-code``) are the RFC's own and are kept.
- ``google-sts`` (compact, ``mx-host`` a list) and ``microsoft-sts`` (``mx-host``
  a string, ``failure-error-code``): two organisations, same day, same domain.
- ``tlsa-dane`` (a DANE policy, dates with a +02:00 offset, an unknown top-level
  key), ``no-policy-found``, ``mx-host-string`` (fractional seconds, ``*.example.net``),
  ``failure-error-code`` (the alias alone, and beside ``failure-reason-code``),
  ``minimal`` (only the required fields) and ``many-failures`` (200 failure details).
- ``bad/``: one malformed report per rule the parser enforces, each the
  ``minimal`` report with one change (``not-utf8.bin`` has a Latin-1 byte).

Everything else (gzip, mail messages, the gzip bomb) is built at test time.
"""

import gzip as gzip_module
import json
import os
import re
import zlib
from datetime import datetime
from email import encoders
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

CORPUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'tlsrpt')
BAD_DIR = os.path.join(CORPUS_DIR, 'bad')

NAMES = (
    'rfc8460-example', 'google-sts', 'microsoft-sts', 'tlsa-dane', 'no-policy-found',
    'mx-host-string', 'failure-error-code', 'minimal', 'many-failures',
)


def report_file(name):
    """The path of a shipped report: ``name`` without ``.json``, or ``bad/<file>`` with its extension."""
    if name.startswith('bad/'):
        return os.path.join(CORPUS_DIR, name)
    return os.path.join(CORPUS_DIR, name + '.json')


def raw(name):
    """The bytes of a shipped report file, as a sender sent them."""
    with open(report_file(name), 'rb') as handle:
        return handle.read()


def report(name):
    """A shipped report as the dict ``json.loads`` makes of it (RFC 8460 key names)."""
    return json.loads(raw(name))


def _as_bytes(obj_or_bytes):
    if isinstance(obj_or_bytes, bytes):
        return obj_or_bytes
    if isinstance(obj_or_bytes, str):
        return obj_or_bytes.encode('utf-8')
    return json.dumps(obj_or_bytes).encode('utf-8')


def gzip_bytes(obj_or_bytes):
    """gzip of a report (a dict is dumped as JSON first); mtime 0 so the bytes are the same every run."""
    return gzip_module.compress(_as_bytes(obj_or_bytes), mtime=0)


def _epoch(rfc3339):
    return int(datetime.fromisoformat(rfc3339.replace('Z', '+00:00')).timestamp())


def mime_message(report_bytes_list, gzip=True, subject=None, submitter=None, policy_domain=None,
                 report_id=None, sender='tlsrpt-noreply@{submitter}', to='tlsrpt@{domain}'):
    """An RFC 8460 §5.3 report mail carrying the given reports (bytes, str or dicts), as bytes.

    ``multipart/report; report-type="tlsrpt"`` with a text part and one
    ``application/tlsrpt+gzip`` (``gzip=True``, base64) or ``application/tlsrpt+json``
    attachment per report, named as §5.1 recommends; the required
    ``TLS-Report-Domain`` and ``TLS-Report-Submitter`` headers and the Subject
    ``Report Domain: <domain> Submitter: <submitter> Report-ID: <<id>>``. Domain,
    submitter and report id default to what the first report says.
    """
    documents = [_as_bytes(item) for item in report_bytes_list]
    first = json.loads(documents[0]) if documents else {}
    policies = first.get('policies') or [{}]
    domain = policy_domain or policies[0].get('policy', {}).get('policy-domain', 'example.com')
    contact = first.get('contact-info') or 'tlsrpt@sender.example'
    submitter = submitter or contact.rpartition('@')[2]
    report_id = report_id or first.get('report-id', 'report')
    token = re.sub(r'[^A-Za-z0-9.+-]', '.', report_id)
    # Fixed boundary and Message-ID: the same reports make the same bytes (a duplicate delivery).
    message = MIMEMultipart('report', boundary='----=_tlsrpt_' + token, report_type='tlsrpt')
    message['From'] = sender.format(submitter=submitter, domain=domain)
    message['To'] = to.format(submitter=submitter, domain=domain)
    try:
        sent = _epoch(first['date-range']['end-datetime']) + 3600
    except (KeyError, TypeError, ValueError):
        sent = 0
    message['Date'] = formatdate(sent, usegmt=True)
    message['Message-ID'] = '<%s@%s>' % (token, submitter)
    message['Subject'] = subject or 'Report Domain: %s Submitter: %s Report-ID: <%s>' % (domain, submitter, report_id)
    message['TLS-Report-Domain'] = domain
    message['TLS-Report-Submitter'] = submitter
    message.attach(MIMEText('This is an aggregate TLS report from %s\n' % submitter, 'plain', 'us-ascii'))
    for index, document in enumerate(documents):
        try:
            parsed = json.loads(document)
            dates = parsed['date-range']
            stem = '%s!%s!%d!%d' % (submitter, domain, _epoch(dates['start-datetime']), _epoch(dates['end-datetime']))
        except (ValueError, KeyError, TypeError):
            stem = '%s!%s!0!0!%d' % (submitter, domain, index)   # a malformed report still travels
        if gzip:
            part = MIMEApplication(gzip_bytes(document), 'tlsrpt+gzip')
            filename = stem + '.json.gz'
        else:
            # 8bit as RFC 8460's own example, unless a line is past SMTP's 998 octets.
            long_lines = any(len(line) > 998 for line in document.splitlines())
            encoder = encoders.encode_base64 if long_lines else encoders.encode_7or8bit
            part = MIMEApplication(document, 'tlsrpt+json', _encoder=encoder)
            filename = stem + '.json'
        part.add_header('Content-Disposition', 'attachment', filename=filename)
        message.attach(part)
    return message.as_bytes()


def gzip_bomb(size):
    """A valid gzip stream of ``size`` zero bytes, about 1/1000 of that, built without holding ``size`` bytes.

    Deflate after a full flush does not refer back, so one flushed megabyte of
    zeros compresses to the same bytes each time: compress it once, repeat it.
    """
    chunk_size = 1024 * 1024
    zeros = bytes(chunk_size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(size, chunk_size)
    if full < 2:
        return gzip_module.compress(bytes(size), mtime=0)
    crc = 0
    for _chunk in range(full):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    tail = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # The final empty stored block and the trailer (CRC-32, size mod 2**32) written by hand.
    end = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    last = end.flush()
    trailer = crc.to_bytes(4, 'little') + (size & 0xFFFFFFFF).to_bytes(4, 'little')
    return head + body * (full - 1) + tail + last + trailer
