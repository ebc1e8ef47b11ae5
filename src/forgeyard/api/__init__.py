"""The HTTP API: the application factory and the only place that imports every router."""

from forgeyard.api.app import create_app

__all__ = ["create_app"]
