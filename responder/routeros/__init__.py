"""RouterOS language: pure rendering of commands and parsing of replies (no I/O)."""
