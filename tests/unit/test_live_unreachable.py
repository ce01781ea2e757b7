"""A nameserver on a network this host cannot reach (connect() of the UDP socket fails, as in a network
namespace with only a loopback) is a failure of that server, named in the error, not a crash of the look-up."""

import errno
import socket

from ansible_collections.mailsec.mta_sts.plugins.module_utils import _live


class UnreachableSocket(socket.socket):
    def connect(self, address):
        raise OSError(errno.ENETUNREACH, 'Network is unreachable')


def test_an_unreachable_nameserver_is_a_failure_naming_it(monkeypatch):
    monkeypatch.setattr(_live.socket, 'socket', UnreachableSocket)
    resolver = _live.Resolver(nameservers=['192.0.2.53'], timeout=1)
    facts = _live.fetch_policy(resolver, 'example.com', timeout=1)
    assert facts['error']['kind'] == 'dns'
    assert facts['error']['message'] == '192.0.2.53:53 [Errno 101] Network is unreachable'
