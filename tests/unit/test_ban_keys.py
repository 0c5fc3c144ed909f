"""The keys of the failure-counting script share one Redis Cluster hash slot (one source each),
and the per-username count stays in its account's slot."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from sipsvc.store import keys


@pytest.mark.parametrize("ip", ["192.0.2.7", "2001:db8::1", "127.0.0.1"])
def test_a_source_keys_share_one_slot(ip):
    script_keys = [keys.source_failures(ip), keys.user_source_failures(ip, "a" * 32, "Alice"),
                   keys.source_ban(ip), keys.user_source_ban(ip, "a" * 32, "Alice")]
    assert len({key_slot(key.encode()) for key in script_keys}) == 1
    assert keys.user_source_ban(ip, "a" * 32, "Alice") == keys.user_source_ban(ip, "a" * 32, "alice")


def test_the_username_count_lives_with_its_account():
    account = "b" * 32
    assert key_slot(keys.username_failures(account).encode()) == key_slot(keys.account(account).encode())
