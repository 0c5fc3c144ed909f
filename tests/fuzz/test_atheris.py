"""Runs the atheris harness (``atheris_sip.py``) for a bounded number of inputs, seeded with
the fuzz corpus: libFuzzer exits non-zero on any crash, which fails this test. atheris is a
test dependency (``pip install -e '.[test]'`` on Linux)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.corpus import seeds

HARNESS = Path(__file__).with_name("atheris_sip.py")
RUNS = 20000


def test_atheris_finds_no_crash(tmp_path):
    if importlib.util.find_spec("atheris") is None:
        pytest.fail("atheris is not installed: pip install -e '.[test]' (Linux, CPython 3.11+)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index, data in enumerate(seeds()):
        # The harness reads its first byte as the mode: each seed as a datagram with the default
        # limits (0), and as a stream in 16-byte chunks (2 | 15 << 2).
        (corpus / f"datagram-{index}").write_bytes(bytes([0]) + data)
        (corpus / f"stream-{index}").write_bytes(bytes([2 | 15 << 2]) + data)
    result = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={RUNS}", "-max_len=4096", "-timeout=10", "-rss_limit_mb=2048",
         f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Done {RUNS} runs" in result.stderr, result.stderr[-2000:]
