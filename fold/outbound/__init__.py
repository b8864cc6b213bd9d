"""Calls to outside systems, through one client layer (SPEC 3.2)."""
