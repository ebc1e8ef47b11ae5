"""The analysis API runs on the repository tests' set-up: real git repositories, committed
databases the worker reads, and Acme's people."""

from tests.repos.conftest import database, git_repo, settings, tenants  # noqa: F401
