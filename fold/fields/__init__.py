"""Field schemas (SPEC 8): what fields each resource type keeps and of what type."""
