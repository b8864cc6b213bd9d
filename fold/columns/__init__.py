"""The column index: segment counts and pages answered from memory, exactly.

Each (bucket, type) that segments are asked about gets a `Store` in this process: every
record as a row, the document paths segments test as dictionary-encoded columns, Fold's
own columns beside them. Before each use the store applies whatever the bucket's change
clock says was written since it last looked, so a write is in the very next count, from
any process. The database stays the reference: what this cannot answer exactly (contact
segments, a transaction that has written the bucket itself, deep pages) goes to SQL.

Entry points (`fold.columns.index`): `ColumnIndex` (what an application keeps, attached to
its session factories), `matching`, `count`, `page_uids`. The index only reads; the
records' change clock (`fold.records.clock`) is stamped by every writer.
"""
