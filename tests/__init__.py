"""Tests; a package so that `tests.strategies` is importable from every test directory."""
