"""Who is calling and what their policy lets them do (SPEC 7)."""
