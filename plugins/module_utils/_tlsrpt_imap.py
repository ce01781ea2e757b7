# -*- coding: utf-8 -*-
# Copyright (c) mailsec.mta_sts contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The IMAP edge of the TLS-RPT report reader: report mails from a mailbox over TLS (RFC 8460 §5.3).

``read_mailbox`` logs in, selects the mailbox and hands out the messages not handled before, one at a
time; its ``finish`` then moves what was read to ``move_to``, or records the UIDs in ``state_file``.
Nothing changes on the server or on disk before ``finish``, so a run that fails part way leaves every
message where it was and the state file as it was, and the next run reads them again.

The password never leaves this file: every error is worded here, and server text is scrubbed of it
(imaplib puts the server's words in its exceptions, and a server may echo what it was sent).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import imaplib
import json
import os
import re
import socket
import ssl

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._files import read_text, replace_file
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt_sources import ReportError, file_limit

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover - Python 2 is not supported, the import only has to parse
    from urllib import quote

STATE_FILE_MODE = 0o644

# RFC 3501 atom-specials and the list wildcards: a name with any of these is sent as a quoted string.
_NEEDS_QUOTES = re.compile(r'[\x00-\x20(){%*"\\\]\x7f]')
_FETCH_UID = re.compile(br'\bUID (\d+)')


class ImapError(Exception):
    """The mailbox could not be read or changed. The message names the server and never the password.

    ``changed``: something had been changed before the failure (a folder created, messages copied).
    """

    def __init__(self, message, changed=False):
        super(ImapError, self).__init__(message)
        self.changed = changed


# -- pure helpers ----------------------------------------------------------------------------------------

def check_options(options):
    """Refuse bad ``imap`` options before connecting: ValidationError naming the field and the rule."""
    if not 0 < options['port'] < 65536:
        raise ValidationError('imap.port', options['port'], 'must be a TCP port, 1 to 65535')
    if options['timeout'] <= 0:
        raise ValidationError('imap.timeout', options['timeout'], 'must be a positive number of seconds')
    for field in ('host', 'username', 'mailbox', 'move_to'):
        value = options.get(field)
        if value is None:
            continue
        if not value or value != value.strip():
            raise ValidationError('imap.' + field, value, 'must not be empty or start or end with spaces')
        if field in ('mailbox', 'move_to') and not _is_ascii(value):
            raise ValidationError('imap.' + field, value, 'mailbox names must be ASCII (modified UTF-7 is not '
                                  'supported)')
    if options.get('move_to') is not None:
        if options.get('state_file'):
            raise ValidationError('imap.state_file', options['state_file'],
                                  'cannot be used with imap.move_to: moved messages are not read again anyway')
        if options['move_to'] == options['mailbox']:
            raise ValidationError('imap.move_to', options['move_to'], 'must be another mailbox than imap.mailbox')


def _is_ascii(text):
    try:
        text.encode('ascii')
    except UnicodeError:
        return False
    return True


def mailbox_argument(name):
    """A mailbox name as an IMAP command argument: an atom, or a quoted string (imaplib sends arguments as given)."""
    if name and not _NEEDS_QUOTES.search(name):
        return name
    return '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"')


def mailbox_url(options, uidvalidity=None):
    """The mailbox as an RFC 5092 IMAP URL (``imap://user@host:port/INBOX;UIDVALIDITY=n``), never the password."""
    host = options['host']
    if ':' in host:
        host = '[%s]' % host
    url = 'imap://%s@%s:%d/%s' % (quote(options['username'], safe=''), host, options['port'],
                                  quote(options['mailbox'], safe='/'))
    if uidvalidity is not None:
        url += ';UIDVALIDITY=%d' % uidvalidity
    return url


def message_url(base_url, uid):
    """One message of the mailbox at ``base_url`` (RFC 5092 ``/;UID=n``)."""
    return '%s/;UID=%d' % (base_url, uid)


def uid_set(uids):
    """Sorted UIDs as an IMAP sequence set with ranges: [1, 2, 3, 7] -> '1:3,7'."""
    ranges = []
    for uid in sorted(uids):
        if ranges and ranges[-1][1] == uid - 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ','.join(str(a) if a == b else '%d:%d' % (a, b) for a, b in ranges)


def parse_state(text, path):
    """The recorded state from the state file's text: {'mailbox', 'uidvalidity', 'uids'} (None: no file yet)."""
    if text is None:
        return None
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise ValidationError('imap.state_file', path, 'is not JSON (%s); remove it to start afresh' % exc)
    if (not isinstance(state, dict) or not _is_count(state.get('uidvalidity'))
            or not isinstance(state.get('uids'), list) or not all(_is_count(uid) for uid in state['uids'])
            or not isinstance(state.get('mailbox'), str)):
        raise ValidationError('imap.state_file', path, 'is not a state file of this module ({"mailbox": url, '
                              '"uidvalidity": n, "uids": [n, ...]}); remove it to start afresh')
    return state


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def recorded_uids(state, mailbox, uidvalidity):
    """The UIDs already read: none when there is no state, or it is about another mailbox or UIDVALIDITY
    (a new UIDVALIDITY means the server renumbered the messages, RFC 3501 §2.3.1.1)."""
    if state is None or state['mailbox'] != mailbox or state['uidvalidity'] != uidvalidity:
        return set()
    return set(state['uids'])


def state_text(mailbox, uidvalidity, uids):
    return json.dumps({'mailbox': mailbox, 'uidvalidity': uidvalidity, 'uids': sorted(uids)}, indent=1) + '\n'


def scrub(text, secret):
    """``text`` with every occurrence of ``secret`` masked."""
    if secret:
        text = text.replace(secret, '********')
    return text


# -- the server ------------------------------------------------------------------------------------------

class _IMAP4TLS(imaplib.IMAP4_SSL):
    """IMAP4_SSL with a socket timeout on Python 3.8 too (its ``timeout`` argument came in 3.9)."""

    def __init__(self, host, port, ssl_context, timeout):
        self._socket_timeout = timeout
        imaplib.IMAP4_SSL.__init__(self, host, port, ssl_context=ssl_context)

    def _create_socket(self, timeout=None):  # pylint: disable=unused-argument
        sock = socket.create_connection((self.host, self.port), self._socket_timeout)
        try:
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _ssl_context(options):
    if not options['validate_certs']:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        try:
            context = ssl.create_default_context(cafile=options.get('ca_file'))
        except (IOError, OSError, ssl.SSLError) as exc:
            raise ValidationError('imap.ca_file', options.get('ca_file'),
                                  'cannot be read as PEM certificates (%s)' % (getattr(exc, 'strerror', None) or exc))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class MailboxReader(object):
    """One run over one mailbox: ``messages()`` then ``finish()`` (see ``read_mailbox``)."""

    def __init__(self, options, max_bytes, check_mode):
        check_options(options)
        self.options = options
        self.check_mode = check_mode
        self.limit = file_limit('message', max_bytes)
        self.password = options['password']
        self.where = '%s:%d' % (options['host'], options['port'])
        self.conn = None
        self.uidvalidity = None
        self.url = None
        self.present = []
        self.recorded = set()
        self.state_before = None   # the state file's text, None when there is none
        self.state = None          # ... parsed
        self.examined = []
        self.changed = False       # something on the server was changed already

    # Errors -----------------------------------------------------------------------------------------------

    def _fail(self, what, detail):
        raise ImapError(scrub('IMAP %s %s: %s' % (self.where, what, detail), self.password), self.changed)

    @staticmethod
    def _words(data):
        """The server's text from an imaplib response or exception, or the system's words for a socket error."""
        if isinstance(data, (IOError, OSError)):
            # OSError's args start with the errno; ssl.SSLError and socket.timeout are OSErrors too.
            data = data.strerror or str(data)
        elif isinstance(data, Exception):
            data = data.args[0] if data.args else ''
        if isinstance(data, list):
            data = b' '.join(item for item in data if isinstance(item, bytes))
        if isinstance(data, bytes):
            data = data.decode('utf-8', 'replace')
        return str(data).strip() or '(no text)'

    def _command(self, what, method, *args, **kwargs):
        """Run an imaplib command; ImapError (scrubbed) unless the server says OK."""
        try:
            typ, data = method(*args, **kwargs)
        except (imaplib.IMAP4.error, socket.error, ssl.SSLError) as exc:
            self._fail(what, 'failed: %s' % self._words(exc))
        if typ != 'OK':
            self._fail(what, 'refused by the server: %s' % self._words(data))
        return data

    # Connecting -------------------------------------------------------------------------------------------

    def open(self):
        options = self.options
        path = options.get('state_file')
        if path:
            if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise ValidationError('imap.state_file', path, 'its directory does not exist')
            try:
                self.state_before = read_text(path)
            except (IOError, OSError) as exc:
                raise ValidationError('imap.state_file', path, 'cannot be read: %s' % (exc.strerror or exc))
            self.state = parse_state(self.state_before, path)
        context = _ssl_context(options)
        try:
            self.conn = _IMAP4TLS(options['host'], options['port'], context, options['timeout'])
        except ssl.SSLCertVerificationError as exc:
            self._fail('TLS', 'the server certificate is not valid: %s (imap.ca_file, imap.validate_certs)'
                       % exc.verify_message)
        except ssl.SSLError as exc:
            self._fail('TLS', 'handshake failed: %s' % (exc.reason or exc))
        except socket.timeout:
            self._fail('connect', 'no answer within %d seconds (imap.timeout)' % options['timeout'])
        except (socket.error, imaplib.IMAP4.error) as exc:
            self._fail('connect', 'failed: %s' % self._words(exc))
        self._login()
        self._select()
        self.url = mailbox_url(options, self.uidvalidity)
        self.recorded = recorded_uids(self.state, mailbox_url(options), self.uidvalidity)
        return self

    def _login(self):
        username, password = self.options['username'], self.password
        try:
            if _is_ascii(password) and _is_ascii(username):
                typ, data = self.conn.login(username, password)
            else:
                # LOGIN is ASCII only; SASL PLAIN carries UTF-8 (RFC 4616).
                plain = b'\0' + username.encode('utf-8') + b'\0' + password.encode('utf-8')
                typ, data = self.conn.authenticate('PLAIN', lambda _challenge: plain)
        except (imaplib.IMAP4.error, socket.error, ssl.SSLError) as exc:
            self._fail('login', 'as %s refused: %s (imap.username, imap.password)'
                       % (username, self._words(exc)))
        if typ != 'OK':
            self._fail('login', 'as %s refused: %s' % (username, self._words(data)))

    def _select(self):
        mailbox = self.options['mailbox']
        # EXAMINE (read-only) unless messages are to be moved, so nothing here can change the mailbox.
        readonly = self.check_mode or not self.options.get('move_to')
        try:
            typ, data = self.conn.select(mailbox_argument(mailbox), readonly=readonly)
        except (imaplib.IMAP4.error, socket.error, ssl.SSLError) as exc:
            typ, data = 'NO', exc
        if typ != 'OK':
            self._fail('mailbox', '%s cannot be opened (imap.mailbox): %s' % (mailbox, self._words(data)))
        _name, values = self.conn.response('UIDVALIDITY')
        try:
            self.uidvalidity = int(values[0])
        except (TypeError, ValueError, IndexError):
            self._fail('mailbox', '%s: the server gave no UIDVALIDITY' % mailbox)
        found = self._command('UID SEARCH', self.conn.uid, 'SEARCH', 'ALL')
        self.present = sorted(int(uid) for uid in b' '.join(found).split())

    # Reading ----------------------------------------------------------------------------------------------

    def messages(self):
        """Yield ``(source, message bytes | ReportError)`` for each message not read before, by UID.

        A message larger than the size limit is not downloaded past it: it yields a ReportError.
        """
        for uid in self.present:
            if uid in self.recorded:
                continue
            # BODY.PEEK leaves \\Seen alone; the partial fetch stops at the limit, so one byte more than
            # the limit says the message is too large without receiving all of it.
            data = self._command('FETCH', self.conn.uid, 'FETCH', str(uid), '(BODY.PEEK[]<0.%d>)' % (self.limit + 1))
            body = self._body(data, uid)
            if body is None:
                continue   # expunged by another client meanwhile
            self.examined.append(uid)
            source = message_url(self.url, uid)
            if len(body) > self.limit:
                yield source, ReportError('the message has more than %d bytes, more than a mail with reports of '
                                          'max_report_size may have' % self.limit)
            else:
                yield source, body

    @staticmethod
    def _body(data, uid):
        for item in data:
            if isinstance(item, tuple):
                match = _FETCH_UID.search(item[0])
                if match and int(match.group(1)) == uid:
                    return item[1]
        return None

    # Finishing --------------------------------------------------------------------------------------------

    def finish(self):
        """Move or record what ``messages()`` handed out, log out; return the stats (see ``read_mailbox``).

        In check mode nothing is moved, created or written; the stats and diff say what would be.
        """
        options = self.options
        move_to = options.get('move_to')
        stats = {
            'mailbox': self.url, 'uidvalidity': self.uidvalidity, 'messages': len(self.present),
            'new': len(self.examined), 'skipped': len(self.present) - len(self.examined),
            'moved': 0, 'recorded': 0, 'move_to': move_to, 'created_folder': False,
            'state_file': options.get('state_file'), 'state_reset': False, 'changed': False,
        }
        diff = {}
        if move_to and self.examined:
            stats['created_folder'] = self._move(move_to)
            stats['moved'] = len(self.examined)
            diff = {'before_header': options['mailbox'], 'after_header': move_to,
                    'prepared': ''.join('move %s to %s\n' % (message_url(self.url, uid), move_to)
                                        for uid in self.examined)}
        elif options.get('state_file'):
            diff = self._record()
            stats['recorded'] = len(self.examined)
            # The recorded UIDs were dropped: they were about another mailbox, or the server renumbered it.
            stats['state_reset'] = self.state is not None and (
                (self.state['mailbox'], self.state['uidvalidity']) != (mailbox_url(options), self.uidvalidity))
        stats['changed'] = bool(stats['moved'] or stats['created_folder'] or diff.get('before') != diff.get('after'))
        stats['diff'] = diff
        self.close()
        return stats

    def _move(self, folder):
        """Move the examined messages to ``folder``, creating it first; whether it was created."""
        listed = self._command('LIST', self.conn.list, '""', mailbox_argument(folder))
        created = not any(item for item in listed if item)
        if self.check_mode:
            return created
        if created:
            self._command('CREATE %s (imap.move_to)' % folder, self.conn.create, mailbox_argument(folder))
            self.changed = True
        uids = uid_set(self.examined)
        capabilities = self._capabilities()
        if 'MOVE' in capabilities:
            self._command('MOVE to %s' % folder, self.conn.uid, 'MOVE', uids, mailbox_argument(folder))
            return created
        # RFC 6851 §3.3: without MOVE, the same in three steps.
        self._command('COPY to %s' % folder, self.conn.uid, 'COPY', uids, mailbox_argument(folder))
        self.changed = True
        self._command('STORE \\Deleted', self.conn.uid, 'STORE', uids, '+FLAGS.SILENT', '(\\Deleted)')
        if 'UIDPLUS' in capabilities:
            self._command('UID EXPUNGE', self.conn.uid, 'EXPUNGE', uids)
        else:
            # Also expunges messages that another client marked \Deleted: there is no narrower way.
            self._command('EXPUNGE', self.conn.expunge)
        return created

    def _capabilities(self):
        # Asked again after login: servers announce more (MOVE, UIDPLUS) to a logged-in client.
        data = self._command('CAPABILITY', self.conn.capability)
        return set(b' '.join(item for item in data if item).decode('ascii', 'replace').upper().split())

    def _record(self):
        """Write the UIDs read into the state file (unless it would stay the same); the diff."""
        path = self.options['state_file']
        # UIDs of messages that are gone are forgotten, so the file stays as large as the mailbox.
        uids = (self.recorded & set(self.present)) | set(self.examined)
        after = state_text(mailbox_url(self.options), self.uidvalidity, uids)
        if after != self.state_before and not self.check_mode:
            try:
                # An existing file keeps its mode and owner.
                mode = None if self.state_before is not None else STATE_FILE_MODE
                replace_file(path, after.encode('utf-8'), mode=mode)
            except (IOError, OSError) as exc:
                raise ValidationError('imap.state_file', path, 'cannot be written: %s' % (exc.strerror or exc))
        return {'before_header': path, 'after_header': path, 'before': self.state_before or '', 'after': after}

    def close(self):
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.logout()
            except (imaplib.IMAP4.error, socket.error, ssl.SSLError):
                pass


def read_mailbox(options, max_bytes, check_mode):
    """Connect, log in and select now; return ``(messages, finish)``.

    ``options``: the module's ``imap`` option (its sub-options are in the module's ARGUMENT_SPEC). ``messages``: an iterator of
    ``(source, message bytes | ReportError)``, ``source`` an RFC 5092 URL
    (``imap://user@host:993/INBOX;UIDVALIDITY=n/;UID=u``). ``finish()``, called once the messages have
    been consumed and the run has gone well, moves (``move_to``) or records (``state_file``) them and
    returns the stats for the module's ``imap`` result: ``mailbox`` (its URL), ``uidvalidity``, ``messages``
    (in the mailbox), ``new`` (read this run), ``skipped`` (read in an earlier run), ``moved``, ``recorded``,
    ``move_to``, ``created_folder``, ``state_file``, ``state_reset``, ``changed``, and ``diff`` (a
    ``before``/``after`` pair for diff mode, {} when there is nothing to show; the module takes it out).
    Raises ImapError (connection, TLS, login, mailbox, a command refused) or ValidationError (options, the
    state file); neither ever contains the password.
    """
    reader = MailboxReader(options, max_bytes, check_mode)
    try:
        reader.open()
    except BaseException:
        reader.close()
        raise
    return reader.messages(), reader.finish
