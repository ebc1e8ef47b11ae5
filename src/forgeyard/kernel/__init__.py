"""Shared foundations every layer may use: database, errors, ids, pagination, logging, metrics."""
