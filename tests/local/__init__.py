"""Tests of the reference local World (a package, so module names cannot clash with other tests/ dirs)."""
