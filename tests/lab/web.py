"""A real nginx serving MTA-STS policy hosts, well-behaved and hostile.

``PolicyWeb`` runs one ``nginx`` (master plus one worker, ``daemon off``) as
a child process, with every file it reads or writes under one work
directory: ``nginx.conf``, ``nginx.pid``, ``error.log``, ``access.log``
(one JSON object per request), ``bodies/``, ``certs/``, ``tmp/`` and
``run/`` (unix sockets of the internal helper servers).  It listens on
``address:port`` (default ``127.0.0.1:443``) only, and picks the virtual
host by SNI (certificate) and Host (content), as a policy host does.

Each host gets one behaviour for ``/.well-known/mta-sts.txt`` (every other
path is 404) and one certificate; see ``serve``, ``redirect``, ``status``,
``big``, ``stall`` and ``cert``.  Call ``apply()`` after changing hosts: it
writes the configuration and (re)starts nginx, returning once the new
nginx answers.  A client without SNI, or with a name no host has, gets a
TLS ``unrecognized_name`` alert (``ssl_reject_handshake``).

nginx 1.22 facts this module is built around (seen on Debian 12):

* ``ssl_protocols``/``ssl_ciphers`` are taken from the *default server of
  the listening address*, not from the server picked by SNI, so a host
  with other TLS versions (``cert(..., tls_max='TLSv1.1')``) needs an
  address of its own (``cert(..., address=...)``).
* The default ``ssl_protocols`` of nginx 1.22 still include TLSv1 and
  TLSv1.1 but not TLSv1.3; this module sets TLSv1.2 and TLSv1.3 unless told
  otherwise.  TLSv1/TLSv1.1 handshakes need OpenSSL security level 0 on both
  sides (``ssl_ciphers DEFAULT:@SECLEVEL=0`` here; a Python client needs
  ``set_ciphers('DEFAULT:@SECLEVEL=0')`` and ``minimum_version``).
* nginx's TLS layer buffers output until 16 KiB or a flush, so "headers,
  then silence" cannot be made with a plain location; ``stall(mode='hang')``
  proxies (unbuffered, which flushes) to an internal plain-HTTP server on a
  unix socket, which sends the headers and then waits forever on a second
  internal server that waits for a request body that never comes.
"""

import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time

from ._service import ProcessServer
from .pki import LabCA, self_signed, write_pair

POLICY_PATH = '/.well-known/mta-sts.txt'
START_TIMEOUT = 10.0
CONTROL_HOST = 'lab-control.invalid'

CERT_KINDS = ('good', 'wrong_name', 'expired', 'expiring', 'not_yet_valid', 'untrusted',
              'self_signed', 'no_chain')
# How long an 'expiring' certificate has left: inside the validator's default warning window (14 days).
EXPIRING_DAYS = 3
TLS_VERSIONS = ('TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3')
DEFAULT_TLS = ('TLSv1.2', 'TLSv1.3')
STALL_MODES = ('trickle', 'hang', 'silent')
# How much of a trickled response (headers included) goes out at once.
TRICKLE_AFTER = 1024

_LABEL = r'[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?'
_HOST_RE = re.compile(rf'^{_LABEL}(\.{_LABEL})*$')


class WebError(RuntimeError):
    """nginx could not be configured, started or reached."""


# -- small helpers shared with the mail lab and the tests --------------------

def check_loopback(address):
    """Raise ValueError unless ``address`` is a loopback IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f'lab address must be an IP address, got {address!r}') from None
    if not ip.is_loopback:
        raise ValueError(f'lab address must be loopback, got {address!r}')
    return str(ip)


def address_is_free(address, port):
    """True if a TCP listener could bind ``address:port`` right now."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def free_loopback_addresses(count=1, port=443, exclude=()):
    """``count`` random addresses in 127.0.0.0/8 on which ``port`` is free.

    Lets test runs (and people working side by side) each have their own
    ``:443``/``:25`` without clashing; the address is what a test puts in
    its A records.  127.0.0.0/24 and 127.255.255.0/24 are left alone.
    """
    found = []
    for _attempt in range(count * 50):
        addr = '127.%d.%d.%d' % (secrets.randbelow(254) + 1, secrets.randbelow(256),
                                 secrets.randbelow(254) + 1)
        if addr in found or addr in exclude:
            continue
        if address_is_free(addr, port):
            found.append(addr)
            if len(found) == count:
                return found
    raise WebError(f'could not find {count} free loopback addresses for port {port}')


def check_host(host):
    host = host.rstrip('.').lower()
    if len(host) > 253 or not _HOST_RE.match(host):
        raise ValueError(f'not a host name: {host!r}')
    return host


def _quote(value, what):
    """A double-quoted nginx string; refuse what could break out of it (";" cannot: it is quoted)."""
    if any(c in value for c in '"\\\r\n\t\0{}') or '$' in value:
        raise ValueError(f'{what} must not contain quotes, backslashes, $, braces '
                         f'or control characters: {value!r}')
    return f'"{value}"'


def _check_content_type(content_type):
    if content_type is not None:
        _quote(content_type, 'content_type')


def default_policy(host, mode='enforce', max_age=86400):
    """A valid policy for the domain behind ``mta-sts.<domain>`` (CRLF lines)."""
    domain = host[len('mta-sts.'):] if host.startswith('mta-sts.') else host
    return (f'version: STSv1\r\nmode: {mode}\r\nmx: *.{domain}\r\n'
            f'max_age: {max_age}\r\n').encode('ascii')


def padded(head, size):
    """``head`` followed by extension lines (``padNNNNN: xxx...``, which a
    policy parser ignores) up to exactly ``size`` bytes."""
    if size < len(head):
        raise ValueError(f'size {size} is smaller than the head ({len(head)} bytes)')
    out = bytearray(head)
    n = 0
    while len(out) < size:
        room = size - len(out)
        line = b'pad%05d: ' % n
        if room <= len(line) + 3:
            out += b'x' * (room - 2) + b'\r\n' if room >= 2 else b'\n'
            break
        out += line + b'x' * min(1000, room - len(line) - 2) + b'\r\n'
        n += 1
    return bytes(out[:size])


def wrong_names(host):
    """The names a wrong-name certificate carries: the parent domain and its
    www (what a host serving the domain's web site would present)."""
    parent = host.split('.', 1)[1] if '.' in host else ''
    if '.' not in parent:
        return ['wrong-name.invalid']
    return [parent, 'www.' + parent]


def cert_pair(ca, kind, host, names=None, key_type='ec'):
    """``(cert_pem, key_pem)`` of ``kind`` for ``host`` (see ``CERT_KINDS``)."""
    if kind == 'wrong_name':
        return ca.issue(names or wrong_names(host), key_type=key_type)
    names = names or [host]
    if kind == 'good':
        return ca.issue(names, key_type=key_type)
    if kind == 'expired':
        return ca.issue_expired(names, key_type=key_type)
    if kind == 'expiring':
        return ca.issue_expiring(names, key_type=key_type, days_left=EXPIRING_DAYS)
    if kind == 'not_yet_valid':
        return ca.issue_not_yet_valid(names, key_type=key_type)
    if kind == 'untrusted':
        return ca.issue_untrusted(names, key_type=key_type)
    if kind == 'self_signed':
        return self_signed(names, key_type=key_type)
    if kind == 'no_chain':
        if ca.intermediate_cert is None:
            raise ValueError("kind 'no_chain' needs a LabCA with an intermediate")
        return ca.issue(names, key_type=key_type, chain=False)
    raise ValueError(f'certificate kind must be one of {CERT_KINDS}, got {kind!r}')


class _Host:
    def __init__(self, name):
        self.name = name
        self.behaviour = {'kind': 'status', 'code': 404, 'with_body': False,
                          'content_type': 'text/plain'}
        self.kind = 'good'
        self.names = None
        self.key_type = 'ec'
        self.tls = DEFAULT_TLS
        self.address = None
        self.pair = None            # cached (cert_pem, key_pem)
        self.body = None            # bytes served, if any


class PolicyWeb(ProcessServer):
    """One nginx on ``address:port`` serving any number of policy hosts.

    ``ca`` issues the certificates (a fresh ``LabCA`` if not given; see
    ``self.ca``).  Nothing listens until ``apply()``.
    """

    _error = WebError
    _start_timeout = START_TIMEOUT
    _no_log = '(no nginx error log)'

    def __init__(self, workdir, address='127.0.0.1', port=443, ca=None):
        super().__init__()
        self.workdir = os.path.abspath(workdir)
        self.address = check_loopback(address)
        self.port = int(port)
        self.ca = ca if ca is not None else LabCA()
        self._hosts = {}
        self._token = None
        self.stop_seconds = None

    # -- configuring hosts -------------------------------------------------

    def _host(self, host):
        host = check_host(host)
        if host == CONTROL_HOST:
            raise ValueError(f'{CONTROL_HOST} is reserved for the readiness probe')
        return self._hosts.setdefault(host, _Host(host))

    @property
    def hosts(self):
        return sorted(self._hosts)

    def remove(self, host):
        self._hosts.pop(check_host(host), None)

    def serve(self, host, body, content_type='text/plain', headers=None, chunked=False):
        """Answer 200 with exactly ``body`` (bytes, or str sent as UTF-8; CRLF
        kept) and ``Content-Type: content_type`` (None: no Content-Type).
        ``chunked=True`` sends it without Content-Length (chunked).
        ``headers``: extra response headers (dict)."""
        headers = {str(k): str(v) for k, v in (headers or {}).items()}
        for name, value in headers.items():
            if not re.match(r'^[A-Za-z0-9-]+$', name):
                raise ValueError(f'bad header name {name!r}')
            _quote(value, 'header value')
        _check_content_type(content_type)
        h = self._host(host)
        h.body = body.encode('utf-8') if isinstance(body, str) else bytes(body)
        h.behaviour = {'kind': 'serve', 'content_type': content_type, 'chunked': chunked,
                       'headers': headers}
        return self

    def redirect(self, host, location, code=301):
        """Answer ``code`` (301, 302, 303, 307, 308) with ``Location: location``
        exactly as given (``absolute_redirect off``)."""
        if code not in (301, 302, 303, 307, 308):
            raise ValueError(f'redirect code must be 301/302/303/307/308, got {code}')
        _quote(location, 'location')
        h = self._host(host)
        h.body = None
        h.behaviour = {'kind': 'redirect', 'code': code, 'location': location}
        return self

    def status(self, host, code, body=None, content_type='text/plain'):
        """Answer ``code``: without ``body`` nginx's own page (e.g. its HTML
        404/500 page); with ``body`` (only for 300-599) those exact bytes."""
        code = int(code)
        if not 200 <= code <= 599:
            raise ValueError(f'status code must be 200-599, got {code}')
        if body is not None and not 300 <= code <= 599:
            if code == 200:
                return self.serve(host, body, content_type)
            raise ValueError('a status with a body must be 300-599 (200: use serve)')
        _check_content_type(content_type)
        h = self._host(host)
        h.body = None if body is None else (body.encode('utf-8') if isinstance(body, str)
                                            else bytes(body))
        h.behaviour = {'kind': 'status', 'code': code, 'with_body': h.body is not None,
                       'content_type': content_type}
        return self

    def big(self, host, size, head=None, content_type='text/plain', chunked=False):
        """Answer 200 with a body of exactly ``size`` bytes: ``head`` (default:
        a valid policy for the host's domain) padded with extension lines.
        ``chunked=True``: no Content-Length, so only counting bytes tells."""
        _check_content_type(content_type)
        h = self._host(host)
        h.body = padded(default_policy(h.name) if head is None else head, int(size))
        h.behaviour = {'kind': 'serve', 'content_type': content_type, 'chunked': chunked,
                       'headers': {}}
        return self

    def stall(self, host, mode='trickle', body=None, rate=1, size=8192,
              content_type='text/plain'):
        """A host that never finishes its answer in useful time.

        ``trickle`` (default): status line, headers and the first bytes of the
        body (``TRICKLE_AFTER`` = 1 KiB of response in all) go out at once,
        then ``rate`` bytes per second (nginx ``limit_rate``); the body is
        ``body`` or a valid policy padded to ``size`` bytes, so 1 B/s takes
        hours.  A client with only a per-read timeout never times out here;
        one with an overall deadline does.
        ``hang``: status line and headers (chunked, no body bytes), then
        nothing; the connection stays open.
        ``silent``: the TLS handshake completes, the request is read, and no
        byte of a response is ever sent.
        """
        if mode not in STALL_MODES:
            raise ValueError(f'stall mode must be one of {STALL_MODES}, got {mode!r}')
        rate = int(rate)
        if rate < 1:
            raise ValueError('rate must be at least 1 byte per second')
        _check_content_type(content_type)
        h = self._host(host)
        if body is None:
            body = padded(default_policy(h.name), int(size))
        h.body = body.encode('utf-8') if isinstance(body, str) else bytes(body)
        h.behaviour = {'kind': 'stall', 'mode': mode, 'rate': rate, 'content_type': content_type}
        return self

    def cert(self, host, kind='good', names=None, key_type='ec', tls_max=None,
             tls_min=None, address=None):
        """Choose the certificate ``host`` presents.

        ``kind``: ``good`` (for ``host`` from the lab CA, with its
        intermediate), ``wrong_name`` (for the parent domain and its www),
        ``expired``, ``expiring`` (valid, ends in ``EXPIRING_DAYS`` days), ``not_yet_valid``, ``untrusted`` (from a second CA that no
        bundle has), ``self_signed``, ``no_chain`` (good leaf sent without the
        intermediate).  ``names`` overrides the names in the certificate.

        ``tls_max``/``tls_min`` (``'TLSv1'`` ... ``'TLSv1.3'``; default
        TLSv1.2-TLSv1.3; a ``tls_max`` below TLSv1.2 lowers the minimum to
        TLSv1) need ``address``: a loopback address used by this host alone
        (nginx takes TLS versions from the address, not from SNI).
        """
        if kind not in CERT_KINDS:
            raise ValueError(f'certificate kind must be one of {CERT_KINDS}, got {kind!r}')
        if key_type not in ('ec', 'rsa'):
            raise ValueError(f"key_type must be 'ec' or 'rsa', got {key_type!r}")
        for v in (tls_max, tls_min):
            if v is not None and v not in TLS_VERSIONS:
                raise ValueError(f'TLS versions are {TLS_VERSIONS}, got {v!r}')
        hi = TLS_VERSIONS.index(tls_max or 'TLSv1.3')
        lo = TLS_VERSIONS.index(tls_min) if tls_min else (0 if hi < 2 else 2)
        if lo > hi:
            raise ValueError('tls_min is above tls_max')
        tls = (TLS_VERSIONS[lo], TLS_VERSIONS[hi])
        if address is not None:
            address = check_loopback(address)
        elif tls != DEFAULT_TLS:
            raise ValueError(
                'nginx 1.22 takes ssl_protocols from the listening address, not from '
                'the SNI host: give a host with other TLS versions its own address=')
        h = self._host(host)
        h.kind, h.key_type, h.tls, h.address = kind, key_type, tls, address
        h.names = [names] if isinstance(names, str) else (list(names) if names else None)
        h.pair = None
        return self

    # -- configuration -----------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def _addresses(self):
        """{address: (ssl_protocols, hosts)} for every listening address."""
        out = {self.address: (DEFAULT_TLS, [])}
        for h in self._hosts.values():
            addr = h.address or self.address
            tls, hosts = out.setdefault(addr, (h.tls, []))
            if tls != h.tls:
                raise ValueError(f'hosts on {addr} need different TLS versions '
                                 f'({tls} and {h.tls}): give them separate addresses')
            hosts.append(h)
        return out

    @staticmethod
    def _protocols(tls):
        lo, hi = TLS_VERSIONS.index(tls[0]), TLS_VERSIONS.index(tls[1])
        return ' '.join(TLS_VERSIONS[lo:hi + 1])

    def _listen(self, addr):
        host = f'[{addr}]' if ':' in addr else addr
        return f'{host}:{self.port}'

    def config_text(self):
        """nginx.conf for the current hosts (paths absolute, sockets relative
        to the work directory, which is nginx's working directory)."""
        w = self.workdir
        user = ['user root root;'] if os.geteuid() == 0 else []
        lines = [
            '# Written by tests/lab/web.py; rewritten by every apply().',
            'daemon off;',
            'master_process on;',
            'worker_processes 1;',
            *user,
            f'pid {w}/nginx.pid;',
            f'lock_file {w}/nginx.lock;',
            f'error_log {w}/error.log info;',
            'events { worker_connections 1024; }',
            'http {',
            '    log_format lab escape=json \'{"time":"$time_iso8601","server":"$server_addr",'
            '"sni":"$ssl_server_name","host":"$host","request":"$request","status":$status,'
            '"bytes":$body_bytes_sent,"tls":"$ssl_protocol","user_agent":"$http_user_agent"}\';',
            f'    access_log {w}/access.log lab;',
            f'    client_body_temp_path {w}/tmp/body;',
            f'    proxy_temp_path {w}/tmp/proxy;',
            f'    fastcgi_temp_path {w}/tmp/fastcgi;',
            f'    uwsgi_temp_path {w}/tmp/uwsgi;',
            f'    scgi_temp_path {w}/tmp/scgi;',
            '    server_tokens off;',
            '    absolute_redirect off;',
            '    keepalive_timeout 10s;',
            '    ssl_session_cache off;',
            '    ssl_session_tickets off;',
        ]
        addresses = self._addresses()
        for addr, (tls, hosts) in addresses.items():
            lines += self._address_block(addr, tls, hosts, control=(addr == self.address))
        lines += self._internal_servers()
        lines.append('}')
        return '\n'.join(lines) + '\n'

    def _address_block(self, addr, tls, hosts, control):
        listen = self._listen(addr)
        ciphers = ('        ssl_ciphers DEFAULT:@SECLEVEL=0;'
                   if TLS_VERSIONS.index(tls[0]) < 2 else '')
        lines = [
            f'    # {listen}: unknown or missing SNI -> TLS unrecognized_name alert',
            '    server {',
            f'        listen {listen} ssl default_server;',
            '        ssl_reject_handshake on;',
            f'        ssl_protocols {self._protocols(tls)};',
        ]
        if ciphers:
            lines.append(ciphers)
        lines += ['        location / { return 421; }', '    }']
        if control:
            crt, key = self._path('certs', '_control.crt'), self._path('certs', '_control.key')
            lines += [
                '    server {',
                f'        listen {listen} ssl;',
                f'        server_name {CONTROL_HOST};',
                f'        ssl_certificate {crt};',
                f'        ssl_certificate_key {key};',
                '        access_log off;',
                f'        location = /token {{ return 200 "{self._token}"; }}',
                '        location / { return 404; }',
                '    }',
            ]
        for h in sorted(hosts, key=lambda h: h.name):
            lines += self._host_block(h, listen)
        return lines

    def _host_block(self, h, listen):
        crt, key = self._path('certs', h.name + '.crt'), self._path('certs', h.name + '.key')
        body = self._path('bodies', h.name + '.body')
        lines = [
            '    server {',
            f'        listen {listen} ssl;',
            f'        server_name {h.name};',
            f'        ssl_certificate {crt};',
            f'        ssl_certificate_key {key};',
        ]
        if TLS_VERSIONS.index(h.tls[0]) < 2:
            # After the SNI switch the host's own security level applies to
            # the handshake signature: TLSv1/1.1 need level 0 here too.
            lines.append('        ssl_ciphers DEFAULT:@SECLEVEL=0;')
        b = h.behaviour
        kind = b['kind']
        loc = []
        if kind == 'serve':
            loc += self._static(body, b['content_type'])
            for name, value in b['headers'].items():
                loc.append(f'add_header {name} {_quote(value, "header value")} always;')
            if b['chunked']:
                # Any sub_filter makes nginx drop Content-Length (chunked
                # transfer); the pattern never occurs in the body.
                loc += [f'sub_filter "{self._nomatch(h.body)}" "";', 'sub_filter_types *;']
        elif kind == 'redirect':
            loc.append(f'return {b["code"]} {_quote(b["location"], "location")};')
        elif kind == 'status':
            code = b['code']
            if b['with_body']:
                loc += [f'error_page {code} /__lab_body;', f'return {code};']
                lines += ['        location = /__lab_body {', '            internal;',
                          *('            ' + x for x in self._static(body, b['content_type'])),
                          '        }']
            else:
                loc.append(f'return {code};')
        elif kind == 'stall':
            mode = b['mode']
            if mode == 'trickle':
                loc += self._static(body, b['content_type'])
                loc += [f'limit_rate {b["rate"]};', f'limit_rate_after {TRICKLE_AFTER};']
            elif mode == 'hang':
                loc += [f'proxy_pass http://unix:run/inner1.sock:/hang/{h.name};',
                        'proxy_buffering off;', 'proxy_http_version 1.1;',
                        'proxy_read_timeout 1h;']
            else:  # silent
                loc += ['proxy_pass http://unix:run/inner2.sock:/;', 'proxy_buffering off;',
                        'proxy_set_header Content-Length 100;',
                        'proxy_pass_request_body off;', 'proxy_read_timeout 1h;']
        lines.append(f'        location = {POLICY_PATH} {{')
        lines += ['            ' + x for x in loc]
        lines += ['        }', '        location / { return 404; }', '    }']
        return lines

    @staticmethod
    def _static(path, ctype):
        ct = '""' if ctype is None else _quote(ctype, 'content_type')
        return ['types { }', f'default_type {ct};', f'alias {path};']

    @staticmethod
    def _nomatch(body):
        while True:
            token = 'lab-no-match-' + secrets.token_hex(12)
            if token.encode() not in body:
                return token

    def _internal_servers(self):
        """Plain-HTTP helpers on unix sockets for stall modes hang/silent.

        inner1 sends the headers at once (no TLS buffering; postpone_output
        0), then its add_before_body subrequest waits on inner2 for ever;
        inner2 waits for a request body that the subrequest never sends.
        """
        hang = [h for h in self._hosts.values()
                if h.behaviour['kind'] == 'stall' and h.behaviour['mode'] == 'hang']
        lines = [
            '    server {',
            '        listen unix:run/inner1.sock;',
            '        access_log off;',
            '        postpone_output 0;',
        ]
        for h in hang:
            body = self._path('bodies', h.name + '.body')
            lines += [f'        location = /hang/{h.name} {{',
                      *('            ' + x for x in self._static(body, h.behaviour['content_type'])),
                      '            add_before_body /__lab_wait;',
                      '            addition_types *;',
                      '        }']
        lines += [
            '        location = /__lab_wait {',
            '            internal;',
            '            proxy_pass http://unix:run/inner2.sock:/;',
            '            proxy_set_header Content-Length 100;',
            '            proxy_pass_request_body off;',
            '            proxy_read_timeout 1h;',
            '        }',
            '        location / { return 404; }',
            '    }',
            '    server {',
            '        listen unix:run/inner2.sock;',
            '        access_log off;',
            '        client_body_timeout 1h;',
            '        location / { proxy_pass http://unix:run/nowhere.sock; }',
            '    }',
        ]
        return lines

    def _write_files(self):
        for sub in ('bodies', 'certs', 'run'):
            shutil.rmtree(self._path(sub), ignore_errors=True)
            os.makedirs(self._path(sub))
        os.makedirs(self._path('tmp'), exist_ok=True)
        certs = self._path('certs')
        write_pair(certs, '_control', self.ca.issue([CONTROL_HOST]))
        for h in self._hosts.values():
            if h.pair is None:
                h.pair = cert_pair(self.ca, h.kind, h.name, h.names, h.key_type)
            write_pair(certs, h.name, h.pair)
            if h.body is not None:
                with open(self._path('bodies', h.name + '.body'), 'wb') as f:
                    f.write(h.body)
        text = self.config_text()
        with open(self.conf_path, 'w', encoding='ascii') as f:
            f.write(text)

    @property
    def conf_path(self):
        return self._path('nginx.conf')

    @property
    def error_log_path(self):
        return self._path('error.log')

    @property
    def access_log_path(self):
        return self._path('access.log')

    # -- lifecycle ---------------------------------------------------------

    def apply(self):
        """Write the configuration and start nginx, or restart it if running.

        A restart (not ``nginx -s reload``): reload keeps old workers serving
        stalled connections and makes new ones wait for its 100 ms hand-over,
        while a stop and start takes ~20 ms and leaves no doubt about which
        configuration answers.  Returns once the new nginx answers on
        ``address:port``.
        """
        if self._proc is not None:
            self.stop()
        busy = [self._listen(a) for a in self._addresses() if not address_is_free(a, self.port)]
        if busy:
            # nginx would retry for 2.5 s and then say the same.
            raise WebError(f'already in use: {", ".join(busy)}')
        self._token = secrets.token_hex(16)
        os.makedirs(self.workdir, exist_ok=True)
        self._write_files()
        nginx = shutil.which('nginx') or '/usr/sbin/nginx'
        if not os.path.exists(nginx):
            raise WebError('nginx not found (apt-get install nginx)')
        began = time.monotonic()
        with open(self.error_log_path, 'ab') as log:
            self._spawn([nginx, '-e', self.error_log_path, '-c', self.conf_path],
                        cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self._await_ready(began)
        return self

    start = apply

    def _wait_ready(self, deadline):
        # nginx binds every listening socket in the master before it starts
        # the worker, so the worker answering with this start's random token
        # proves all addresses are ours.  Port in use: nginx retries the
        # bind 5 times, 0.5 s apart, then exits (seen in error.log).
        self._wait_for(
            deadline, [self.address], lambda _: self._probe() == self._token, 0.005,
            exited=lambda code: f'nginx exited with {code}\n{self.log_tail()}',
            late=lambda _: (f'nginx not answering on {self._listen(self.address)}\n'
                            f'{self.log_tail()}'))

    def _probe(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((self.address, self.port), timeout=1) as raw:
                with ctx.wrap_socket(raw, server_hostname=CONTROL_HOST) as s:
                    s.sendall(f'GET /token HTTP/1.1\r\nHost: {CONTROL_HOST}\r\n'
                              'Connection: close\r\n\r\n'.encode())
                    data = b''
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
        except (OSError, ssl.SSLError):
            return None
        head, _sep, body = data.partition(b'\r\n\r\n')
        if not head.startswith(b'HTTP/1.1 200'):
            return None
        return body.decode('ascii', 'replace')

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    def stop(self):
        """Stop nginx (SIGTERM: fast shutdown, open connections are cut) and
        wait until the master and its worker have exited."""
        seconds = self._stop_process()
        if seconds is not None:
            self.stop_seconds = seconds

    # -- looking at what happened (log_tail: ProcessServer) ------------------

    def _tail_path(self):
        return self.error_log_path

    def requests(self):
        """Requests nginx has finished with, oldest first, as dicts: time,
        server (address), sni, host, request, status, bytes (body bytes
        sent), tls (protocol), user_agent.  A request is logged just after its
        answer went out (see ``wait_requests``), a stalled one only once its
        connection is closed; the readiness probe is not logged."""
        try:
            with open(self.access_log_path, encoding='utf-8') as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_requests(self, predicate=None, count=1, timeout=2.0):
        """The rows of ``requests()`` for which ``predicate(row)`` is true,
        once there are at least ``count`` of them (WebError after ``timeout``
        seconds).  nginx logs a request just *after* the client has the
        whole answer, so a client that reads the log at once can miss it."""
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in self.requests() if predicate is None or predicate(r)]
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise WebError(f'{len(rows)} matching requests logged, wanted {count}')
            time.sleep(0.01)

    def url(self, host):
        return f'https://{check_host(host)}{POLICY_PATH}'

    def address_of(self, host):
        """The address ``host`` listens on (what its A record should say)."""
        h = self._hosts.get(check_host(host))
        return (h.address if h and h.address else self.address)
