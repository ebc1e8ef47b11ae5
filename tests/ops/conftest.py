from tests.identity.conftest import tenants  # noqa: F401  (Acme's people and Globex's owner)
