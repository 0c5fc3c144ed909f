"""The TCP connection gate: per-source and total caps, and places freed on close."""

from __future__ import annotations

from sipsvc.transport.tcp import ConnectionGate, TcpLimits


def test_the_gate_counts_by_source_and_in_total_and_frees_places():
    gate = ConnectionGate(TcpLimits(max_per_source=2, max_connections=3))
    assert gate.admit("192.0.2.1") is None and gate.admit("192.0.2.1") is None
    assert gate.admit("192.0.2.1") == "tcp_refused_per_source"
    assert gate.admit("192.0.2.2") is None
    assert gate.admit("192.0.2.3") == "tcp_refused_total"
    assert (gate.total, dict(gate.per_source)) == (3, {"192.0.2.1": 2, "192.0.2.2": 1})
    gate.release("192.0.2.2")
    assert "192.0.2.2" not in gate.per_source  # no entry left behind per address ever seen
    assert gate.admit("192.0.2.3") is None
    gate.release("192.0.2.1")
    assert gate.admit("192.0.2.1") is None and gate.total == 3
