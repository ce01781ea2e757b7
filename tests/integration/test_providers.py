"""Provider behaviour that a playbook cannot show: concurrent edits, and secrets under -vvv."""

import base64
import socket

import pytest
from cloudflare import Cloudflare

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ConflictError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._providers.registry import PROVIDERS
from ansible_collections.mailsec.mta_sts.plugins.module_utils._records import STS_RECORD
from ansible_collections.mailsec.mta_sts.plugins.module_utils._txt import plan_name
from tests.integration.playbook import run_playbook


def _provider(backend):
    params = backend.module_args()
    return PROVIDERS[params['provider']].from_params(params)


def _read_and_plan(backend, name, wanted):
    provider = _provider(backend)
    zone = provider.find_zone(name)
    rrset = provider.read(zone, [name])[name]
    return provider, zone, plan_name(rrset, wanted, STS_RECORD.is_managed, STS_RECORD.same, 3600)


def _live(backend, name):
    return sorted(b''.join(value).decode() for value in backend.strings(name))


def test_concurrent_edit_between_read_and_write_loses_nothing(backend, domain):
    name = '_mta-sts.' + domain
    backend.seed(name, ['v=STSv1; id=before;'], ttl=3600)
    provider, zone, change = _read_and_plan(backend, name, 'v=STSv1; id=ours;')
    backend.seed(name, ['someone else was here'], ttl=3600)
    if backend.name == 'cloudflare':
        # No conditional writes at Cloudflare: each value is a record changed by its id, so the
        # other writer's new record is untouched and ours replaces only the record we read.
        provider.apply(zone, [change])
        assert _live(backend, name) == ['someone else was here', 'v=STSv1; id=ours;']
        return
    with pytest.raises(ConflictError) as error:
        provider.apply(zone, [change])
    assert 'changed since' in str(error.value) and 'nothing was' in str(error.value) and 're-run' in str(error.value)
    # Refused whole: the other writer's value is there, ours is not.
    assert _live(backend, name) == ['someone else was here', 'v=STSv1; id=before;']


def test_cloudflare_batch_is_all_or_nothing(cloudflare, domain):
    first, second = '_mta-sts.' + domain, '_smtp._tls.' + domain
    cloudflare.seed(first, ['v=STSv1; id=before;'], ttl=3600)
    provider, zone, change = _read_and_plan(cloudflare, first, 'v=STSv1; id=ours;')
    added = plan_name(provider.read(zone, [second])[second], 'v=TLSRPTv1; rua=mailto:r@alpha.example',
                      lambda text: text.startswith('v=TLSRPTv1'), lambda a, b: a == b, 3600)
    other_writer = Cloudflare(api_token=cloudflare.token, base_url=cloudflare.api.base_url, max_retries=0)
    for record in cloudflare.api.records('alpha.example', name=first):
        other_writer.dns.records.delete(record['id'], zone_id=cloudflare.api.zone_id('alpha.example'))
    with pytest.raises(ConflictError, match='changed since they were read .HTTP 404'):
        provider.apply(zone, [added, change])
    assert _live(cloudflare, first) == [] and _live(cloudflare, second) == []


def test_wrong_tsig_key_fails_clearly_and_no_secret_is_shown(rfc2136, domain, workdir):
    backend = rfc2136
    wrong = base64.b64encode(b'not the key, 32 bytes long......').decode()
    args = backend.module_args()
    right = args['key_secret']
    args['key_secret'] = wrong
    backend.reset()
    run = run_playbook([{'mailsec.mta_sts.mta_sts_record': dict(args, domain=domain, id='abc')}], verbosity=3, workdir=workdir)
    assert run.returncode != 0
    assert ("rejected TSIG key '%s': the signature does not verify (BADSIG); check key_secret and key_algorithm"
            % args['key_name']) in run.result['msg'], run
    assert wrong not in run.output and right not in run.output
    assert backend.writes() == 0

    ok = run_playbook([{'mailsec.mta_sts.mta_sts_record': dict(args, domain=domain, id='abc', key_secret=right)}],
                      verbosity=3, diff=True, workdir=workdir)
    assert ok.returncode == 0, ok
    assert right not in ok.output


def test_secret_from_environment_is_not_shown(rfc2136, domain, workdir):
    args = rfc2136.module_args()
    secret = args.pop('key_secret')
    run = run_playbook([{'mailsec.mta_sts.tlsrpt_record': dict(args, domain=domain, rua=['mailto:r@alpha.example'])}],
                       verbosity=3, env={'MAILSEC_RFC2136_KEY_SECRET': secret}, workdir=workdir)
    assert run.returncode == 0, run
    assert secret not in run.output


def test_cloudflare_splits_batches_at_200_items_by_whole_names(cloudflare, workdir):
    domains = ['many%03d.beta.example' % i for i in range(250)]
    cloudflare.seed('_mta-sts.many000.beta.example', ['v=STSv1; id=old1;', 'v=STSv1; id=old2;'], ttl=3600)
    cloudflare.reset()
    run = run_playbook([{'mailsec.mta_sts.mta_sts_record': dict(cloudflare.module_args(), domains=domains, id='bulk250')}],
                       workdir=workdir)
    assert run.returncode == 0, run
    assert cloudflare.api.counts()['POST batch'] == 2
    assert cloudflare.api.counts()['GET dns_records'] == 1
    assert all(_live(cloudflare, '_mta-sts.' + domain) == ['v=STSv1; id=bulk250;'] for domain in domains)


# Options that mean something: required ones refused at argument validation, other providers' options warned about.

def _warnings(run):
    return [line.split('[WARNING]:', 1)[1].strip() for line in run.output.splitlines() if '[WARNING]:' in line]


@pytest.mark.parametrize('provider, missing', [('rfc2136', 'server'), ('cloudflare', 'api_token'), ('zonefile', 'zone_file')])
def test_missing_required_option_is_refused_at_argument_validation_before_any_io(request, provider, missing, domain, workdir):
    backend = request.getfixturevalue(provider) if provider != 'zonefile' else None
    args = backend.module_args() if backend else {'provider': 'zonefile'}
    args.pop(missing, None)
    if backend:
        backend.reset()
    run = run_playbook([{'mailsec.mta_sts.mta_sts_record': dict(args, domain=domain, id='abc')}], workdir=workdir)
    assert run.returncode != 0
    assert run.result['msg'] == 'provider is %s but all of the following are missing: %s' % (provider, missing), run
    if backend:
        assert backend.messages() == 0


def test_values_from_the_environment_satisfy_required_options_and_never_warn(rfc2136, cloudflare, workdir):
    rfc_args = rfc2136.module_args()
    rfc_env = {'MAILSEC_RFC2136_SERVER': rfc_args.pop('server'), 'MAILSEC_RFC2136_KEY_NAME': rfc_args.pop('key_name'),
               'MAILSEC_RFC2136_KEY_SECRET': rfc_args.pop('key_secret')}
    cf_args = cloudflare.module_args()
    cf_env = {'CLOUDFLARE_API_TOKEN': cf_args.pop('api_token'), 'CLOUDFLARE_BASE_URL': cf_args.pop('base_url')}
    tasks = [
        {'mailsec.mta_sts.mta_sts_record': dict(rfc_args, domain='envfallback.alpha.example', id='env1')},
        {'mailsec.mta_sts.mta_sts_record': dict(cf_args, domain='envfallback.beta.example', id='env1')},
    ]
    run = run_playbook(tasks, env=dict(rfc_env, **cf_env), workdir=workdir)
    assert run.returncode == 0, run
    assert [result['changed'] for result in run.results] == [True, True]
    assert _warnings(run) == []
    assert _live(rfc2136, '_mta-sts.envfallback.alpha.example') == ['v=STSv1; id=env1;']
    assert _live(cloudflare, '_mta-sts.envfallback.beta.example') == ['v=STSv1; id=env1;']


def test_options_of_other_providers_warn_by_name_and_defaults_do_not(route53, rfc2136, domain, workdir):
    secret = 'tsig-secret-never-shown'
    foreign = dict(route53.module_args(), server='127.0.0.1', port=53, key_secret=secret, key_name='k', api_token=secret)
    own = rfc2136.module_args()      # its own options, with port given and key_algorithm left at its default
    run = run_playbook([
        {'mailsec.mta_sts.mta_sts_record': dict(foreign, domain=domain, id='warn1')},
        {'mailsec.mta_sts.tlsrpt_record': dict(own, domain=domain, rua=['mailto:r@alpha.example'])},
    ], workdir=workdir)
    assert run.returncode == 0, run
    assert _warnings(run) == [
        'api_token is an option of provider cloudflare; provider route53 ignores it',
        'key_name is an option of provider rfc2136; provider route53 ignores it',
        'key_secret is an option of provider rfc2136; provider route53 ignores it',
        'port is an option of provider rfc2136; provider route53 ignores it',
        'server is an option of provider rfc2136; provider route53 ignores it',
    ]
    assert secret not in run.output


def test_module_defaults_for_the_dns_group_keep_working(rfc2136, domain, workdir):
    defaults = rfc2136.module_args()
    run = run_playbook([
        {'module_defaults': {'group/mailsec.mta_sts.dns': defaults},
         'mailsec.mta_sts.mta_sts_record': {'domain': domain, 'id': 'grp1'}},
        {'module_defaults': {'group/mailsec.mta_sts.dns': defaults},
         'mailsec.mta_sts.tlsrpt_record': {'domain': domain, 'rua': ['mailto:r@alpha.example']}},
    ], workdir=workdir)
    assert run.returncode == 0, run
    assert [result['changed'] for result in run.results] == [True, True]
    assert _warnings(run) == []
    assert _live(rfc2136, '_mta-sts.' + domain) == ['v=STSv1; id=grp1;']


# Errors that say what to check, from a real server (Knot behind the counting proxy) or a real socket.

def _rfc2136_failure(args, domain, workdir):
    run = run_playbook([{'mailsec.mta_sts.mta_sts_record': dict(args, domain=domain, id='abc')}], verbosity=3, workdir=workdir)
    assert run.returncode != 0
    assert run.result['changed'] is False
    return run


def test_rfc2136_zone_the_server_does_not_serve_is_named_as_a_refusal(rfc2136, workdir):
    args = rfc2136.module_args()
    run = _rfc2136_failure(args, 'elsewhere.example', workdir)
    # Knot answers REFUSED unsigned; the message says so, not "response requires a TSIG".
    assert run.result['msg'] == (
        'query _mta-sts.elsewhere.example SOA: server %s port %d refused the query for _mta-sts.elsewhere.example '
        '(REFUSED): it does not serve that zone; check server, or give zone' % (args['server'], args['port'])), run
    assert args['key_secret'] not in run.output


def test_rfc2136_unknown_tsig_key_name_is_named(rfc2136, domain, workdir):
    args = dict(rfc2136.module_args(), key_name='no-such-key')
    run = _rfc2136_failure(args, domain, workdir)
    assert "does not know TSIG key 'no-such-key' with algorithm hmac-sha256 (BADKEY); check key_name and key_algorithm" \
        in run.result['msg'], run
    assert args['key_secret'] not in run.output


def test_rfc2136_nothing_listening_is_a_refused_connection(domain, workdir):
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    # Closed again: nothing listens on that port now.
    run = _rfc2136_failure({'provider': 'rfc2136', 'server': '127.0.0.1', 'port': port}, domain, workdir)
    assert run.result['msg'].endswith('server 127.0.0.1 port %d refused the TCP connection: nothing listens there; '
                                      'check server and port' % port), run


def test_rfc2136_server_that_never_answers_is_a_timeout(domain, workdir):
    with socket.socket() as silent:
        # Connections complete in the kernel's backlog, and nothing ever answers them.
        silent.bind(('127.0.0.1', 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        run = _rfc2136_failure({'provider': 'rfc2136', 'server': '127.0.0.1', 'port': port, 'timeout': 1}, domain, workdir)
    assert run.result['msg'].endswith('no answer from server 127.0.0.1 port %d within 1.0 seconds; check server and port, '
                                      'and that TCP to it is not filtered' % port), run
