"""The `fold` command."""
