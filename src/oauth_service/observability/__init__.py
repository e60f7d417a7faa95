"""What the service tells its operators: structured logs and audit events, Prometheus metrics.

A leaf package: it imports no web framework and nothing of the protocol core, the database layer or the API,
so every layer (the protocol core included, for audit events) can report through it.
"""
