"""A local stand-in for Cloudflare's v4 API: zones and DNS records.

Test infrastructure only.  ``CloudflareApi`` is an HTTP server on loopback,
run in a background thread, that answers the part of the API the
collection's Cloudflare provider uses, as the official ``cloudflare`` SDK
(5.x) calls it::

    with CloudflareApi() as api:
        zone_id = api.add_zone('example.test')
        client = Cloudflare(api_token='good-token', base_url=api.base_url, max_retries=0)
        client.dns.records.list(zone_id=zone_id, type='TXT', name={'exact': '_mta-sts.example.test'})

It was written from Cloudflare's published API reference and the SDK's
request/response types, not from Cloudflare's code.  State lives in memory
and never leaves the process; the server makes no outgoing connections and
refuses to listen anywhere but a loopback address.

Error codes
-----------
Each error answer is ``{"success": false, "errors": [{"code", "message"}],
"messages": [], "result": null}`` like Cloudflare's.  ``ERRORS`` below lists
the codes and messages used and where each was seen; the ones marked
*stand-in* are not Cloudflare's (no published source was found), so callers
should match on the HTTP status for those, not on the code.

Counting and faults
-------------------
``counts()`` counts requests as the server sees them, by route
(``'GET dns_records'`` ...); ``inject()`` makes matching requests fail with
429/5xx before they are handled (nothing changes).  See their docstrings.

Quota
-----
``set_quota(limit, window, lockout)`` enforces Cloudflare's global API rate
limit per token, scaled down for tests: see ``SlidingWindowQuota``.
"""

import collections
import copy
import datetime
import http
import ipaddress
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from ._service import LabHTTPServer

API_PREFIX = '/client/v4'

# Record types the SDK 5.x knows (types/dns/record_list_params.py).
RECORD_TYPES = frozenset((
    'A', 'AAAA', 'CAA', 'CERT', 'CNAME', 'DNSKEY', 'DS', 'HTTPS', 'LOC', 'MX', 'NAPTR', 'NS',
    'OPENPGPKEY', 'PTR', 'SMIMEA', 'SRV', 'SSHFP', 'SVCB', 'TLSA', 'TXT', 'URI'))
PROXIABLE_TYPES = frozenset(('A', 'AAAA', 'CNAME'))
# Types written as a structured ``data`` object, ``content`` being the formatted, read-only form (SDK:
# types/dns/tlsa_record_param.py has no content; tlsa_record.py: "Formatted TLSA content. See 'data' to set
# TLSA properties.").  Fields in the order the content lists them.  Live answers (a recorded dnscontrol
# test run of 2026) give content as "2 0 1 0123...CDEF", single spaces; external-dns PR #6616 reports
# the certificate in upper case there whatever case was sent: the stand-in does both.
DATA_FIELDS = {'TLSA': ('usage', 'selector', 'matching_type', 'certificate')}
_HEX_RE = re.compile(r'^[0-9a-fA-F]+$')

# Limits, as documented.  TTL: SDK docstring of TXTRecord.ttl ("1 means
# automatic ... between 60 and 86400").  TXT content: "must be 2048 characters
# or less" (developers.cloudflare.com/dns/manage-dns-records/reference/
# dns-record-types, 2024 wording; cloudflare-docs PR #29286 of 2026 replaced it
# with a 4096-byte wire-format limit, the brief asks for 2048).  Zones per page:
# OpenAPI "zones" list, default 20, minimum 5, maximum 50.  DNS records per page:
# OpenAPI schema dns-records_per_page, default 100, minimum 1, maximum 5000000.
# Batch: 200 record changes per batch on a Free plan (dns/manage-dns-records/
# how-to/batch-record-changes).
TTL_AUTO = 1
TTL_MIN = 60
TTL_MAX = 86400
TXT_MAX_LENGTH = 2048
ZONES_PER_PAGE_DEFAULT = 20
ZONES_PER_PAGE_MIN = 5
ZONES_PER_PAGE_MAX = 50
RECORDS_PER_PAGE_MIN = 1
RECORDS_PER_PAGE_MAX = 5000000
BATCH_LIMIT = 200

# (code, message, where it was seen).  Messages with {} are formatted.
ERRORS = {
    'invalid_token': (9109, 'Invalid access token',
                      'HTTP 403 for a junk API token, quoted in several public API clients'
                      ' and test suites (e.g. a 403 on /zones and /accounts)'),
    'bad_auth_header': (6003, 'Invalid request headers',
                        'HTTP 400, with error_chain 6111 "Invalid format for Authorization header";'
                        ' quoted in public issue threads'),
    'bad_auth_header_chain': (6111, 'Invalid format for Authorization header', 'see bad_auth_header'),
    'no_route': (7003, 'Could not route to {}, perhaps your object identifier is invalid?',
                 'with a second error 7000 "No route for that URI"; quoted in many issue threads'
                 ' (HTTP 400 for a malformed id; 404 for an unknown one is the brief\'s choice)'),
    'no_route_chain': (7000, 'No route for that URI', 'see no_route'),
    'record_missing': (81044, 'Record does not exist.', 'quoted in public issue threads'),
    'identical_record': (81058, 'An identical record already exists.', 'HTTP 400, quoted in public issue threads'),
    'rate_limited': (971, 'Please wait and consider throttling your request speed',
                     'HTTP 429, quoted verbatim in a Terraform provider log (GET .../dns_records/{id})'),
    'dns_validation': (1004, 'DNS Validation Error', 'HTTP 400, the wrapper of the 9xxx errors below'),
    'ttl_range': (9021, 'TTL must be between 60 and 86400 seconds, or 1 for Automatic.',
                  'error_chain of 1004, quoted in a 2024 issue thread'),
    'ttl_type': (9022, 'TTL must be a number, not a string.', 'HTTP 400, quoted in a 2024 issue thread'),
    'not_proxiable': (9004, 'This record type cannot be proxied.', 'stand-in: code and wording from memory, unverified'),
    'validation': (1004, '{}', 'stand-in: detail messages inside the 1004 error_chain are ours'),
    'bad_body': (9207, 'Request body is invalid.', 'stand-in: code from memory, unverified'),
    'bad_query': (1001, 'Invalid request: {}', 'stand-in: no published code for bad query parameters'),
    'batch_too_large': (1001, 'Invalid request: a batch may change at most {} records', 'stand-in'),
    'injected': (0, '{}', 'stand-in: body of injected 5xx faults'),
    'data_required': (1004, '{} is a required data field.',
                      'HTTP 400, one per missing field of a TLSA record sent as content; messages quoted in'
                      ' external-dns PR #6616 (2026); the code and the 1004 wrapper are the stand-in\'s'),
}


class ApiError(Exception):
    """An error answer: HTTP status plus Cloudflare-style error objects."""

    def __init__(self, status, errors):
        super().__init__(status, errors)
        self.status = status
        self.errors = errors


def _error(key, *args, chain=None):
    code, message, _source = ERRORS[key]
    err = {'code': code, 'message': message.format(*args) if args else message}
    if chain:
        err['error_chain'] = chain
    return err


def _validation_error(detail_key, *args):
    code, message, _source = ERRORS[detail_key]
    detail = {'code': code, 'message': message.format(*args) if args else message}
    return ApiError(400, [_error('dns_validation', chain=[detail])])


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _new_id():
    return uuid.uuid4().hex   # 32 lower-case hex digits, like Cloudflare's ids


_ID_RE = re.compile(r'^[0-9a-f]{32}$')


def _normal_zone_name(name):
    return str(name).strip().rstrip('.').lower()


class Fault:
    """One injected fault rule; ``fired`` says how many requests it answered."""

    def __init__(self, status, count, every, ratio, seed, retry_after, methods, path_contains):
        if not 400 <= int(status) <= 599:
            raise ValueError('status must be an HTTP error status (4xx/5xx)')
        if count is not None and count < 1:
            raise ValueError('count must be >= 1')
        if every is not None and every < 1:
            raise ValueError('every must be >= 1')
        if ratio is not None and not 0 <= ratio <= 1:
            raise ValueError('ratio must be within 0..1')
        self.status = int(status)
        self.count = count
        self.every = every
        self.ratio = ratio
        self.retry_after = retry_after
        self.methods = None if methods is None else frozenset(m.upper() for m in methods)
        self.path_contains = path_contains
        self.seen = 0     # matching requests so far
        self.fired = 0    # requests answered with the fault
        self._rng = random.Random(seed)

    @property
    def exhausted(self):
        return self.count is not None and self.fired >= self.count

    def matches(self, method, target):
        if self.methods is not None and method not in self.methods:
            return False
        return self.path_contains is None or self.path_contains in target

    def fire(self):
        """Called for each matching request (under the server lock); True = answer with the fault."""
        self.seen += 1
        if self.exhausted:
            return False
        if self.every is not None and self.seen % self.every:
            return False
        if self.ratio is not None and self._rng.random() >= self.ratio:
            return False
        self.fired += 1
        return True

    def __repr__(self):
        return (f'Fault(status={self.status}, count={self.count}, every={self.every}, ratio={self.ratio},'
                f' methods={self.methods}, path_contains={self.path_contains!r}, fired={self.fired})')


class SlidingWindowQuota:
    """Cloudflare's global API rate limit, per token: at most ``limit`` requests in any ``window`` seconds;
    the request past it and every request of that token for ``lockout`` seconds after it answer 429.

    The live numbers: "The global rate limit for the Cloudflare API is 1,200 requests per five minute period
    per user ... If you exceed this limit, all API calls for the next five minutes will be blocked, receiving
    a HTTP 429 response"; and "retry-after: The number of seconds, rounded up, until more capacity is
    available" (developers.cloudflare.com/fundamentals/api/reference/limits, 2026).  The live limit is per
    user; the stand-in has one user per token.  A refused request does not enter the window (it was not
    served) and does not extend the lockout (the documented lockout runs from the excess).  ``clock`` is
    the time source; tests may pass their own.
    """

    def __init__(self, limit, window, lockout, clock=time.monotonic):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f'limit must be a positive integer, got {limit!r}')
        if not window > 0 or not lockout > 0:
            raise ValueError(f'window and lockout must be positive seconds, got {window!r} and {lockout!r}')
        self.limit = limit
        self.window = float(window)
        self.lockout = float(lockout)
        self.clock = clock
        self._lock = threading.Lock()
        self._served = collections.defaultdict(collections.deque)   # token -> times of the requests served
        self._locked_until = {}
        self._requests = collections.Counter()
        self._throttled = collections.Counter()

    def admit(self, token):
        """Count one request of ``token``; None if it may be served, else the Retry-After of its 429."""
        with self._lock:
            now = self.clock()
            self._requests[token] += 1
            until = self._locked_until.get(token)
            if until is None or now >= until:
                served = self._served[token]
                while served and served[0] <= now - self.window:
                    served.popleft()
                if len(served) < self.limit:
                    served.append(now)
                    return None
                until = self._locked_until[token] = now + self.lockout
            self._throttled[token] += 1
            return math.ceil(until - now)

    def counts(self):
        """``{token: {'requests': all requests seen, 'throttled': those answered 429}}``."""
        with self._lock:
            return {token: {'requests': self._requests[token], 'throttled': self._throttled[token]}
                    for token in self._requests}

    def reset_counts(self):
        with self._lock:
            self._requests.clear()
            self._throttled.clear()

    def __repr__(self):
        return f'SlidingWindowQuota(limit={self.limit}, window={self.window}, lockout={self.lockout})'


COUNT_KEYS = ('GET zones', 'GET dns_records', 'POST dns_records', 'PUT dns_records', 'PATCH dns_records',
              'DELETE dns_records', 'POST batch', 'other', 'faults', 'total')

_ZONE_RE = re.compile(r'^/zones/([^/]+)$')
_RECORDS_RE = re.compile(r'^/zones/([^/]+)/dns_records$')
_BATCH_RE = re.compile(r'^/zones/([^/]+)/dns_records/batch$')
_RECORD_RE = re.compile(r'^/zones/([^/]+)/dns_records/([^/]+)$')


def _route(method, path):
    """(count key, handler name, path args) for an API path (below /client/v4)."""
    if path == '/zones' and method == 'GET':
        return 'GET zones', 'list_zones', ()
    match = _ZONE_RE.match(path)
    if match and method == 'GET':
        return 'GET zones', 'get_zone', match.groups()
    match = _BATCH_RE.match(path)
    if match and method == 'POST':
        return 'POST batch', 'batch', match.groups()
    match = _RECORDS_RE.match(path)
    if match and method in ('GET', 'POST'):
        return f'{method} dns_records', 'list_records' if method == 'GET' else 'create_record', match.groups()
    match = _RECORD_RE.match(path)
    if match and method in ('GET', 'PUT', 'PATCH', 'DELETE'):
        handler = {'GET': 'get_record', 'PUT': 'overwrite_record', 'PATCH': 'edit_record',
                   'DELETE': 'delete_record'}[method]
        return f'{method} dns_records', handler, match.groups()
    return 'other', None, ()


class _Server(LabHTTPServer):
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, api):
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        pass   # a client that hangs up mid-answer is not the stand-in's business


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'     # keep-alive, as httpx expects
    server_version = 'cloudflare-stand-in'
    sys_version = ''
    timeout = 30                      # an idle keep-alive connection is closed after this
    wbufsize = 1 << 16                # headers and body leave in one segment (no Nagle/delayed-ACK stall)

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self):
        self.server.api._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class CloudflareApi:
    """In-process stand-in of Cloudflare's v4 API for zones and DNS records."""

    def __init__(self, tokens=('good-token',), listen_address='127.0.0.1', listen_port=None,
                 per_page_default=100, relative_names=False, batch_limit=BATCH_LIMIT):
        """``relative_names=False``: a record name outside its zone is a 400 error.  The live API
        appends the zone name instead (``foo.other.test`` in zone ``example.test`` becomes
        ``foo.other.test.example.test``); ``relative_names=True`` does that."""
        address = ipaddress.ip_address(listen_address)
        if not address.is_loopback:
            raise ValueError(f'CloudflareApi listens on loopback only, not {listen_address}')
        self.tokens = frozenset(tokens)
        self.listen_address = str(address)
        self._requested_port = int(listen_port or 0)
        self.listen_port = None
        self.per_page_default = int(per_page_default)
        self.relative_names = relative_names
        self.batch_limit = batch_limit
        self._lock = threading.RLock()
        self._zones = collections.OrderedDict()     # zone id -> {'zone': dict, 'records': OrderedDict}
        self._zone_ids = {}                         # zone name -> zone id
        self._account_id = _new_id()
        self._faults = []
        self._quota = None
        self._counts = collections.Counter()
        self._writes = 0
        self._log = []
        self._internal_errors = []
        self._server = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        if self._server is not None:
            return self
        self._server = _Server((self.listen_address, self._requested_port), self)
        self.listen_port = self._server.server_address[1]
        self._server.serve_in_thread('cloudflare-api', poll_interval=0.02)
        return self

    def stop(self):
        server, self._server = self._server, None
        if server is None:
            return
        server.stop_serving(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        if self.listen_port is None:
            raise RuntimeError('CloudflareApi is not started')
        host = f'[{self.listen_address}]' if ':' in self.listen_address else self.listen_address
        return f'http://{host}:{self.listen_port}{API_PREFIX}'

    # -- state, for tests (no HTTP) ----------------------------------------

    def add_zone(self, name):
        """Create an active zone; returns its id (32 hex digits)."""
        name = _normal_zone_name(name)
        if not name:
            raise ValueError('empty zone name')
        now = _now()
        with self._lock:
            if name in self._zone_ids:
                raise ValueError(f'zone {name} exists')
            zone_id = _new_id()
            self._zones[zone_id] = {'zone': self._zone_object(zone_id, name, now),
                                    'records': collections.OrderedDict()}
            self._zone_ids[name] = zone_id
        return zone_id

    def zone_id(self, name):
        with self._lock:
            return self._zone_ids[_normal_zone_name(name)]

    def add_record(self, zone_name, type, name, content=None, ttl=1, **fields):  # pylint: disable=redefined-builtin
        """Add a record as a POST would (same validation; ApiError if the API would refuse it); returns its id.
        A TLSA record takes ``data={usage, selector, matching_type, certificate}``, as the API does."""
        with self._lock:
            zone = self._zones[self.zone_id(zone_name)]
            body = dict(fields, type=type, name=name, content=content, ttl=ttl)
            return self._create(zone, zone['records'], body, _now())['id']

    def records(self, zone_name, name=None, type=None):  # pylint: disable=redefined-builtin
        """Copies of the zone's records (dicts as the API returns them), optionally filtered (case-insensitive)."""
        with self._lock:
            zone = self._zones[self.zone_id(zone_name)]
            found = []
            for record in zone['records'].values():
                if name is not None and record['name'] != _normal_zone_name(name):
                    continue
                if type is not None and record['type'] != type.upper():
                    continue
                found.append(copy.deepcopy(record))
            return found

    # -- faults and counts -------------------------------------------------

    def inject(self, status=429, count=None, every=None, ratio=None, seed=0, retry_after=1, methods=None,
               path_contains=None):
        """Answer matching requests with ``status`` instead of handling them (nothing changes state).

        Matching: ``methods`` (e.g. ``('POST', 'PATCH')``) and ``path_contains`` (a substring of the
        request target, path and query, e.g. ``'/dns_records'`` or ``'page=2'``); None matches all.
        Which matching requests fail: the next ``count`` ones, every ``every``-th one, a seeded
        random share ``ratio``; combined with AND (``count`` caps the others); none of them: all
        until ``clear_faults()``.  A 429 carries ``Retry-After: retry_after`` (None: no header) and
        Cloudflare's rate-limit error (code 971).  Faults are checked before authentication and in
        the order injected.  Returns the ``Fault``, whose ``fired`` counts the requests it answered.
        """
        fault = Fault(status, count, every, ratio, seed, retry_after, methods, path_contains)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self):
        with self._lock:
            self._faults = []

    def set_quota(self, limit, window, lockout, clock=time.monotonic):
        """Enforce a ``SlidingWindowQuota`` per token from now on (the live one: 1200, 300, 300); returns it.

        Only requests with a valid token count (the live API cannot tell whose a bad token is); injected
        faults answer first and do not count.  A refused request gets Cloudflare's rate-limit error
        (HTTP 429, code 971) with ``Retry-After``, counts in ``counts()['total']`` and in the quota's
        ``throttled``, not under its route, and changes nothing."""
        quota = SlidingWindowQuota(limit, window, lockout, clock)
        with self._lock:
            self._quota = quota
        return quota

    def clear_quota(self):
        with self._lock:
            self._quota = None

    def quota_counts(self):
        """``{token: {'requests', 'throttled'}}`` since the quota was set or counts were reset; {} without one."""
        with self._lock:
            quota = self._quota
        return {} if quota is None else quota.counts()

    def counts(self):
        """Requests seen, by route (``'GET zones'``, ``'GET dns_records'``, ``'POST dns_records'``,
        ``'PUT dns_records'``, ``'PATCH dns_records'``, ``'DELETE dns_records'``, ``'POST batch'``,
        ``'other'``), plus ``'faults'`` (answered by an injected fault, not in the route counts)
        and ``'total'`` (everything).  ``GET zones`` covers list and get, ``GET dns_records`` list
        and get.  Failed requests (bad token, 404, validation) count under their route."""
        with self._lock:
            return {key: self._counts.get(key, 0) for key in COUNT_KEYS}

    def writes(self):
        """Non-GET requests that reached the handler (not answered by a fault), whatever their outcome."""
        with self._lock:
            return self._writes

    def log(self):
        """``(method, target, status)`` of each request so far, oldest first."""
        with self._lock:
            return list(self._log)

    def internal_errors(self):
        """Unexpected exceptions in the stand-in itself (answered as HTTP 500); tests can assert it is empty."""
        with self._lock:
            return list(self._internal_errors)

    def reset_counts(self):
        with self._lock:
            self._counts.clear()
            self._writes = 0
            self._log = []
            if self._quota is not None:
                self._quota.reset_counts()

    # -- HTTP --------------------------------------------------------------

    def _serve(self, handler):
        method = handler.command
        target = handler.path
        length = int(handler.headers.get('Content-Length') or 0)
        raw_body = handler.rfile.read(length) if length > 0 else b''
        parts = urlsplit(target)
        path = parts.path
        key, action, args = _route(method, path[len(API_PREFIX):]) if path.startswith(API_PREFIX + '/') \
            else ('other', None, ())
        quota_token = self._known_token(handler.headers.get('Authorization'))
        retry_after = None
        with self._lock:
            fault = next((f for f in self._faults if f.matches(method, target) and f.fire()), None)
            self._faults = [f for f in self._faults if not f.exhausted]
            self._counts['total'] += 1
            if fault is None and self._quota is not None and quota_token is not None:
                retry_after = self._quota.admit(quota_token)
            if fault is not None:
                self._counts['faults'] += 1
            elif retry_after is None:
                self._counts[key] += 1
                if method != 'GET':
                    self._writes += 1
        if fault is not None:
            status, headers, payload = self._fault_answer(fault)
        elif retry_after is not None:
            status, headers, payload = self._rate_limited(retry_after)
        else:
            try:
                self._authenticate(handler.headers.get('Authorization'))
                if action is None:
                    raise ApiError(404, [_error('no_route', path), _error('no_route_chain')])
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                body = self._parse_body(method, raw_body)
                status, payload = 200, getattr(self, '_do_' + action)(path, query, body, *args)
            except ApiError as exc:
                status, payload = exc.status, {'success': False, 'errors': exc.errors, 'messages': [],
                                               'result': None}
            except Exception as exc:  # pylint: disable=broad-except
                # A bug in the stand-in: answer 500 and keep it for internal_errors().
                with self._lock:
                    self._internal_errors.append(f'{method} {target}: {exc!r}')
                status, payload = 500, {'success': False, 'errors': [{'code': 0, 'message': f'stand-in bug: {exc!r}'}],
                                        'messages': [], 'result': None}
            headers = {}
        with self._lock:
            self._log.append((method, target, status))
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header('Content-Type', 'application/json')
        handler.send_header('Content-Length', str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _rate_limited(retry_after):
        """A 429 answer: Cloudflare's rate-limit error, with ``Retry-After`` unless it is None."""
        headers = {} if retry_after is None else {'Retry-After': str(retry_after)}
        return 429, headers, {'success': False, 'errors': [_error('rate_limited')], 'messages': [], 'result': None}

    @classmethod
    def _fault_answer(cls, fault):
        if fault.status == 429:
            return cls._rate_limited(fault.retry_after)
        try:
            phrase = http.HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = 'Error'
        error = {'code': ERRORS['injected'][0], 'message': phrase}
        return fault.status, {}, {'success': False, 'errors': [error], 'messages': [], 'result': None}

    def _known_token(self, header):
        """The configured token a request presents, or None."""
        scheme, _sep, token = (header or '').partition(' ')
        return token if scheme.lower() == 'bearer' and token in self.tokens else None

    def _authenticate(self, header):
        if header is None:
            raise ApiError(403, [_error('invalid_token')])
        scheme, _sep, token = header.partition(' ')
        if scheme.lower() != 'bearer' or not token or token != token.strip() or ' ' in token:
            raise ApiError(400, [_error('bad_auth_header', chain=[_error('bad_auth_header_chain')])])
        if token not in self.tokens:
            raise ApiError(403, [_error('invalid_token')])

    @staticmethod
    def _parse_body(method, raw):
        if method not in ('POST', 'PUT', 'PATCH'):
            return None
        try:
            body = json.loads(raw or b'{}')
        except ValueError:
            raise ApiError(400, [_error('bad_body')]) from None
        if not isinstance(body, dict):
            raise ApiError(400, [_error('bad_body')])
        return body

    @staticmethod
    def _ok(result, result_info=None):
        payload = {'success': True, 'errors': [], 'messages': [], 'result': result}
        if result_info is not None:
            payload['result_info'] = result_info
        return payload

    @staticmethod
    def _int_param(query, name, default, low, high):
        raw = query.get(name)
        if raw is None or raw == '':
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not value.is_integer() or not low <= value <= high:
            raise ApiError(400, [_error('bad_query', f'{name} must be an integer from {low} to {high}')])
        return int(value)

    @classmethod
    def _page(cls, items, query, per_page_default, per_page_min, per_page_max):
        page = cls._int_param(query, 'page', 1, 1, 10 ** 9)
        per_page = cls._int_param(query, 'per_page', per_page_default, per_page_min, per_page_max)
        start = (page - 1) * per_page
        chunk = items[start:start + per_page]     # empty past the last page: the SDK stops there
        info = {'page': page, 'per_page': per_page, 'count': len(chunk), 'total_count': len(items),
                'total_pages': max(1, math.ceil(len(items) / per_page))}
        return chunk, info

    @staticmethod
    def _sort(items, query, fields):
        order = query.get('order')
        direction = query.get('direction', 'asc')
        if direction not in ('asc', 'desc'):
            raise ApiError(400, [_error('bad_query', 'direction must be asc or desc')])
        if order is None:
            return items if direction == 'asc' else items[::-1]
        if order not in fields:
            raise ApiError(400, [_error('bad_query', f'order must be one of {", ".join(fields)}')])
        return sorted(items, key=fields[order], reverse=direction == 'desc')

    def _zone(self, path, zone_id, record_id=None):
        """The zone of a request path; a malformed id in the path is a 400 (as observed), an unknown zone a 404."""
        if not _ID_RE.match(zone_id) or (record_id is not None and not _ID_RE.match(record_id)):
            raise ApiError(400, [_error('no_route', path), _error('no_route_chain')])
        zone = self._zones.get(zone_id)
        if zone is None:
            raise ApiError(404, [_error('no_route', path), _error('no_route_chain')])
        return zone

    # -- zones ---------------------------------------------------------------

    def _zone_object(self, zone_id, name, now):
        return {
            'id': zone_id, 'name': name, 'status': 'active', 'paused': False, 'type': 'full',
            'development_mode': 0,
            'name_servers': ['ns1.cloudflare-lab.invalid', 'ns2.cloudflare-lab.invalid'],
            'original_name_servers': None, 'original_registrar': None, 'original_dnshost': None,
            'created_on': now, 'modified_on': now, 'activated_on': now,
            'meta': {'step': 2, 'custom_certificate_quota': 0, 'page_rule_quota': 3, 'phishing_detected': False},
            'owner': {'id': None, 'type': 'user', 'email': None},
            'account': {'id': self._account_id, 'name': 'Lab account'},
            'permissions': ['#dns_records:edit', '#dns_records:read', '#zone:read'],
            'plan': {'id': '0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee', 'name': 'Free Website', 'price': 0,
                     'currency': 'USD', 'frequency': '', 'is_subscribed': False, 'can_subscribe': False,
                     'legacy_id': 'free', 'legacy_discount': False, 'externally_managed': False},
        }

    @staticmethod
    def _name_matches(value, spec):
        """Zone name filter: ``equal`` by default, or ``operator:value`` as the API documents."""
        operator, sep, operand = spec.partition(':')
        if not sep or operator not in ('equal', 'not_equal', 'starts_with', 'ends_with', 'contains',
                                       'starts_with_case_sensitive', 'ends_with_case_sensitive',
                                       'contains_case_sensitive'):
            operator, operand = 'equal', spec
        if not operator.endswith('case_sensitive'):
            value, operand = value.lower(), operand.lower()
        base = operator.replace('_case_sensitive', '')
        return {'equal': value == operand, 'not_equal': value != operand, 'starts_with': value.startswith(operand),
                'ends_with': value.endswith(operand), 'contains': operand in value}[base]

    def _do_list_zones(self, path, query, body):
        with self._lock:
            zones = [copy.deepcopy(entry['zone']) for entry in self._zones.values()]
        tests = []
        if 'name' in query:
            tests.append(lambda z: self._name_matches(z['name'], query['name']))
        if 'status' in query:
            tests.append(lambda z: z['status'] == query['status'])
        combine = any if query.get('match') == 'any' else all
        if tests:
            zones = [z for z in zones if combine(test(z) for test in tests)]
        zones.sort(key=lambda z: z['name'])     # stable: by name unless ordered otherwise
        zones = self._sort(zones, query, {'name': lambda z: z['name'], 'status': lambda z: z['status'],
                                          'account.id': lambda z: z['account']['id'],
                                          'account.name': lambda z: z['account']['name'],
                                          'plan.id': lambda z: z['plan']['id']})
        chunk, info = self._page(zones, query, ZONES_PER_PAGE_DEFAULT, ZONES_PER_PAGE_MIN, ZONES_PER_PAGE_MAX)
        return self._ok(chunk, info)

    def _do_get_zone(self, path, query, body, zone_id):
        with self._lock:
            return self._ok(copy.deepcopy(self._zone(path, zone_id)['zone']))

    # -- records: validation -------------------------------------------------

    def _record_name(self, zone_name, name):
        if not isinstance(name, str) or not name.strip():
            raise _validation_error('validation', 'DNS record name is required.')
        name = name.strip().rstrip('.').lower()
        if name == '@':
            return zone_name
        if name == zone_name or name.endswith('.' + zone_name):
            return name
        if self.relative_names:
            return f'{name}.{zone_name}'
        raise _validation_error('validation', f'Record name {name} is not in zone {zone_name}.')

    def _check(self, zone, fields):
        """Validate and normalise record fields (a dict with every field); returns it."""
        zone_name = zone['zone']['name']
        rtype = fields.get('type')
        if not isinstance(rtype, str) or not rtype:
            raise _validation_error('validation', 'DNS record type is required.')
        rtype = rtype.upper()
        if rtype not in RECORD_TYPES:
            raise _validation_error('validation', f'DNS record type {rtype} is invalid.')
        fields['type'] = rtype
        fields['name'] = self._record_name(zone_name, fields.get('name'))
        if rtype in DATA_FIELDS:
            fields['data'], fields['content'] = self._check_data(rtype, fields.get('data'))
        else:
            fields['data'] = None
        content = fields.get('content')
        if not isinstance(content, str) or content == '':
            raise _validation_error('validation', f'Content for {rtype} record is required.')
        if rtype == 'TXT' and len(content) > TXT_MAX_LENGTH:
            raise _validation_error('validation', f'TXT content must be {TXT_MAX_LENGTH} characters or less.')
        ttl = fields.get('ttl')
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise ApiError(400, [_error('ttl_type')])
        if ttl != TTL_AUTO and not (TTL_MIN <= ttl <= TTL_MAX and float(ttl).is_integer()):
            raise _validation_error('ttl_range')
        fields['ttl'] = int(ttl)
        proxied = fields.get('proxied')
        if proxied is None:
            proxied = False
        if not isinstance(proxied, bool):
            raise _validation_error('validation', 'proxied must be a boolean.')
        if proxied and rtype not in PROXIABLE_TYPES:
            raise _validation_error('not_proxiable')
        fields['proxied'] = proxied
        if fields.get('comment') is not None and not isinstance(fields['comment'], str):
            raise _validation_error('validation', 'comment must be a string.')
        tags = fields.get('tags')
        if tags is None:
            tags = []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise _validation_error('validation', 'tags must be a list of strings.')
        fields['tags'] = tags
        if fields.get('settings') is None:
            fields['settings'] = {}
        if not isinstance(fields['settings'], dict):
            raise _validation_error('validation', 'settings must be an object.')
        return fields

    @staticmethod
    def _check_data(rtype, data):
        """The ``data`` object of a type written through it, and the content derived from it.  Any
        content sent is ignored; without ``data`` each missing field is an error of its own."""
        names = DATA_FIELDS[rtype]
        if data is not None and not isinstance(data, dict):
            raise _validation_error('validation', 'data must be an object.')
        data = data or {}
        missing = [name for name in names if data.get(name) is None]
        if missing:
            raise ApiError(400, [_error('dns_validation', chain=[_error('data_required', name) for name in missing])])
        checked = {}
        for name in names[:-1]:
            number = data[name]
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not float(number).is_integer() \
                    or not 0 <= number <= 255:
                raise _validation_error('validation', f'{name} must be an integer from 0 to 255.')
            checked[name] = int(number)
        certificate = data[names[-1]]
        if not isinstance(certificate, str) or not _HEX_RE.match(certificate) or len(certificate) % 2:
            raise _validation_error('validation', f'{names[-1]} must be hexadecimal, an even number of digits.')
        checked[names[-1]] = certificate
        content = ' '.join([str(checked[name]) for name in names[:-1]] + [certificate.upper()])
        return checked, content

    @staticmethod
    def _refuse_identical(records, record, own_id=None):
        for other in records.values():
            if other['id'] != own_id and (other['type'], other['name'], other['content']) == \
                    (record['type'], record['name'], record['content']):
                raise ApiError(400, [_error('identical_record')])

    EDITABLE = ('type', 'name', 'content', 'data', 'ttl', 'proxied', 'comment', 'tags', 'settings')
    DEFAULTS = {'ttl': TTL_AUTO, 'proxied': None, 'comment': None, 'tags': None, 'settings': None, 'data': None}

    def _store(self, zone, records, fields, record_id, created_on, now):
        record = {
            'id': record_id, 'zone_id': zone['zone']['id'], 'zone_name': zone['zone']['name'],
            'name': fields['name'], 'type': fields['type'], 'content': fields['content'],
            'proxiable': fields['type'] in PROXIABLE_TYPES, 'proxied': fields['proxied'], 'ttl': fields['ttl'],
            'settings': copy.deepcopy(fields['settings']), 'meta': {}, 'comment': fields.get('comment'),
            'tags': list(fields['tags']), 'created_on': created_on, 'modified_on': now,
        }
        if fields['data'] is not None:
            record['data'] = copy.deepcopy(fields['data'])
        self._refuse_identical(records, record, own_id=record_id)
        records[record_id] = record
        return copy.deepcopy(record)

    # -- records: operations on a records mapping (the zone's, or a batch's copy) --

    def _create(self, zone, records, body, now):
        fields = dict(self.DEFAULTS)
        fields.update({k: body[k] for k in self.EDITABLE if k in body})
        fields = self._check(zone, fields)
        return self._store(zone, records, fields, _new_id(), now, now)

    def _existing(self, records, record_id):
        if not isinstance(record_id, str) or not _ID_RE.match(record_id):
            raise ApiError(404 if isinstance(record_id, str) else 400, [_error('record_missing')])
        record = records.get(record_id)
        if record is None:
            raise ApiError(404, [_error('record_missing')])
        return record

    def _overwrite(self, zone, records, record_id, body, now):
        old = self._existing(records, record_id)
        fields = dict(self.DEFAULTS)
        fields.update({k: body[k] for k in self.EDITABLE if k in body})
        fields = self._check(zone, fields)
        return self._store(zone, records, fields, record_id, old['created_on'], now)

    def _edit(self, zone, records, record_id, body, now):
        old = self._existing(records, record_id)
        fields = {k: copy.deepcopy(old.get(k)) for k in self.EDITABLE}
        fields.update({k: body[k] for k in self.EDITABLE if k in body})
        fields = self._check(zone, fields)
        return self._store(zone, records, fields, record_id, old['created_on'], now)

    def _delete(self, records, record_id):
        self._existing(records, record_id)
        return records.pop(record_id)

    # -- records: endpoints --------------------------------------------------

    @staticmethod
    def _text_filter(query, field, normalise):
        """Tests for ``field``, ``field.exact`` and the other operators (all case-insensitive)."""
        tests = []
        for op in ('', '.exact', '.contains', '.startswith', '.endswith'):
            if field + op not in query:
                continue
            wanted = normalise(query[field + op])
            check = {'': str.__eq__, '.exact': str.__eq__, '.contains': lambda v, w: w in v,
                     '.startswith': str.startswith, '.endswith': str.endswith}[op]
            tests.append(lambda record, check=check, wanted=wanted: check(normalise(record[field]), wanted))
        return tests

    def _do_list_records(self, path, query, body, zone_id):
        with self._lock:
            records = [copy.deepcopy(r) for r in self._zone(path, zone_id)['records'].values()]
        tests = []
        if 'type' in query:
            tests.append(lambda r: r['type'] == query['type'].upper())
        tests += self._text_filter(query, 'name', str.lower)
        tests += self._text_filter(query, 'content', str.lower)
        if 'proxied' in query:
            tests.append(lambda r: r['proxied'] == (query['proxied'].lower() == 'true'))
        combine = any if query.get('match') == 'any' else all
        if tests:
            records = [r for r in records if combine(test(r) for test in tests)]
        records = self._sort(records, query, {'type': lambda r: r['type'], 'name': lambda r: r['name'],
                                              'content': lambda r: r['content'], 'ttl': lambda r: r['ttl'],
                                              'proxied': lambda r: r['proxied']})
        chunk, info = self._page(records, query, self.per_page_default, RECORDS_PER_PAGE_MIN, RECORDS_PER_PAGE_MAX)
        return self._ok(chunk, info)

    def _do_get_record(self, path, query, body, zone_id, record_id):
        with self._lock:
            zone = self._zone(path, zone_id, record_id)
            return self._ok(copy.deepcopy(self._existing(zone['records'], record_id)))

    def _do_create_record(self, path, query, body, zone_id):
        with self._lock:
            zone = self._zone(path, zone_id)
            return self._ok(self._create(zone, zone['records'], body, _now()))

    def _do_overwrite_record(self, path, query, body, zone_id, record_id):
        with self._lock:
            zone = self._zone(path, zone_id, record_id)
            return self._ok(self._overwrite(zone, zone['records'], record_id, body, _now()))

    def _do_edit_record(self, path, query, body, zone_id, record_id):
        with self._lock:
            zone = self._zone(path, zone_id, record_id)
            return self._ok(self._edit(zone, zone['records'], record_id, body, _now()))

    def _do_delete_record(self, path, query, body, zone_id, record_id):
        with self._lock:
            zone = self._zone(path, zone_id, record_id)
            self._delete(zone['records'], record_id)
            return self._ok({'id': record_id})

    def _do_batch(self, path, query, body, zone_id):
        ops = {}
        for key in ('deletes', 'patches', 'puts', 'posts'):
            items = body.get(key) or []
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise ApiError(400, [_error('bad_body')])
            ops[key] = items
        if sum(len(items) for items in ops.values()) > self.batch_limit:
            raise ApiError(400, [_error('batch_too_large', self.batch_limit)])
        now = _now()
        with self._lock:
            zone = self._zone(path, zone_id)
            work = copy.deepcopy(zone['records'])     # all or nothing: changes go to a copy first
            result = {key: [] for key in ('deletes', 'patches', 'puts', 'posts')}
            for item in ops['deletes']:
                result['deletes'].append(self._delete(work, item.get('id')))
            for item in ops['patches']:
                result['patches'].append(self._edit(zone, work, item.get('id'), item, now))
            for item in ops['puts']:
                result['puts'].append(self._overwrite(zone, work, item.get('id'), item, now))
            for item in ops['posts']:
                result['posts'].append(self._create(zone, work, item, now))
            zone['records'] = work
            return self._ok(result)
