"""Jobs (SPEC 3): bulk actions run in the background, in batches, resumable and undoable."""
