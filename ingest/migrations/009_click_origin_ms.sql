-- Click event version 2 (docs/EVENTS.md): how long the worker's resolve at the origin took, in
-- ms, on clicks the origin answered. NULL: not measured (another tier answered, or the click
-- came as version 1, or before this column). Nullable without a default: a catalog change only,
-- no table rewrite and no scan, so every stored click stays as it was.
ALTER TABLE clicks ADD COLUMN origin_ms integer;
