"""Dependency updates: manifests, registries, updates, update jobs and pull requests."""
