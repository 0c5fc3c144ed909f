"""The registrar service (RFC 3261 §10.3): who may register, and the bindings they make."""
