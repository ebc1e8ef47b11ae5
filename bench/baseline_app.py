"""The yardstick: a bare Starlette app answering what Forgeyard answers, with nothing else.

It is served the way ``forgeyard serve`` serves the real app (one uvicorn process, no log
config, no access log, no proxy headers), so the ratio measures the framework, middleware and
logging Forgeyard adds, not a difference in server setup.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def healthz(request: Request) -> JSONResponse:
    """Same body as Forgeyard's ``GET /healthz``, byte for byte."""
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])


def main() -> None:
    """Entry point of the subprocess the harness starts: ``python -m bench.baseline_app``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
