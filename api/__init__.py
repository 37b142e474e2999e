"""Tenderproof's application edge: settings, the command line, and (later) the HTTP API."""
