"""Coverage-guided fuzzing of the SIP core with atheris (libFuzzer): the same target as the
hypothesis fuzzers (``target.py``: datagrams with the default or tight limits, and streams cut
into chunks), instrumented so that libFuzzer steers towards new branches of ``sipsvc.sip``.

    .venv/bin/python tests/fuzz/atheris_sip.py -runs=200000 -max_len=8192 CORPUS_DIR

``tests/fuzz/test_atheris.py`` runs it for a bounded number of inputs in CI, seeded with RFC 4475
and everyday messages. A crash is any exception other than the documented ``SipParseError``
handling in ``target.py``; libFuzzer saves the input that caused it (``-artifact_prefix``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["sipsvc"]):
    from sipsvc.sip.parser import DEFAULT_LIMITS, Limits
    from tests.fuzz.target import exercise, exercise_stream

TIGHT = Limits(max_message=2048, max_headers=12, max_line=120, max_uri=60, max_vias=3)


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0], data[1:]
    limits = TIGHT if mode & 1 else DEFAULT_LIMITS
    if mode & 2:
        size = (mode >> 2) + 1  # chunks of 1 to 64 bytes
        exercise_stream([rest[i:i + size] for i in range(0, len(rest), size)], limits)
    else:
        exercise(rest, limits)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
