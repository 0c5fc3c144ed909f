"""What the operator commands print: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
import time
from typing import Sequence, TextIO


def cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    return str(value)


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], out: TextIO = sys.stdout,
          empty: str = "(none)") -> None:
    """``columns``: (key, header) pairs; one line per row, columns padded to their widest."""
    if not rows:
        print(empty, file=out)
        return
    lines = [[header for _, header in columns]] + [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    for line in lines:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip(), file=out)


def pairs(document: dict, out: TextIO = sys.stdout) -> None:
    """A document as ``dotted.key  value`` lines, keys sorted, nested objects flattened."""
    flat: list[tuple[str, str]] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and value:
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else key, value[key])
        else:
            flat.append((prefix, json.dumps(value) if isinstance(value, (dict, list)) else cell(value)))

    walk("", document)
    width = max((len(key) for key, _ in flat), default=0)
    for key, text in flat:
        print(f"{key.ljust(width)}  {text}", file=out)


def as_json(value: object, out: TextIO = sys.stdout, *, one_line: bool = False) -> None:
    if one_line:
        print(json.dumps(value, sort_keys=True), file=out, flush=True)
    else:
        print(json.dumps(value, indent=2, sort_keys=True), file=out)


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def seconds_from_now(at: float | None, now: float) -> str:
    return "-" if not at else f"{max(0, round(at - now))} s"
