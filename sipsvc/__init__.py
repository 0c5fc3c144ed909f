"""sipsvc: a SIP registrar and signalling service with a Kazoo-compatible devices API."""

__version__ = "0.1.0"
