"""The rule language: rules → a normalised filter document → SQL, or a verdict in Python.

Knows nothing of HTTP or sessions: it takes rule documents, field schemas and a context of
look-ups (other segments, postcodes, the time) and returns plain data or SQLAlchemy Core.
"""
