"""Buckets: the tenants."""
