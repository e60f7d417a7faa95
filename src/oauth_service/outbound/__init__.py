"""Requests this server makes to URLs others registered, behind one SSRF guard (``http``)."""
