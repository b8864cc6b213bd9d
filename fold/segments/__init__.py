"""Segments (SPEC 2): stored queries and lists over records."""
