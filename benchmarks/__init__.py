"""Benchmarks: scripts that print figures and ratios (``make bench`` runs them).

They are not tests: nothing here asserts a time. Each runs against real
servers (PostgreSQL, Redis) on the settings in :mod:`benchmarks.settings`.
"""
