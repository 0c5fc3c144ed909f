"""Configuration: precedence of file, environment and flags, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipsvc.config import SETTINGS, Config, ConfigError, HostPort, load_config, parse_host_port


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:8000", HostPort("127.0.0.1", 8000)),
    ("0.0.0.0:5060", HostPort("0.0.0.0", 5060)),
    ("localhost:1", HostPort("localhost", 1)),
    ("[::1]:5060", HostPort("::1", 5060)),
])
def test_host_port_parses(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["8000", "host:", ":80", "host:99999", "::1:5060", "[::1]5060", "h:x"])
def test_host_port_refuses(text):
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_defaults_when_nothing_is_given():
    assert load_config(env={}) == Config()
    assert str(Config().http) == "127.0.0.1:8000" and str(Config().sip) == "127.0.0.1:5060"


def test_file_then_environment_then_flags(tmp_path: Path):
    path = tmp_path / "sipsvc.toml"
    path.write_text('http = "0.0.0.0:8080"\nsip = "0.0.0.0:5070"\n[api]\ntoken_ttl = 60\n')
    config = load_config(path, env={})
    assert config.http == HostPort("0.0.0.0", 8080) and config.token_ttl == 60
    config = load_config(path, env={"SIPSVC_HTTP": "127.0.0.2:81", "SIPSVC_TOKEN_TTL": "30"})
    assert config.http == HostPort("127.0.0.2", 81) and config.token_ttl == 30
    config = load_config(path, env={"SIPSVC_HTTP": "127.0.0.2:81"}, overrides={"http": "127.0.0.3:82", "sip": None})
    assert config.http == HostPort("127.0.0.3", 82) and config.sip == HostPort("0.0.0.0", 5070)


def test_the_example_file_shows_every_setting_with_its_default():
    example = Path(__file__).resolve().parents[2] / "config" / "sipsvc.example.toml"
    assert load_config(example, env={}) == Config()
    text = example.read_text()
    for setting in SETTINGS:
        assert f"{setting.name.rpartition('.')[2]} = " in text, setting.name
        assert setting.env in text, setting.env


@pytest.mark.parametrize("toml,named", [
    ('htp = "1.2.3.4:5"', "htp"),
    ('[api]\ntoken_tl = 5', "api.token_tl"),
    ('http = "nonsense"', "http"),
    ('sip = 5060', "sip"),
    ('[api]\ntoken_ttl = 0', "api.token_ttl"),
    ('[api]\nmax_body_bytes = "big"', "api.max_body_bytes"),
    ('log_level = "loud"', "log_level"),
    ('http = ', "config"),
    ('[quickcall]\nallow_anonymous = "maybe"', "quickcall.allow_anonymous"),
    ('[quickcall]\nallow_anonymous = 1', "quickcall.allow_anonymous"),
    ('[quickcall]\ngateway = "http://pbx.example.com"', "quickcall.gateway"),
    ('[quickcall]\ngateway = "sip:100@pbx.example.com"', "quickcall.gateway"),
    ('[quickcall]\ngateway = "sip:pbx.example.com;transport=tcp"', "quickcall.gateway"),
    ('[quickcall]\ngateway = "sip:{number}x@pbx.example.com"', "quickcall.gateway"),
    ('[quickcall]\ngateway = "sip:{user}@pbx.example.com"', "quickcall.gateway"),
    ('[quickcall]\ngateway = "sip:pbx.example.com:99999"', "quickcall.gateway"),
])
def test_a_bad_file_names_the_setting(tmp_path: Path, toml, named):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value).startswith(f"{named}:")


def test_a_bad_environment_variable_names_the_setting():
    with pytest.raises(ConfigError, match="^sip:.*environment"):
        load_config(env={"SIPSVC_SIP": "x"})


def test_a_missing_config_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="^config: cannot read"):
        load_config(tmp_path / "absent.toml", env={})


def test_anonymous_quickcalls_can_be_turned_off(tmp_path: Path):
    assert Config().quickcall_allow_anonymous is True
    path = tmp_path / "sipsvc.toml"
    path.write_text("[quickcall]\nallow_anonymous = false\n")
    assert load_config(path, env={}).quickcall_allow_anonymous is False
    assert load_config(env={"SIPSVC_QUICKCALL_ALLOW_ANONYMOUS": "false"}).quickcall_allow_anonymous is False
    assert load_config(path, env={"SIPSVC_QUICKCALL_ALLOW_ANONYMOUS": "true"}).quickcall_allow_anonymous is True


@pytest.mark.parametrize("value,expected", [
    ("sip:127.0.0.1:5080", "sip:127.0.0.1:5080"),
    (" sip:{number}@pbx.example.com;user=phone ", "sip:{number}@pbx.example.com;user=phone"),
    ("", None),
])
def test_the_quickcall_gateway(value, expected):
    assert load_config(env={"SIPSVC_QUICKCALL_GATEWAY": value}).quickcall_gateway == expected


def test_the_hostile_input_limits_reach_the_core_and_the_tcp_adapter(tmp_path: Path):
    from sipsvc.app import sip_limits, tcp_limits

    path = tmp_path / "limits.toml"
    path.write_text("[transport]\nmax_headers = 40\nmax_vias = 9\ntcp_max_connections = 50\n")
    config = load_config(path, env={"SIPSVC_MAX_LINE_LENGTH": "1000", "SIPSVC_TCP_MESSAGE_TIMEOUT": "2.5"})
    limits = sip_limits(config)
    assert (limits.max_headers, limits.max_vias, limits.max_line, limits.max_uri) == (40, 9, 1000, 2048)
    assert limits.max_message == config.max_message_bytes
    tcp = tcp_limits(config)
    assert (tcp.max_connections, tcp.message_timeout, tcp.max_per_source) == (50, 2.5, 128)


def test_tcp_buffered_bytes_must_hold_a_whole_message():
    with pytest.raises(ConfigError, match="^transport.tcp_max_buffered_bytes: must not be less"):
        load_config(env={"SIPSVC_TCP_MAX_BUFFERED_BYTES": "1000"})
    with pytest.raises(ConfigError, match="^transport.tcp_message_timeout:"):
        load_config(env={"SIPSVC_TCP_MESSAGE_TIMEOUT": "0"})
