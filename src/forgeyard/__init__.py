"""Forgeyard: one self-hosted service that keeps an organization's repositories healthy."""

__version__ = "0.1.0"
