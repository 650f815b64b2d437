"""The ASGI application for servers: ``hypercorn portal.asgi:app`` (or uvicorn, granian)."""

from portal import filemodes
from portal.app import create_app

filemodes.keep_files_private()  # before the settings create the data directory
app = create_app()
