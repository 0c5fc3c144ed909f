"""Live registration events (register, refresh, unregister, expired) for API streams."""
