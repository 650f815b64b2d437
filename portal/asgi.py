"""The ASGI application for servers: ``hypercorn portal.asgi:app`` (or uvicorn, granian)."""

from portal.app import create_app

app = create_app()
