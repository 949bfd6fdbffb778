-- 0003: every migration records the oldest code version that still works on a
-- schema it was applied to (see reference_worlds/postgres/migrations.py), so code
-- older than the schema can decide whether it may run: rolling deploys.
--
-- Rows of migrations applied before this one get 1; only code that knows this
-- migration reads the column, and such code knows those migrations too.
-- Code from before this migration still refuses any newer schema (its own check).
--
-- min-code-version: 1

ALTER TABLE schema_version ADD COLUMN min_code_version integer NOT NULL DEFAULT 1;
ALTER TABLE schema_version ALTER COLUMN min_code_version DROP DEFAULT;
