"""The staff web interface at /ui (SPEC 11): server-rendered pages over the services."""
