"""Encryption at rest: the stored-file format and the keys (issue 11)."""
