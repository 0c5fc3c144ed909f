"""check-sync NOTIFY: the pure message (``message``) and the service that sends it (``service``)."""
