"""Operator commands of ``sipsvc`` (accounts, devices, registrations, sync, quickcall): clients
of the HTTP API of a running service, never of its store."""

from .commands import add_commands, run

__all__ = ["add_commands", "run"]
