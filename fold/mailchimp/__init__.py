"""Mailchimp: a segment's contacts synced to a static segment (tag) of an audience (SPEC 5)."""
