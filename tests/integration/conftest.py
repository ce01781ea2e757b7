import itertools
import os

import pytest

from tests.integration.backends import ZONES, CloudflareBackend, Rfc2136Backend, Route53Backend, ZonefileBackend
from tests.lab.cloudflare_api import CloudflareApi
from tests.lab.dnsproxy import CountingDnsProxy
from tests.lab.knot import KnotLab
from tests.lab.route53 import FaultProxy, MotoServer
from tests.lab.web import PolicyWeb

_counter = itertools.count(1)


@pytest.fixture(scope='session')
def knot(tmp_path_factory):
    with KnotLab(str(tmp_path_factory.mktemp('knot')), list(ZONES)) as lab:
        yield lab


@pytest.fixture(scope='session')
def dns_proxy(knot):
    with CountingDnsProxy(knot.address, knot.port) as proxy:
        yield proxy


@pytest.fixture(scope='session')
def rfc2136(knot, dns_proxy):
    return Rfc2136Backend(knot, dns_proxy)


@pytest.fixture(scope='session')
def route53():
    # Strict: the proxy rejects stale DELETEs and CREATEs of existing sets as Route 53 does (moto does not).
    with MotoServer() as moto, FaultProxy(moto.endpoint_url, strict_changes=True) as proxy:
        yield Route53Backend(moto, proxy)


@pytest.fixture(scope='session')
def cloudflare():
    with CloudflareApi(tokens=(CloudflareBackend.token,)) as api:
        yield CloudflareBackend(api)


@pytest.fixture(scope='session', params=['rfc2136', 'zonefile', 'route53', 'cloudflare'])
def backend(request, tmp_path_factory):
    if request.param == 'zonefile':
        return ZonefileBackend(str(tmp_path_factory.mktemp('zones')))
    return request.getfixturevalue(request.param)


@pytest.fixture(scope='module')
def policy_web(tmp_path_factory):
    """nginx on 127.0.0.1:443 with a lab CA (``ca_path``): serve a policy, then ``apply()``."""
    workdir = str(tmp_path_factory.mktemp('policy-web'))
    web = PolicyWeb(workdir, '127.0.0.1', 443)
    web.ca_path = os.path.join(workdir, 'lab-ca.pem')
    web.ca.write_bundle(web.ca_path)
    yield web
    web.stop()


@pytest.fixture
def domain():
    """A fresh mail domain for each test, inside the lab zone alpha.example."""
    return 'd%d.alpha.example' % next(_counter)


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)
