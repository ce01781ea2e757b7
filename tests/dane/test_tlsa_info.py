"""tlsa_info through ansible-playbook against real authoritative servers: the session's signing Knot (``dnssec_lab``)
and a second Knot of this file (127.0.4.53:53) serving the same zone, to which records come late or never, as to a
lagging secondary; and Postfix MX hosts (127.0.4.41:25 and 127.0.4.42:25, lab CA certificates) whose served chains
are matched. The tlsa_rollover filter then judges a whole rollover from what tlsa_info sees at each step.

Names are this file's own, under h4.dane.example.
"""

import os
import threading
import time

import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._rrset import encode
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsa import load_material, tlsa_value
from tests.integration.playbook import run_playbook
from tests.lab.knot import KnotLab
from tests.lab.mail import MailLab

ZONE = 'dane.example.'
SECONDARY = '127.0.4.53'
MX_ADDRESS = '127.0.4.41'
MX = 'mx1.h4.dane.example'
ROLL_ADDRESS = '127.0.4.42'
ROLL = 'mx-roll.h4.dane.example'
T0 = '2026-12-01T10:00:00Z'
TTL = 60
OTHER = '3 1 1 ' + 'ab' * 32


def tlsa_data(pem):
    return encode('TLSA', tlsa_value(load_material(pem, 'pem')))


def tlsa_line(host, data):
    return '_25._tcp.%s. %d IN TLSA %s' % (host, TTL, data)


class H4Lab(object):
    """The two authoritative servers of dane.example and the MX of this file."""

    def __init__(self, dnssec_lab, ca, workdir):
        self.ca = ca
        self.primary = dnssec_lab.knot
        self.secondary = KnotLab(os.path.join(workdir, 'knot'), [ZONE], address=SECONDARY, port=53)
        self.mail = MailLab(os.path.join(workdir, 'mail'), ca)
        self.mail.add_mx(MX_ADDRESS, name=MX)
        self.mail.add_mx(ROLL_ADDRESS, name=ROLL)

    def start(self):
        self.secondary.start()
        try:
            self.mail.start()
        except BaseException:
            self.secondary.stop()
            raise
        return self

    def stop(self):
        self.mail.stop()
        self.secondary.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def nameservers(self):
        return ['%s:%d' % (self.primary.address, self.primary.port), SECONDARY]

    @property
    def primary_key(self):
        return '%s:%d' % (self.primary.address, self.primary.port)

    def publish(self, host, values, secondary=True):
        lines = [tlsa_line(host, value) for value in values]
        self.primary.add_records(ZONE, lines)
        if secondary:
            self.secondary.add_records(ZONE, lines)

    def withdraw(self, host, values):
        lines = [tlsa_line(host, value) for value in values]
        self.primary.remove_records(ZONE, lines)
        self.secondary.remove_records(ZONE, lines)

    def served(self, address=MX_ADDRESS):
        return tlsa_data(self.mail.certificate(address))

    def renew_on_a_new_key(self):
        self.mail.add_mx(MX_ADDRESS, name=MX)
        self.mail.restart()


@pytest.fixture(scope='module')
def lab(dnssec_lab, lab_ca, tmp_path_factory):
    with H4Lab(dnssec_lab, lab_ca, str(tmp_path_factory.mktemp('h4-tlsa-info'))) as h4:
        yield h4


def tlsa_info(lab, tmp_path, check=False, **options):
    run = run_playbook([{'mailsec.mta_sts.tlsa_info': dict({'nameservers': lab.nameservers, 'timeout': 5}, **options),
                         'register': 'seen'}], check=check, workdir=str(tmp_path))
    assert run.returncode == 0, run
    return run.result


def test_visible_everywhere_only_once_every_server_answers(lab, tmp_path):
    host = 'mx-lag.h4.dane.example'
    lab.publish(host, [OTHER], secondary=False)
    result = tlsa_info(lab, tmp_path, hosts=[host], expect=[OTHER])
    assert result['changed'] is False and result['all_visible'] is False
    [seen] = result['results']
    assert seen['name'] == '_25._tcp.' + host and seen['zone'] == 'dane.example'
    assert seen['servers'] == {lab.primary_key: {'records': [OTHER], 'ttl': TTL, 'error': None},
                               SECONDARY: {'records': [], 'ttl': None, 'error': None}}
    assert seen['missing'] == {SECONDARY: [OTHER]}
    assert seen['reason'] == '_25._tcp.%s: %s lacks %s' % (host, SECONDARY, OTHER)
    assert seen['attempts'] == 1 and 'serving' not in seen

    lab.secondary.add_records(ZONE, [tlsa_line(host, OTHER)])
    # Check mode looks the same way: the module only reads.
    result = tlsa_info(lab, tmp_path, check=True, hosts=[host], expect=[OTHER])
    [seen] = result['results']
    assert result['all_visible'] is True and seen['visible_everywhere'] is True
    assert seen['missing'] == {} and seen['reason'] is None and seen['ttl'] == TTL and seen['records'] == [OTHER]


def module_running(name):
    """Whether the module ``name`` runs now (ansible-playbook starts it as AnsiballZ_<name>.py)."""
    for pid in os.listdir('/proc'):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                if ('AnsiballZ_%s.py' % name).encode() in f.read():
                    return True
        except (OSError, ValueError):
            continue
    return False


def test_a_wait_ends_when_the_lagging_server_catches_up(lab, tmp_path):
    host = 'mx-wait.h4.dane.example'
    lab.publish(host, [OTHER], secondary=False)
    caught_up = {}

    def catch_up():
        # Two seconds into the module's run, whenever ansible-playbook got there: it has looked a few times by then.
        deadline = time.monotonic() + 60
        while not module_running('tlsa_info') and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2)
        lab.secondary.add_records(ZONE, [tlsa_line(host, OTHER)])
        caught_up['at'] = time.monotonic()

    thread = threading.Thread(target=catch_up, daemon=True)
    thread.start()
    result = tlsa_info(lab, tmp_path, hosts=[host], expect=[OTHER], wait_timeout=30, interval=0.5)
    ended = time.monotonic()
    thread.join(5)
    [seen] = result['results']
    assert result['all_visible'] is True and seen['missing'] == {}
    # About four looks in the two seconds before the record came, and the task ended soon after, not after 30 s.
    assert 3 <= seen['attempts'] <= 12, seen['attempts']
    assert ended - caught_up['at'] < 5


def test_a_wait_that_times_out_says_which_server_lacks_what(lab, tmp_path):
    host = 'mx-never.h4.dane.example'
    lab.publish(host, [OTHER], secondary=False)
    run = run_playbook([
        {'mailsec.mta_sts.tlsa_info': {'nameservers': lab.nameservers, 'timeout': 5, 'hosts': [host], 'expect': [OTHER],
                                       'wait_timeout': 2, 'interval': 0.5},
         'register': 'seen'},
        {'ansible.builtin.fail': {'msg': "{{ seen.results | rejectattr('visible_everywhere') | map(attribute='reason') "
                                         "| join('; ') }}"},
         'when': 'not seen.all_visible'},
    ], workdir=str(tmp_path))
    assert run.returncode != 0
    [seen] = run.results[0]['results']
    assert seen['attempts'] >= 4
    message = run.result['msg']
    assert message == '_25._tcp.%s: %s lacks %s (still so after %d looks in 2 s)' % (host, SECONDARY, OTHER, seen['attempts'])


def test_probe_matches_current_then_next_after_a_new_key(lab, tmp_path):
    current = lab.served()
    lab.publish(MX, [current])
    options = dict(hosts=[MX], probe_mx=True, address=MX_ADDRESS)
    [seen] = tlsa_info(lab, tmp_path, expect=[current], **options)['results']
    assert seen['visible_everywhere'] is True
    assert seen['serving'] == {'matched': [current], 'served_spki_sha256': current.split()[3], 'error': None}

    lab.renew_on_a_new_key()
    following = lab.served()
    assert following != current
    lab.publish(MX, [following])
    [seen] = tlsa_info(lab, tmp_path, expect=[current, following], **options)['results']
    assert seen['visible_everywhere'] is True and seen['records'] == sorted([current, following])
    assert seen['serving'] == {'matched': [following], 'served_spki_sha256': following.split()[3], 'error': None}


def test_a_probe_that_fails_says_why(lab, tmp_path):
    [seen] = tlsa_info(lab, tmp_path, hosts=['mx-lag.h4.dane.example'], probe_mx=True, address='127.0.4.99',
                       timeout=2)['results']
    assert seen['serving']['matched'] == [] and seen['serving']['served_spki_sha256'] is None
    assert seen['serving']['error'] == 'mx-lag.h4.dane.example:25: [Errno 111] Connection refused'


def test_the_zone_servers_found_through_ns_must_be_authoritative(lab, dnssec_lab, tmp_path):
    # dane.example's NS (ns1.dane.example) is 127.0.0.1: unbound on port 53, a resolver that is not authoritative.
    [seen] = tlsa_info(lab, tmp_path, nameservers=None, resolvers=[dnssec_lab.resolver_address],
                       hosts=['mx-lag.h4.dane.example'])['results']
    assert seen['zone'] == 'dane.example'
    assert list(seen['servers']) == ['127.0.0.1']
    assert seen['servers']['127.0.0.1']['error'] and not seen['visible_everywhere']


def test_bad_options_fail_before_any_question(lab, tmp_path):
    run = run_playbook([{'mailsec.mta_sts.tlsa_info': {'hosts': [MX], 'expect': ['3 1 1 nothex'],
                                                       'nameservers': lab.nameservers}}], workdir=str(tmp_path))
    assert run.returncode != 0
    assert run.result['msg'].startswith("expect[0] '3 1 1 nothex': ")


def rollover_step(lab, tmp_path, entry, wanted, now):
    """One look with tlsa_info and the step the filter judges from it, in one ansible-playbook run."""
    run = run_playbook([
        {'mailsec.mta_sts.tlsa_info': {'nameservers': lab.nameservers, 'timeout': 5, 'hosts': [ROLL],
                                       'expect': [wanted['current'], wanted['next']], 'probe_mx': True,
                                       'address': ROLL_ADDRESS},
         'register': 'seen'},
        {'ansible.builtin.set_fact': {'step': '{{ entry | mailsec.mta_sts.tlsa_rollover(wanted, seen.results[0], now) }}'}},
    ], workdir=str(tmp_path), play_vars={'entry': entry, 'wanted': wanted, 'now': now})
    assert run.returncode == 0, run
    return run.result['ansible_facts']['step']


def test_the_rollover_filter_judges_each_step_from_what_is_live(lab, tmp_path):
    current = lab.served(ROLL_ADDRESS)
    next_pair = lab.ca.issue([ROLL])
    following = tlsa_data(next_pair[0])
    wanted = {'current': current, 'next': following}
    lab.publish(ROLL, [current])

    step = rollover_step(lab, tmp_path, {}, wanted, T0)
    assert (step['step'], step['records']) == ('publish-next', [current, following])
    lab.publish(ROLL, [following], secondary=False)
    step = rollover_step(lab, tmp_path, step['entry'], wanted, T0)
    assert step['step'] == 'publish-next' and step['reason'].endswith('next is missing at %s' % SECONDARY)

    lab.secondary.add_records(ZONE, [tlsa_line(ROLL, following)])
    step = rollover_step(lab, tmp_path, step['entry'], wanted, T0)
    assert (step['step'], step['wait_until']) == ('wait', '2026-12-01T10:02:00Z')   # two TTLs of 60 s
    assert step['entry']['next_visible_since'] == T0 and step['entry']['ttl'] == TTL
    # A later run resumes from the state entry; before two TTLs nothing moves, after them the MTA may switch.
    assert rollover_step(lab, tmp_path, step['entry'], wanted, '2026-12-01T10:01:59Z')['step'] == 'wait'
    step = rollover_step(lab, tmp_path, step['entry'], wanted, '2026-12-01T10:02:00Z')
    assert step['step'] == 'switch' and step['records'] == [current, following]

    lab.mail.add_mx(ROLL_ADDRESS, name=ROLL, pair=next_pair)
    lab.mail.restart()
    step = rollover_step(lab, tmp_path, step['entry'], wanted, '2026-12-01T10:05:00Z')
    assert (step['step'], step['records']) == ('retire-old', [following])
    assert step['entry']['switched_at'] == '2026-12-01T10:05:00Z'

    lab.withdraw(ROLL, [current])
    step = rollover_step(lab, tmp_path, step['entry'], wanted, '2026-12-01T10:06:00Z')
    assert step['step'] == 'done' and step['records'] == [following]
    assert step['entry'] == {'current': following, 'next': None, 'ttl': TTL, 'next_visible_since': None,
                             'switched_at': '2026-12-01T10:05:00Z'}
