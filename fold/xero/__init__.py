"""Xero: invoices raised by bulk actions in a Xero organisation (SPEC 3.2)."""
