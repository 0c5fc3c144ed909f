"""The pure SIP core (RFC 3261): parsing, transactions and digest authentication.

Standard library only: no sockets, no asyncio, no clock. Built from the registrar issue on.
"""
