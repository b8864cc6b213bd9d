"""The audit trail: one entry with a field-level diff for every write (SPEC 6)."""
