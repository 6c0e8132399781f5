"""Integrations with other Django applications, each behind its own extra."""
