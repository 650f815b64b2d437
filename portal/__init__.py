"""Sinetti: an open, self-hostable secure-message portal for public agencies."""

from portal.hookspecs import hookimpl

__all__ = ["hookimpl"]
