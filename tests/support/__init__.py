"""Test support: what the project's own tests use in place of a kernel (not product code)."""
