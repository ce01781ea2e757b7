import pytest

from ansible_collections.mailsec.mta_sts.plugins.module_utils._errors import ValidationError
from ansible_collections.mailsec.mta_sts.plugins.module_utils._tlsrpt import (
    parse_tlsrpt_record, render_tlsrpt_record, validate_rua,
)


def error_of(function, *args):
    with pytest.raises(ValidationError) as err:
        function(*args)
    return str(err.value)


@pytest.mark.parametrize('record, rua, extensions', [
    ('v=TLSRPTv1; rua=mailto:reports@example.com', ['mailto:reports@example.com'], {}),
    ('v=TLSRPTv1;rua=mailto:reports@example.com;', ['mailto:reports@example.com'], {}),
    ('v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt', ['https://reporting.example.com/v1/tlsrpt'], {}),
    ('v=TLSRPTv1 ;\trua=mailto:a@example.com,https://r.example.com:8443/tls/rpt?x=1 ; ',
     ['mailto:a@example.com', 'https://r.example.com:8443/tls/rpt?x=1'], {}),
    ('v=TLSRPTv1; rua=mailto:a@example.com , \thttps://r.example.com\t,  mailto:b@example.org',
     ['mailto:a@example.com', 'https://r.example.com', 'mailto:b@example.org'], {}),
    ('v=TLSRPTv1; rua=mailto:a@example.com,mailto:a@example.com', ['mailto:a@example.com'], {}),
    ('v=TLSRPTv1; ext=1; rua=MAILTO:Reports@Example.COM; x.y=a:b', ['MAILTO:Reports@Example.COM'], {'ext': '1', 'x.y': 'a:b'}),
    ('v=TLSRPTv1; rua=mailto:tls%2Creports+x@example.com', ['mailto:tls%2Creports+x@example.com'], {}),
    ('v=TLSRPTv1; rua=HTTPS://R.example.com/path%21', ['HTTPS://R.example.com/path%21'], {}),
])
def test_parse_valid(record, rua, extensions):
    assert parse_tlsrpt_record(record) == {'version': 'TLSRPTv1', 'rua': rua, 'extensions': extensions}


def test_parse_concatenates_strings():
    assert parse_tlsrpt_record(['v=TLSRPTv1; rua=mailto:rep', 'orts@example.com'])['rua'] == ['mailto:reports@example.com']
    assert parse_tlsrpt_record((b'v=TLSRPTv1; ', b'rua=https://r.example.com/'))['rua'] == ['https://r.example.com/']


@pytest.mark.parametrize('record, message', [
    ('v=TLSRPTv1; rua=noscheme', "rua 'noscheme': must start with mailto: or https:"),
    ('v=TLSRPTv1; rua=http://r.example.com/', "rua 'http://r.example.com/': must start with mailto: or https:"),
    ('v=TLSRPTv1; rua=', "rua '': must start with mailto: or https:"),
    ('v=TLSRPTv1; rua=mailto:a@example.com,', "rua '': must start with mailto: or https:"),
    ('v=TLSRPTv1; rua=mailto:a@example.com,,mailto:b@example.com', "rua '': must start with mailto: or https:"),
    ('v=TLSRPTv1; rua=mailto:a@example.com https://r.example.com',
     "rua 'mailto:a@example.com https://r.example.com': may contain only URI characters; "
     'spaces, ",", ";" and "!" must be percent-encoded'),
    ('v=TLSRPTv1; rua=mailto:a!b@example.com', "rua 'mailto:a!b@example.com': may contain only URI characters; "
     'spaces, ",", ";" and "!" must be percent-encoded'),
    ('v=TLSRPTv1', "tlsrpt record 'v=TLSRPTv1': must have at least one field after v=TLSRPTv1"),
    ('v=TLSRPTv1; ext=1', "tlsrpt record 'v=TLSRPTv1; ext=1': must have a rua= field"),
    ('v=TLSRPTv1; RUA=mailto:a@example.com', "tlsrpt record 'v=TLSRPTv1; RUA=mailto:a@example.com': must have a rua= field"),
    ('v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com',
     "tlsrpt record 'v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com': must have exactly one rua= field"),
    ('rua=mailto:a@example.com; v=TLSRPTv1', "tlsrpt record 'rua=mailto:a@example.com; v=TLSRPTv1': must start with the field v=TLSRPTv1"),
    ('v=tlsrptv1; rua=mailto:a@example.com', "tlsrpt record 'v=tlsrptv1; rua=mailto:a@example.com': must start with the field v=TLSRPTv1"),
    ('v=STSv1; id=abc', "tlsrpt record 'v=STSv1; id=abc': must start with the field v=TLSRPTv1"),
    ('v=TLSRPTv1;; rua=mailto:a@example.com', "tlsrpt record 'v=TLSRPTv1;; rua=mailto:a@example.com': fields must not be empty (\";;\")"),
    ('v=TLSRPTv1; rua=mailto:a@example.com; ext=a=b',
     "extension ext 'a=b': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
    ('v=TLSRPTv1; rua=mailto:a@example.com; _x=1',
     "extension name '_x': must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\""),
    ('v=TLSRPTv1; rua=mailto:a@example.com; x=1; x=2', "extension name 'x': appears more than once"),
])
def test_parse_invalid(record, message):
    assert error_of(parse_tlsrpt_record, record) == message


def test_parse_wrong_type():
    assert error_of(parse_tlsrpt_record, None) == 'tlsrpt record None: must be a string or a list of strings'


@pytest.mark.parametrize('uri', [
    'mailto:tlsrpt@example.com',
    'Mailto:first.last@sub.example.co.uk',
    'mailto:tlsrpt@example.com?subject=TLS%20report',
    "mailto:a+b-c_d=e%40f'g*h$i&j/k~l@example.com",
    'https://example.com',
    'https://example.com/',
    'https://r.example.com:443/tlsrpt',
    'https://r.example.com:1/a/b/c?x=1&y=2#frag',
    'https://r.example.com/a%2Cb%21c',
    'https://r.example.com/@user:x',
    'HTTPS://R.EXAMPLE.COM/X',
])
def test_validate_rua_valid(uri):
    assert validate_rua([uri]) == [uri]
    assert validate_rua(uri) == [uri]


@pytest.mark.parametrize('uri, rule', [
    ('noscheme', 'must start with mailto: or https:'),
    ('reports@example.com', 'must start with mailto: or https:'),
    ('ftp://r.example.com', 'must start with mailto: or https:'),
    ('mailto:', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:example.com', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:@example.com', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:a..b@example.com', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:.a@example.com', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:a@b@example.com', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:?to=a@example.com', 'mailto: must be followed by an address local-part@domain'),
    ('mailto:a@example.com#x', 'mail domain labels must be'),
    ('mailto:a@localhost', 'mail domain must have at least two labels'),
    ('mailto:a@exa_mple.com', 'mail domain labels must be'),
    ('mailto:a@', 'mail domain must not be empty'),
    ('https:r.example.com', 'https: must be followed by // and a host name'),
    ('https://', 'host name must not be empty'),
    ('https:///tlsrpt', 'host name must not be empty'),
    ('https://localhost/tlsrpt', 'host name must have at least two labels'),
    ('https://192.0.2.1/tlsrpt', 'host name the last label must not be all digits'),
    ('https://[2001:db8::1]/tlsrpt', 'port must be a number from 1 to 65535'),
    ('https://user@r.example.com/', 'https: URI must not contain user information'),
    ('https://r.example.com:0/', 'port must be a number from 1 to 65535'),
    ('https://r.example.com:65536/', 'port must be a number from 1 to 65535'),
    ('https://r.example.com:/', 'port must be a number from 1 to 65535'),
    ('https://r.example.com:44a/', 'port must be a number from 1 to 65535'),
    ('https://r.example.com/a b', 'may contain only URI characters'),
    ('https://r.example.com/a,b', 'a comma separates URIs in the record'),
    ('https://r.example.com/a;b', 'may contain only URI characters'),
    ('https://r.example.com/a!b', 'may contain only URI characters'),
    ('https://r.example.com/caf\u00e9', 'may contain only URI characters'),
    ('https://r.example.com/"x"', 'may contain only URI characters'),
    ('https://r.example.com/%zz', '"%" must start a percent-encoding (%XX)'),
    ('https://r.example.com/100%', '"%" must start a percent-encoding (%XX)'),
])
def test_validate_rua_invalid(uri, rule):
    message = error_of(validate_rua, [uri])
    assert message.startswith('rua %r: ' % uri)
    assert rule in message


@pytest.mark.parametrize('value, message', [
    ([], 'rua []: must be one or more mailto: or https: URIs'),
    (None, 'rua None: must be one or more mailto: or https: URIs'),
    ({'mailto:a@example.com': 1}, "rua {'mailto:a@example.com': 1}: must be one or more mailto: or https: URIs"),
    ([None], 'rua None: must be a string'),
])
def test_validate_rua_shape(value, message):
    assert error_of(validate_rua, value) == message


def test_validate_rua_field_name_and_dedupe():
    assert validate_rua(['mailto:a@example.com', 'https://r.example.com', 'mailto:a@example.com']) == [
        'mailto:a@example.com', 'https://r.example.com']
    assert error_of(validate_rua, ['x'], 'tlsrpt_rua') == "tlsrpt_rua 'x': must start with mailto: or https:"


def test_render():
    assert render_tlsrpt_record('mailto:a@example.com') == 'v=TLSRPTv1; rua=mailto:a@example.com'
    assert render_tlsrpt_record(['mailto:a@example.com', 'https://r.example.com/tlsrpt']) == (
        'v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/tlsrpt')
    assert render_tlsrpt_record(['mailto:a@example.com'], {'z': '1', 'a': 'x'}) == 'v=TLSRPTv1; rua=mailto:a@example.com; a=x; z=1'


@pytest.mark.parametrize('args, message', [
    (([],), 'rua []: must be one or more mailto: or https: URIs'),
    ((['noscheme'],), "rua 'noscheme': must start with mailto: or https:"),
    ((['mailto:a@example.com'], {'rua': 'mailto:b@example.com'}), "extension name 'rua': is a standard field, not an extension"),
    ((['mailto:a@example.com'], {'x': 'a;b'}),
     "extension x 'a;b': must be one or more printable ASCII characters other than space, \";\" and \"=\""),
])
def test_render_invalid(args, message):
    assert error_of(render_tlsrpt_record, *args) == message


@pytest.mark.parametrize('rua, extensions', [
    (['mailto:a@example.com'], {}),
    (['mailto:a@example.com', 'https://r.example.com:8443/x?y=1'], {'ext': 'v1', 'b': '2'}),
])
def test_round_trip(rua, extensions):
    record = render_tlsrpt_record(rua, extensions)
    assert parse_tlsrpt_record(record) == {'version': 'TLSRPTv1', 'rua': rua, 'extensions': extensions}
    parsed = parse_tlsrpt_record(record)
    assert render_tlsrpt_record(parsed['rua'], parsed['extensions']) == record


@pytest.mark.parametrize('value', [
    'https://r.example/t?a=1,mailto:x@example.com',
    'https://r.example/t?a=1,2',
    ['mailto:a@example.com', 'https://r.example/t?a=1,2'],
])
def test_a_comma_is_refused_never_split(value):
    message = error_of(validate_rua, value, 'expect.rua')
    assert message.startswith('expect.rua ')
    assert message.endswith(': must not contain a comma: a comma separates URIs in the record, so give several URIs '
                            'as a list, and percent-encode a comma inside a URI as %2C')


def test_a_percent_encoded_comma_is_kept():
    assert validate_rua('https://r.example/t?a=1%2C2') == ['https://r.example/t?a=1%2C2']
