"""Thin asyncio adapters: UDP datagrams and TCP streams in, bytes out (RFC 3261 §18)."""
