"""Node names in branches, dialog tags and TCP connection ids: what one endpoint makes, every
other reads back as that endpoint, and nothing else (another UA's branch, an old pid-only name)
is taken for a node."""

from __future__ import annotations

import asyncio
import os

from sipsvc.sip.transaction import TimerConfig
from sipsvc.transport.endpoint import SipEndpoint, _branch_node, _connection_node, _tag_node


def endpoint() -> SipEndpoint:
    loop = asyncio.new_event_loop()
    try:
        return SipEndpoint(timers=TimerConfig(0.5, 4.0, 5.0), handlers={}, loop=loop)
    finally:
        loop.close()


def test_each_endpoint_has_its_own_node_name_and_reads_it_back():
    first, second = endpoint(), endpoint()
    assert first.node != second.node  # two nodes in one process (or pid reuse across hosts)
    assert first.node.startswith(f"{os.getpid()}.")
    assert _branch_node(first.new_branch()) == first.node
    assert _tag_node(first.new_tag()) == first.node
    assert _connection_node(f"tcp-{first.node}-17") == first.node


def test_foreign_and_old_names_are_no_node():
    assert _branch_node("z9hG4bK776asdhds") is None
    assert _branch_node("z9hG4bK-1234-abcdef") is None  # the old pid-only form
    assert _branch_node("z9hG4bK-12.zzzzzzzz-abcdef") is None
    assert _tag_node("1234-abcdef") is None
    assert _tag_node("as8d7f6a") is None
    assert _connection_node("tcp-1234-5") is None
    assert _connection_node("udp-12.0123abcd-5") is None
    assert _connection_node("") is None
