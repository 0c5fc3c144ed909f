"""``sipsvc config check FILE``: exit 0 with a short summary for a usable file, exit 2 with the
one-line error naming the setting otherwise (the same validation ``sipsvc serve`` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sipsvc.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "sipsvc.example.toml"


def test_the_example_file_is_valid_and_differs_from_nothing(capsys):
    assert main(["config", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{EXAMPLE}: valid"
    assert "HTTP API on 127.0.0.1:8000, SIP on udp+tcp 127.0.0.1:5060" in out[1]
    assert out[-1].strip() == "differ from the defaults: none"


def test_the_summary_names_what_the_file_changes_and_hides_secrets(tmp_path, capsys):
    path = tmp_path / "sipsvc.toml"
    path.write_text('http = "0.0.0.0:8080"\nredis_url = "redis://:hunter2@db:6379/0"\n'
                    'admin_token = "very-secret-token"\nworkers = 4\nlog_format = "json"\n'
                    '[registrar]\nmax_contacts = 3\n')
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "HTTP API on 0.0.0.0:8080" in out and "4 workers" in out and "format json" in out
    assert "store redis://:***@db:6379/0" in out
    assert "hunter2" not in out and "very-secret-token" not in out
    assert ("differ from the defaults: http, redis_url, admin_token, log_format, workers, "
            "registrar.max_contacts") in out


@pytest.mark.parametrize("toml,line", [
    ('[registrar]\nmax_expires = "long"', "registrar.max_expires: invalid literal for int() with base 10: 'long' (from {path})"),
    ('[api]\ntoken_tll = 5', "api.token_tll: unknown setting in {path}"),
    ('log_format = "xml"', "log_format: expected text or json, got 'xml' (from {path})"),
    ('sip_trace = "sometimes"', "sip_trace: expected true or false, got 'sometimes' (from {path})"),
    ('[registrar]\nmax_expires = 30', "registrar.max_expires: must not be shorter than min_expires"),
])
def test_a_bad_file_exits_2_with_one_line_naming_the_setting(tmp_path, capsys, toml, line):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"sipsvc: error: {line.format(path=path)}"]


def test_the_environment_applies_only_when_asked(tmp_path, capsys, monkeypatch):
    path = tmp_path / "sipsvc.toml"
    path.write_text('http = "0.0.0.0:8080"\n')
    monkeypatch.setenv("SIPSVC_HTTP", "nonsense")
    assert main(["config", "check", str(path)]) == 0
    capsys.readouterr()
    assert main(["config", "check", "--with-env", str(path)]) == 2
    assert capsys.readouterr().err.startswith("sipsvc: error: http: ")


def test_the_command_line_exit_status(tmp_path):
    """As an operator runs it: the installed entry point, a real process."""
    good = subprocess.run([sys.executable, "-m", "sipsvc", "config", "check", str(EXAMPLE)],
                          capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and good.stdout.startswith(f"{EXAMPLE}: valid"), good.stderr
    missing = tmp_path / "absent.toml"
    bad = subprocess.run([sys.executable, "-m", "sipsvc", "config", "check", str(missing)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"sipsvc: error: config: cannot read {missing}: No such file or directory"
