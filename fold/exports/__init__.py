"""Exports (SPEC 4): CSV, spreadsheets, PDF tables and address labels, with GDPR rules."""
