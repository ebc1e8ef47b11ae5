"""Outgoing webhooks: endpoints an organization registers, signed deliveries of its domain
events (Standard Webhooks), retries on a published schedule, tests and redeliveries."""
