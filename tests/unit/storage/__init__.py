"""The storage backends, each against the same suite."""
