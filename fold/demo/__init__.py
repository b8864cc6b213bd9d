"""Synthetic demo data: a believable membership organisation, deterministic per seed."""
