"""Key providers: where the key-encryption keys live (issue 11)."""
