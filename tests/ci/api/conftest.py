"""The CI API on the shared set-up: Acme's people and Globex's owner."""

from tests.identity.conftest import tenants  # noqa: F401
