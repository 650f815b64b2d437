"""Scanners: malware checks of attachments before recipients are notified (issue 11)."""
