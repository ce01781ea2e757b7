"""Route53 test servers on loopback: moto, and a fault-injecting counting proxy.

``MotoServer`` runs moto's server (``python -m moto.server``, the code behind
the ``moto_server`` executable) as a child process.  ``FaultProxy`` is an
HTTP/1.1 reverse proxy in front of it that counts the Route53 operations
reaching moto and can answer chosen requests with Route53's real throttling
and server error responses instead of forwarding them, which moto cannot do.
With ``strict_changes`` on, it also answers ChangeResourceRecordSets batches
that real Route53 would reject (a DELETE that does not match the current
record set exactly, a CREATE of a record set that exists) with Route53's
``InvalidChangeBatch`` error itself, because moto 5.x accepts most of them.
``rate_limit(rate, burst)`` makes it throttle as Route53's request-rate
quota does (``TokenBucket``).

A client under test (boto3 with ``endpoint_url=proxy.endpoint_url`` and
botocore's retries off) sees moto's answers byte for byte, except for the
hop-by-hop headers (``Connection``, ``Keep-Alive``, ``Transfer-Encoding``):
moto's server closes every connection after one answer, the proxy keeps the
client's connection open.

Everything listens on loopback only, and the only outgoing connections are
the proxy's to moto (which must be on loopback too).
"""

import collections
import http.client
import http.server
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from xml.etree import ElementTree

from ._service import STOP_TIMEOUT, LabHTTPServer, LoopbackEndpoint, ProcessServer
from .knot import LabError, _check_loopback

START_TIMEOUT = 20.0
UPSTREAM_TIMEOUT = 30.0

API_VERSION = '2013-04-01'
NAMESPACE = f'https://route53.amazonaws.com/doc/{API_VERSION}/'
# The dummy account moto uses; any key and secret work.
CREDENTIALS = {'aws_access_key_id': 'testing', 'aws_secret_access_key': 'testing'}
REGION = 'us-east-1'
# A made-up VPC for private zones: moto 5.x accepts any id and region
# (it does not look the VPC up in its EC2 backend); real Route53 does not.
LAB_VPC = {'VPCRegion': REGION, 'VPCId': 'vpc-0a11ce5ab0b0fee1d'}

# Operation names the proxy tells apart; everything else counts as 'other'.
OPERATIONS = ('ListHostedZones', 'ListHostedZonesByName', 'GetHostedZone', 'CreateHostedZone',
              'ListResourceRecordSets', 'ChangeResourceRecordSets', 'GetChange', 'other')
WRITE_OPERATIONS = ('ChangeResourceRecordSets', 'CreateHostedZone')

# Route53's error codes for faults: (HTTP status, Type, message).
# Throttling/PriorRequestNotComplete: status, code and message as AWS
# documents them ("Route 53 API throttling errors" knowledge-center article;
# PriorRequestNotComplete in the Route53 API reference/botocore model, both
# HTTP 400, and botocore's _retry.json for route53 lists both with 400).
# ServiceUnavailable/InternalError: the HTTP statuses of AWS's common
# errors; their messages are the common-errors descriptions, not captured
# from a real Route53 answer.
KNOWN_FAULTS = {
    'Throttling': (400, 'Sender', 'Rate exceeded'),
    'PriorRequestNotComplete': (400, 'Sender', 'The request was rejected because Route 53 '
                                'was still processing a prior request.'),
    'ServiceUnavailable': (503, 'Receiver', 'The request has failed due to a temporary '
                           'failure of the server.'),
    'InternalError': (500, 'Receiver', 'The request processing has failed because of an '
                      'unknown error, exception or failure.'),
}

# Hop-by-hop headers: they describe one connection, not the message, so the
# proxy does not pass them on (RFC 9110 7.6.1).  Expect is answered by the
# proxy itself (http.server sends the 100 Continue).
_HOP_BY_HOP_REQUEST = {'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
                       'upgrade', 'expect'}
_HOP_BY_HOP_RESPONSE = {'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
                        'upgrade', 'transfer-encoding'}

_ZONE_PATH = re.compile(rf'^/{API_VERSION}/hostedzone/([^/]+)(/rrset/?)?$')
_CHANGE_PATH = re.compile(rf'^/{API_VERSION}/change/[^/]+$')

# Strict mode reads a zone's record sets straight from moto.  moto's server
# picks the service from the SigV4 credential scope (without it, the path
# goes to its S3 backend); it does not check the signature.
_SNAPSHOT_HEADERS = {
    'Authorization': f'AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/route53/'
                     'aws4_request, SignedHeaders=host, Signature=0',
}
SNAPSHOT_PAGE = 300


def classify(method, path):
    """Route53 operation name of a request, from its method and path
    (query string allowed); 'other' for anything else."""
    path = urllib.parse.urlsplit(path).path
    method = method.upper()
    if path == f'/{API_VERSION}/hostedzone':
        return {'GET': 'ListHostedZones', 'POST': 'CreateHostedZone'}.get(method, 'other')
    if path == f'/{API_VERSION}/hostedzonesbyname':
        return 'ListHostedZonesByName' if method == 'GET' else 'other'
    match = _ZONE_PATH.match(path)
    if match:
        if match.group(2) is None:
            return 'GetHostedZone' if method == 'GET' else 'other'
        if method == 'GET' and not match.group(2).endswith('/'):
            return 'ListResourceRecordSets'
        # botocore posts to .../rrset/ (the model's requestUri); moto takes both.
        return 'ChangeResourceRecordSets' if method == 'POST' else 'other'
    if _CHANGE_PATH.match(path):
        return 'GetChange' if method == 'GET' else 'other'
    return 'other'


def error_body(code, message, request_id, error_type='Sender'):
    """A Route53 (rest-xml) error document, as botocore's RestXMLParser reads it."""
    return (
        '<?xml version="1.0"?>\n'
        f'<ErrorResponse xmlns="{NAMESPACE}">'
        f'<Error><Type>{_xml(error_type)}</Type><Code>{_xml(code)}</Code>'
        f'<Message>{_xml(message)}</Message></Error>'
        f'<RequestId>{_xml(request_id)}</RequestId>'
        '</ErrorResponse>'
    ).encode()


def _xml(text):
    return str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


# -- Route53's change batch rules (strict mode) -------------------------------

class ChangeBatchError(ValueError):
    """A change batch the strict check cannot read; it goes to moto as is."""


def _local(tag):
    return tag.rsplit('}', 1)[-1]


def _child(element, name):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element, name):
    child = _child(element, name)
    return None if child is None else (child.text or '').strip()


def _dns_name(name):
    """Route53 compares names case-insensitively, with or without the final
    dot, and with ``\\ddd`` octal escapes (how it lists ``*``) as the character."""
    name = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), name or '')
    name = name.lower()
    return name if name.endswith('.') else name + '.'


def _canonical(element):
    """Order-insensitive, namespace-free form of an element (routing fields)."""
    text = (element.text or '').strip()
    if text.lower() in ('true', 'false'):
        text = text.lower()
    return (_local(element.tag), text, tuple(sorted(_canonical(c) for c in element)))


_RRSET_KEY_FIELDS = ('Name', 'Type', 'SetIdentifier')


def rrset_identity(rrset):
    """(name, type, set identifier) of a ResourceRecordSet element: what a
    CREATE must not find and a DELETE must find."""
    return (_dns_name(_text(rrset, 'Name')), (_text(rrset, 'Type') or '').upper(),
            _text(rrset, 'SetIdentifier'))


def rrset_content(rrset):
    """Everything else a DELETE must match: TTL, the values as a sorted list
    (Route53 compares them as a set), the alias target, and any routing
    field (Weight, Region, Failover, HealthCheckId, GeoLocation, ...)."""
    ttl = _text(rrset, 'TTL')
    records = _child(rrset, 'ResourceRecords')
    values = () if records is None else tuple(sorted(
        (_text(record, 'Value') or '') for record in records))
    alias = _child(rrset, 'AliasTarget')
    if alias is not None:
        alias = (_text(alias, 'HostedZoneId'), _dns_name(_text(alias, 'DNSName')),
                 (_text(alias, 'EvaluateTargetHealth') or '').lower())
    other = tuple(sorted(_canonical(child) for child in rrset if _local(child.tag) not in (
        _RRSET_KEY_FIELDS + ('TTL', 'ResourceRecords', 'AliasTarget'))))
    return (None if ttl is None else int(ttl), values, alias, other)


def _describe(identity, rrset):
    name = _text(rrset, 'Name') or ''
    name = name if name.endswith('.') else name + '.'
    text = f"name='{name}', type='{identity[1]}'"
    if identity[2] is not None:
        text += f", set-identifier='{identity[2]}'"
    return f'[{text}]'


def parse_change_batch(body):
    """[(action, ResourceRecordSet element)] of a ChangeResourceRecordSetsRequest."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ChangeBatchError(f'not XML: {exc}') from None
    batch = _child(root, 'ChangeBatch')
    changes = None if batch is None else _child(batch, 'Changes')
    if _local(root.tag) != 'ChangeResourceRecordSetsRequest' or changes is None:
        raise ChangeBatchError('no ChangeResourceRecordSetsRequest/ChangeBatch/Changes')
    result = []
    for change in changes:
        action = (_text(change, 'Action') or '').upper()
        rrset = _child(change, 'ResourceRecordSet')
        if action not in ('CREATE', 'DELETE', 'UPSERT') or rrset is None:
            raise ChangeBatchError('change without a known Action or a ResourceRecordSet')
        result.append((action, rrset))
    return result


def check_change_batch(changes, current):
    """Route53's error messages for ``changes`` against ``current``; [] = valid.

    ``changes``: [(action, ResourceRecordSet element)]; ``current``: the
    zone's ResourceRecordSet elements.  The changes are applied in order to
    a copy of the zone; a failing change leaves the copy as it was and the
    check goes on, so every failing change gets its message (real Route53
    lists several, e.g. a stale DELETE and the CREATE after it).
    """
    zone = collections.defaultdict(list)   # identity -> [content]; moto may hold two
    for rrset in current:
        zone[rrset_identity(rrset)].append(rrset_content(rrset))
    messages = []
    for action, rrset in changes:
        identity = rrset_identity(rrset)
        content = rrset_content(rrset)
        present = zone.get(identity)
        if action == 'CREATE':
            if present:
                messages.append(f'Tried to create resource record set {_describe(identity, rrset)}'
                                ' but it already exists')
            else:
                zone[identity] = [content]
        elif action == 'DELETE':
            if not present:
                messages.append(f'Tried to delete resource record set {_describe(identity, rrset)}'
                                ' but it was not found')
            elif content not in present:
                messages.append(f'Tried to delete resource record set {_describe(identity, rrset)}'
                                ' but the values provided do not match the current values')
            else:
                present.remove(content)
                if not present:
                    del zone[identity]
        else:   # UPSERT
            zone[identity] = [content]
    return messages


def invalid_change_batch_message(messages):
    """Route53's Message for InvalidChangeBatch: the messages in brackets,
    comma-separated (``[Tried to ..., Tried to ...]``)."""
    return '[' + ', '.join(messages) + ']'


def _url(address, port):
    host = f'[{address}]' if ':' in address else address
    return f'http://{host}:{port}'


def route53_client(endpoint_url, config=None):
    """A boto3 Route53 client for ``endpoint_url`` with dummy credentials.

    Environment proxies (HTTP_PROXY and friends) are ignored unless
    ``config`` sets proxies itself: lab traffic never leaves loopback.
    """
    import boto3
    import botocore.config
    base = botocore.config.Config(proxies={})
    config = base if config is None else base.merge(config)
    return boto3.client('route53', endpoint_url=endpoint_url, region_name=REGION,
                        config=config, **CREDENTIALS)


# -- moto --------------------------------------------------------------------

class MotoServer(LoopbackEndpoint, ProcessServer):
    """moto's server as a child process on ``address:port`` (loopback).

    The listening socket is bound here, before moto starts, and handed to
    moto's werkzeug server (its ``WERKZEUG_SERVER_FD`` mechanism): there is
    no window in which another program could take the port, and the port is
    known at once when ``port`` is None.
    """

    _error = LabError
    _start_timeout = START_TIMEOUT
    _no_log = '(no moto log)'

    def __init__(self, address='127.0.0.1', port=None, log_path=None):
        _check_loopback(address)
        super().__init__()
        self._address = address
        self._requested_port = port or 0
        self._port = None
        self._log_path = log_path
        self._own_log = log_path is None

    @property
    def endpoint_url(self):
        if self._port is None:
            raise LabError('moto server not started')
        return _url(self._address, self._port)

    @property
    def log_path(self):
        return self._log_path

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        if self._proc is not None:
            raise LabError('moto server already started')
        began = time.monotonic()
        family = socket.AF_INET6 if ':' in self._address else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._address, self._requested_port))
            listener.listen(128)
            self._port = listener.getsockname()[1]
            if self._own_log:
                fd, self._log_path = tempfile.mkstemp(prefix='moto-', suffix='.log')
                os.close(fd)
            env = dict(os.environ)
            # werkzeug's run_simple serves on an inherited socket when it
            # believes it runs under its reloader; nothing else changes.
            env.update(WERKZEUG_RUN_MAIN='true', WERKZEUG_SERVER_FD=str(listener.fileno()),
                       MOTO_PORT=str(self._port))
            with open(self._log_path, 'ab') as log:
                self._spawn([sys.executable, '-m', 'moto.server', '-H', self._address,
                             '-p', str(self._port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env,
                            pass_fds=(listener.fileno(),))
        except BaseException:
            self._port = None
            listener.close()
            raise
        # moto holds its own copy now; with ours closed, a dead moto means
        # refused connections rather than connections that hang in a backlog.
        listener.close()
        self._await_ready(began)
        return self

    def _wait_ready(self, deadline):
        # The socket is ours, so any moto answer comes from our child.
        self._wait_for(
            deadline, [None], lambda _: self._answers(), 0.02,
            exited=lambda code: f'moto exited with {code}\n{self.log_tail()}',
            late=lambda _: f'moto not ready after {START_TIMEOUT} s\n{self.log_tail()}')

    def _answers(self):
        try:
            status, _body = self._moto_api('GET', '/moto-api/config', timeout=1)
        except (OSError, http.client.HTTPException):
            return False
        return 200 <= status < 300   # moto answers 201

    def stop(self):
        """Terminate moto and wait for it (killing it if it hangs)."""
        self._stop_process()
        if self._own_log and self._log_path is not None:
            try:
                os.unlink(self._log_path)
            except OSError:
                pass
            self._log_path = None
        self._port = None

    # -- talking to moto ---------------------------------------------------

    def _moto_api(self, method, path, timeout=10):
        conn = http.client.HTTPConnection(self._address, self._port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def reset(self):
        """Forget every zone and record (all of moto's state)."""
        status, body = self._moto_api('POST', '/moto-api/reset')
        if status != 200:
            raise LabError(f'moto reset answered {status}: {body[:200]!r}')

    def client(self, config=None):
        """A boto3 Route53 client talking to moto directly."""
        return route53_client(self.endpoint_url, config)

    def create_zone(self, name, private=False, client=None):
        """Create hosted zone ``name``; return its id (``/hostedzone/...``).

        A private zone is associated with a made-up VPC (``LAB_VPC``), which
        moto accepts.
        """
        client = client or self.client()
        kwargs = {'Name': name, 'CallerReference': uuid.uuid4().hex}
        if private:
            kwargs['HostedZoneConfig'] = {'PrivateZone': True}
            kwargs['VPC'] = dict(LAB_VPC)
        return client.create_hosted_zone(**kwargs)['HostedZone']['Id']


# -- the proxy ---------------------------------------------------------------

class TokenBucket:
    """Route53's request-rate quota: a bucket of ``burst`` tokens refilled at ``rate`` per second; each
    request takes one, and a request that finds the bucket empty is answered Throttling.

    From the Route53 developer guide ("Throttling for Amazon Route 53 API requests", 2026): "Amazon Route 53
    uses a token bucket algorithm ... The bucket refills at a fixed rate every second, up to its maximum
    capacity"; all operations of an account combined: capacity 50, refill 10 per second; a throttled request
    gets "an HTTP 400 error (Bad request)" with Code ``Throttling`` and Message ``Rate exceeded``.  The
    per-operation buckets and the change-throughput bucket of that page are not modelled.  ``clock`` is the
    time source; tests may pass their own.
    """

    def __init__(self, rate, burst, clock=time.monotonic):
        if not rate > 0:
            raise ValueError(f'rate must be positive requests per second, got {rate!r}')
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f'burst must be a positive integer, got {burst!r}')
        self.rate = float(rate)
        self.burst = burst
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self):
        """True: a token was taken and the request may go; False: throttled."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def __repr__(self):
        return f'TokenBucket(rate={self.rate}, burst={self.burst})'


class FaultRule:
    """One ``FaultProxy.inject`` call; ``seen``/``fired`` are for reading.

    For each request of a matching operation that this rule gets to see:
    with ``every=N`` it fires on the Nth, 2Nth, ...; with ``ratio=R`` it
    fires when its own ``random.Random(seed)`` draws below R; otherwise on
    every one.  ``count`` caps how often it fires in all (None: no cap).
    """

    def __init__(self, code, status, message, error_type, count, every, ratio, seed,
                 operations):
        self.code = code
        self.status = status
        self.message = message
        self.error_type = error_type
        self.count = count
        self.every = every
        self.ratio = ratio
        self.seed = seed
        self.operations = operations
        self.seen = 0
        self.fired = 0
        self._rng = random.Random(seed)

    def matches(self, operation):
        return self.operations is None or operation in self.operations

    def exhausted(self):
        return self.count is not None and self.fired >= self.count

    def _consider(self, operation):
        """Called under the proxy lock for each request; True = answer with this fault."""
        if not self.matches(operation) or self.exhausted():
            return False
        self.seen += 1
        if self.every is not None:
            hit = self.seen % self.every == 0
        elif self.ratio is not None:
            hit = self._rng.random() < self.ratio
        else:
            hit = True
        if hit:
            self.fired += 1
        return hit

    def __repr__(self):
        return (f'FaultRule({self.code} {self.status}, ops={self.operations}, count={self.count}, '
                f'every={self.every}, ratio={self.ratio}, seen={self.seen}, fired={self.fired})')


class FaultProxy:
    """Reverse proxy ``listen_address:listen_port`` -> ``upstream_url`` (moto).

    ``strict_changes=True`` (or setting the ``strict_changes`` property)
    checks each ChangeResourceRecordSets batch as real Route53 does before
    forwarding it; see ``check_change_batch``.
    """

    def __init__(self, upstream_url, listen_address='127.0.0.1', listen_port=None,
                 strict_changes=False, classify_request=classify, operations=OPERATIONS):
        # Another service behind moto (S3) brings its own operation names.
        self.classify_request = classify_request
        self.operations = tuple(operations)
        parts = urllib.parse.urlsplit(upstream_url)
        if parts.scheme != 'http' or not parts.hostname or not parts.port:
            raise ValueError(f'upstream must be http://HOST:PORT, got {upstream_url!r}')
        _check_loopback(parts.hostname)
        _check_loopback(listen_address)
        self.upstream = (parts.hostname, parts.port)
        self.listen_address = listen_address
        self._requested_port = listen_port or 0
        self.listen_port = None
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._faults = collections.Counter()
        self._rejected = collections.Counter()
        self._throttled = collections.Counter()
        self._bucket = None
        self._rules = []
        self._strict_changes = bool(strict_changes)
        # Strict mode: check + forward of one batch at a time, so that two
        # clients cannot both pass the check against the same snapshot.
        self._change_lock = threading.Lock()
        self._server = None
        self._accepted = 0

    @property
    def endpoint_url(self):
        if self.listen_port is None:
            raise LabError('proxy not started')
        return _url(self.listen_address, self.listen_port)

    # -- counting ----------------------------------------------------------

    def counts(self):
        """Requests per operation that reached moto (every name in OPERATIONS present)."""
        with self._lock:
            return {op: self._counts[op] for op in self.operations}

    def faults(self):
        """Requests per operation answered with an injected fault instead."""
        with self._lock:
            return {op: self._faults[op] for op in self.operations}

    def rejected(self):
        """Requests per operation answered InvalidChangeBatch by strict mode
        (only ChangeResourceRecordSets can be); neither in counts() nor faults()."""
        with self._lock:
            return {op: self._rejected[op] for op in self.operations}

    def throttled(self):
        """Requests per operation answered Throttling by ``rate_limit``'s bucket (not by an injected fault);
        neither in counts() nor faults()."""
        with self._lock:
            return {op: self._throttled[op] for op in self.operations}

    def writes(self):
        """ChangeResourceRecordSets + CreateHostedZone requests that reached moto."""
        with self._lock:
            return sum(self._counts[op] for op in WRITE_OPERATIONS)

    def reset_counts(self):
        """Zero counts(), faults(), rejected() and throttled(); fault rules and the rate limit stay."""
        with self._lock:
            self._counts.clear()
            self._faults.clear()
            self._rejected.clear()
            self._throttled.clear()

    # -- strict change batches ---------------------------------------------

    @property
    def strict_changes(self):
        """True: ChangeResourceRecordSets batches that real Route53 would
        reject get its InvalidChangeBatch answer here and never reach moto."""
        return self._strict_changes

    @strict_changes.setter
    def strict_changes(self, value):
        self._strict_changes = bool(value)

    def zone_snapshot(self, zone_id):
        """The zone's ResourceRecordSet elements, read straight from moto
        (not through the proxy, not counted); None if moto answers an error
        (e.g. NoSuchHostedZone: the batch then goes to moto, which says so)."""
        host, port = self.upstream
        rrsets = []
        query = {'maxitems': str(SNAPSHOT_PAGE)}
        while True:
            conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
            try:
                conn.request('GET', f'/{API_VERSION}/hostedzone/{zone_id}/rrset?'
                             + urllib.parse.urlencode(query), headers=_SNAPSHOT_HEADERS)
                resp = conn.getresponse()
                answer = resp.read()
            finally:
                conn.close()
            if resp.status != 200:
                return None
            root = ElementTree.fromstring(answer)
            sets = _child(root, 'ResourceRecordSets')
            rrsets.extend(sets if sets is not None else ())
            if _text(root, 'IsTruncated') != 'true':
                return rrsets
            query = {'maxitems': str(SNAPSHOT_PAGE), 'name': _text(root, 'NextRecordName'),
                     'type': _text(root, 'NextRecordType')}
            identifier = _text(root, 'NextRecordIdentifier')
            if identifier is not None:
                query['identifier'] = identifier

    def _check_changes(self, path, body):
        """Route53's messages for a ChangeResourceRecordSets request; [] = forward it."""
        match = _ZONE_PATH.match(urllib.parse.urlsplit(path).path)
        try:
            changes = parse_change_batch(body)
            current = self.zone_snapshot(match.group(1))
            if current is None:
                return []
            return check_change_batch(changes, current)
        except ValueError:   # ChangeBatchError, a TTL that is no number, ...
            return []   # moto answers malformed requests itself

    def _reject(self, operation):
        with self._lock:
            self._rejected[operation] += 1

    # -- faults ------------------------------------------------------------

    def inject(self, code='Throttling', status=None, count=None, every=None, ratio=None,
               seed=0, operations=None, message=None):
        """Answer matching requests with Route53's error ``code`` instead of forwarding.

        ``status`` defaults to the code's own (Throttling and
        PriorRequestNotComplete 400, ServiceUnavailable 503, InternalError
        500; 400 for other codes); ``message`` to the code's own text.
        ``count``: at most N faults (``count=2`` alone = the next two
        matching requests).  ``every=N``: every Nth matching request.
        ``ratio=R``: a seeded random share R.  ``operations``: names from
        OPERATIONS (default: all).  Rules are tried in the order they were
        added; the first that fires answers and later rules do not see that
        request.  Returns the FaultRule.
        """
        if every is not None and ratio is not None:
            raise ValueError('every and ratio exclude each other')
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f'every must be a positive integer, got {every!r}')
        if ratio is not None and not 0 <= ratio <= 1:
            raise ValueError(f'ratio must be within [0, 1], got {ratio!r}')
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ValueError(f'count must be a non-negative integer, got {count!r}')
        if operations is not None:
            if isinstance(operations, str):
                operations = [operations]
            unknown = set(operations) - set(self.operations)
            if unknown:
                raise ValueError(f'unknown operations {sorted(unknown)}; known: {self.operations}')
            operations = frozenset(operations)
        default_status, error_type, default_message = KNOWN_FAULTS.get(
            code, (400, 'Sender', code))
        status = default_status if status is None else int(status)
        if not 400 <= status <= 599:
            raise ValueError(f'status must be 4xx or 5xx, got {status}')
        if code not in KNOWN_FAULTS:
            error_type = 'Sender' if status < 500 else 'Receiver'
        rule = FaultRule(code, status, default_message if message is None else message,
                         error_type, count, every, ratio, seed, operations)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self):
        with self._lock:
            self._rules = []

    def rate_limit(self, rate, burst, clock=time.monotonic):
        """Throttle from now on as Route53's account-wide request rate does (the live one: 10 per second,
        burst 50): a ``TokenBucket`` that every request takes from before anything else (injected
        faults, strict checks, moto); returns it.  Throttled requests count in throttled()."""
        bucket = TokenBucket(rate, burst, clock)
        with self._lock:
            self._bucket = bucket
        return bucket

    def clear_rate_limit(self):
        with self._lock:
            self._bucket = None

    def _admit(self, operation):
        """False (and counted) when the rate limit throttles the request."""
        with self._lock:
            bucket = self._bucket
        if bucket is None or bucket.take():
            return True
        with self._lock:
            self._throttled[operation] += 1
        return False

    def _decide(self, operation):
        with self._lock:
            for rule in self._rules:
                if rule._consider(operation):
                    self._faults[operation] += 1
                    return rule
        return None

    def _count(self, operation):
        with self._lock:
            self._counts[operation] += 1

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        if self._server is not None:
            raise LabError('proxy already started')
        self._server = _ProxyServer((self.listen_address, self._requested_port), _Handler)
        self._server.proxy = self
        self.listen_port = self._server.server_address[1]
        self._server.serve_in_thread('route53-faultproxy', poll_interval=0.05)
        return self

    def stop(self):
        server, self._server = self._server, None
        if server is None:
            return
        server.stop_serving(timeout=STOP_TIMEOUT)
        self.listen_port = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def connections_accepted(self):
        """Client connections accepted since start (keep-alive check)."""
        with self._lock:
            return self._accepted

    def _accepted_one(self):
        with self._lock:
            self._accepted += 1


class _ProxyServer(LabHTTPServer):
    # Handler threads of idle keep-alive clients are ended by stop(); do
    # not wait for them in server_close().
    block_on_close = False
    proxy = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'   # keep-alive with boto3/urllib3
    server_version = 'mailsec-lab-route53-proxy'
    # Headers and body go out in two writes; with Nagle on, the client's
    # delayed ACK holds the body back ~40 ms per request.
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.proxy._accepted_one()

    def log_message(self, format, *args):   # noqa: A002 - http.server's signature
        pass   # quiet: tests read counts(), not a request log

    def _handle(self):
        proxy = self.server.proxy
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            # boto3 sends Route53 bodies with Content-Length; chunked request
            # bodies are not supported (and would desynchronise the stream).
            self.close_connection = True
            self._send_plain(411, b'chunked request bodies are not supported\n')
            return
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        operation = proxy.classify_request(self.command, self.path)
        if not proxy._admit(operation):
            status, error_type, message = KNOWN_FAULTS['Throttling']
            self._send_error(status, 'Throttling', message, error_type)
            return
        rule = proxy._decide(operation)
        if rule is not None:
            self._send_fault(rule)
            return
        try:
            if operation == 'ChangeResourceRecordSets' and proxy.strict_changes:
                with proxy._change_lock:
                    messages = proxy._check_changes(self.path, body)
                    if messages:
                        proxy._reject(operation)
                    else:
                        forwarded = self._forward(body)
                if messages:
                    self._send_error(400, 'InvalidChangeBatch',
                                     invalid_change_batch_message(messages))
                    return
            else:
                forwarded = self._forward(body)
        except (OSError, http.client.HTTPException, ElementTree.ParseError) as exc:
            self.close_connection = True
            self._send_plain(502, f'upstream failed: {exc!r}\n'.encode())
            return
        status, reason, headers, answer = forwarded
        # Counted once moto has answered and before the client gets the
        # answer: a count is visible as soon as the client has its answer.
        proxy._count(operation)
        self.send_response_only(status, reason)
        has_length = False
        for name, value in headers:
            lname = name.lower()
            if lname in _HOP_BY_HOP_RESPONSE:
                continue
            has_length = has_length or lname == 'content-length'
            self.send_header(name, value)
        if not has_length:
            self.send_header('Content-Length', str(len(answer)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(answer)

    def _forward(self, body):
        # moto's werkzeug server closes the connection after every answer,
        # so there is nothing to gain from keeping upstream connections.
        host, port = self.server.proxy.upstream
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP_REQUEST:
                    conn.putheader(name, value)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            answer = resp.read()
            return resp.status, resp.reason, resp.getheaders(), answer
        finally:
            conn.close()

    def _send_fault(self, rule):
        self._send_error(rule.status, rule.code, rule.message, rule.error_type)

    def _send_error(self, status, code, message, error_type='Sender'):
        request_id = str(uuid.uuid4())
        body = error_body(code, message, request_id, error_type)
        self.send_response_only(status)
        self.send_header('x-amzn-RequestId', request_id)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Date', self.date_time_string())
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def _send_plain(self, status, body):
        self.send_response_only(status)
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle
