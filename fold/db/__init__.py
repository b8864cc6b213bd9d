"""Storage: tables, engines and migrations, the same code on SQLite and PostgreSQL."""
