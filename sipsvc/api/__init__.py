"""The HTTP API (aiohttp): routes, the Kazoo envelope, error middleware and authentication.

Views call services; they never touch Redis or sockets.
"""
