"""Helpers shared by the test suites (builders of rows, process runners)."""
