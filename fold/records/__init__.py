"""Records: the CRM data that segments select (SPEC 6)."""
