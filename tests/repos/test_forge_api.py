"""Where a repository's pull requests may send its token: the forge API on its own host."""

from __future__ import annotations

import pytest

from forgeyard.kernel.errors import InvalidInputError
from forgeyard.repos.sources import forge_api_url


@pytest.mark.parametrize(
    ("clone_url", "provider", "expected"),
    [
        ("https://github.com/acme/api.git", "github", "https://api.github.com"),
        ("https://ghe.acme.example/acme/api.git", "github", "https://ghe.acme.example/api/v3"),
        ("https://gitlab.com/acme/api.git", "gitlab", "https://gitlab.com/api/v4"),
        ("https://git.acme.example/a/b/api.git", "gitlab", "https://git.acme.example/api/v4"),
    ],
)
def test_the_default_api_is_the_clone_hosts(clone_url: str, provider: str, expected: str) -> None:
    assert forge_api_url(clone_url, provider, None) == expected


@pytest.mark.parametrize(
    "chosen",
    [
        "https://collector.example/api/v3",
        "http://github.com/api/v3",  # not https
        "https://api.github.com.collector.example/",
        "https://gitlab.com/api/v4",  # another forge than the clone's
    ],
)
def test_any_other_host_is_refused(chosen: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        forge_api_url("https://github.com/acme/api.git", "github", chosen)
    assert refused.value.details["field"] == "pull_requests.api_url"


def test_github_coms_api_host_and_the_clone_host_are_allowed() -> None:
    clone = "https://github.com/acme/api.git"
    assert forge_api_url(clone, "github", "https://api.github.com") == "https://api.github.com"
    own = "https://ghe.acme.example/api/v3"
    assert forge_api_url("https://ghe.acme.example/a/b.git", "github", own) == own
