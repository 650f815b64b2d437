"""Blueprints: one per page family. A view parses the request, calls a service, renders."""
