"""What the forge providers share: one API URL and one token, the SSRF-guarded client, and
sending one JSON request with a time limit and a size limit on the answer.

Nothing is retried here: opening or merging twice is not harmless, so a failure becomes a
:class:`ProviderError` whose ``retryable`` tells the job whether to try again later. The token
travels only in each request's headers (:meth:`RestProvider.headers`): it is not a default
header of the (possibly shared) client, not in ``repr``, not in any message.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any, ClassVar, Self

import httpx

from forgeyard import __version__
from forgeyard.deps.providers.base import ProviderError, PullRequestProvider
from forgeyard.kernel.errors import InvalidInputError
from forgeyard.kernel.http import OutboundPolicy, outbound_client, read_limited

USER_AGENT = f"forgeyard/{__version__}"
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a pull request with a huge body is still far below this


class RestProvider(PullRequestProvider):
    """Pass ``client`` (from :func:`~forgeyard.kernel.http.outbound_client`) to share a
    connection pool; otherwise one is made from ``policy`` and closed by :meth:`aclose` (or
    ``async with``). ``timeout`` applies to every request, whichever client sends it."""

    forge: ClassVar[str]  # the forge's name in messages: "GitHub"
    default_api_url: ClassVar[str]

    def __init__(
        self,
        *,
        token: str,
        api_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        policy: OutboundPolicy | None = None,
        timeout: float = 30.0,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        if not token:
            raise ValueError(f"a {self.forge} token is required")
        self.api_url = (api_url or self.default_api_url).rstrip("/")
        self._token = token
        self._owns_client = client is None
        self._client = client or outbound_client(policy or OutboundPolicy(), timeout=timeout)
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """Every request's headers, the token among them."""

    @abstractmethod
    def refusal(
        self, what: str, response: httpx.Response, body: bytes, *, not_mergeable: bool
    ) -> ProviderError:
        """What an answer other than the expected status means, in the forge's terms."""

    async def send(
        self,
        method: str,
        path: str,
        payload: dict[str, Any],
        *,
        expect: int,
        not_mergeable: bool = False,
    ) -> dict[str, Any]:
        """Send one request; the JSON object the forge answered, or a :class:`ProviderError`."""
        what = f"{method} {path}"
        try:
            async with self._client.stream(
                method,
                self.api_url + path,
                json=payload,
                headers=self.headers(),
                timeout=self.timeout,
            ) as response:
                body = await read_limited(response, self.max_bytes + 1)
        except httpx.TimeoutException:
            raise ProviderError(
                f"{self.forge} did not answer {what} within {self.timeout.read:g} s",
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ProviderError(
                f"could not reach {self.forge} for {what} ({reason})", retryable=True
            ) from None
        except InvalidInputError as exc:  # the outbound guard's refusal: never retried
            raise ProviderError(f"{what}: {exc.message}") from None
        status = response.status_code
        if len(body) > self.max_bytes:
            raise ProviderError(
                f"{self.forge}'s answer to {what} is larger than {self.max_bytes} bytes",
                status=status,
            )
        if status != expect:
            raise self.refusal(what, response, body, not_mergeable=not_mergeable)
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderError(
                f"{self.forge}'s answer to {what} is not a JSON object", status=status
            )
        return answer
