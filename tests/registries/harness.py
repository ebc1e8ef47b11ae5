"""Real package registries on loopback: a PyPI-compatible index and an npm registry.

``pypi-server`` (the ``pypiserver`` package, in the ``dev`` extra) serves a directory of
distributions; ``verdaccio`` (installed here with ``npm ci`` on first use, like tests/oidc)
takes ``npm publish``. Both bind a free port on 127.0.0.1, keep their state under the
caller's temp dir and are stopped by the process they started. Without Node.js and npm the
npm tests are skipped. ``scripted_server`` stands in front of either and misbehaves on cue
(500s, 429s with ``Retry-After``, answers that never come) for the paths it is told.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, node_available, npm_ci_once, stop

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 60.0  # seconds; verdaccio's first start after an install reads many files


@dataclass(frozen=True)
class Verdaccio:
    url: str
    token: str
    npmrc: Path  # a user config with the token, for npm publish / npm deprecate


# --- pypiserver ---------------------------------------------------------------------------


def write_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel of ``name`` ``version`` (one module, valid RECORD)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: forgeyard-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@contextmanager
def start_pypiserver(package_dir: Path, log_dir: Path) -> Iterator[str]:
    """Serves ``package_dir`` (read-only, no fallback to any public index); yields the URL."""
    executable = Path(sys.executable).with_name("pypi-server")
    if not executable.exists():
        pytest.skip("the PyPI registry tests need pypiserver (pip install -e '.[dev]')")
    port = free_port()
    command = [str(executable), "run", "-i", "127.0.0.1", "-p", str(port)]
    command += ["--disable-fallback", "-a", ".", "-P", ".", str(package_dir)]
    url = f"http://127.0.0.1:{port}"
    with _running(command, log_dir / "pypiserver.log", f"{url}/simple/"):
        yield url


# --- verdaccio ----------------------------------------------------------------------------

_VERDACCIO_CONFIG = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
uplinks: {{}}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
middlewares:
  audit:
    enabled: false
log: {{type: stdout, format: pretty, level: warn}}
"""


@contextmanager
def start_verdaccio(tmp_dir: Path) -> Iterator[Verdaccio]:
    """Runs verdaccio with no uplinks (nothing is fetched from elsewhere) and one user."""
    if not node_available():
        pytest.skip("the npm registry tests need Node.js and npm (node, npm on PATH)")
    npm_ci_once(HERE)
    config = tmp_dir / "config.yaml"
    config.write_text(
        _VERDACCIO_CONFIG.format(storage=tmp_dir / "storage", htpasswd=tmp_dir / "htpasswd")
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(HERE / "node_modules" / ".bin" / "verdaccio"), "--config", str(config)]
    command += ["--listen", f"127.0.0.1:{port}"]
    with _running(command, tmp_dir / "verdaccio.log", f"{url}/-/ping"):
        answer = httpx.put(
            f"{url}/-/user/org.couchdb.user:fy",
            json={"name": "fy", "password": "fy-password", "email": "fy@example.com"},
            timeout=30,
            trust_env=False,
        )
        answer.raise_for_status()
        token = answer.json()["token"]
        npmrc = tmp_dir / "npmrc"
        npmrc.write_text(f"registry={url}/\n//127.0.0.1:{port}/:_authToken={token}\n")
        yield Verdaccio(url=url, token=token, npmrc=npmrc)


def npm(verdaccio: Verdaccio, *args: str, cwd: Path | None = None) -> None:
    """Runs an npm command against ``verdaccio`` as its user; fails loudly with npm's output."""
    command = ["npm", *args, "--registry", f"{verdaccio.url}/", "--userconfig"]
    command += [str(verdaccio.npmrc), "--no-audit", "--no-fund", "--ignore-scripts"]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def publish_npm(verdaccio: Verdaccio, work_dir: Path, name: str, version: str) -> None:
    """Publishes a one-file package ``name@version`` (prereleases under the ``next`` tag)."""
    package = work_dir / f"{name.replace('/', '+')}-{version}"
    package.mkdir(parents=True)
    manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    (package / "package.json").write_text(json.dumps(manifest))
    (package / "index.js").write_text(f"module.exports = {json.dumps(version)};\n")
    tag = ["--tag", "next"] if "-" in version else []
    npm(verdaccio, "publish", *tag, cwd=package)


# --- a registry that misbehaves on purpose -------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted answer: ``status`` (None: forward to the upstream), after ``delay`` s."""

    status: int | None = 500
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


class ScriptedServer(http.server.ThreadingHTTPServer):
    """Answers the paths in ``scripts`` as scripted (the last answer repeats) and forwards
    every other request to ``upstream``; ``hits`` counts the requests per path."""

    block_on_close = False  # a request still hanging must not hold up the shutdown

    def __init__(self, upstream: str, scripts: dict[str, list[Answer]]) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.upstream = upstream.rstrip("/")
        self.scripts = scripts
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_answer(self, path: str) -> Answer:
        with self.lock:
            self.hits[path] += 1
            script = self.scripts.get(path, [Answer(status=None)])
            return script[min(self.hits[path], len(script)) - 1]


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedServer
    _FORWARDED = ("Accept", "If-None-Match", "If-Modified-Since", "Authorization")

    def do_GET(self) -> None:
        answer = self.server.next_answer(self.path)
        time.sleep(answer.delay)
        if answer.status is None:
            status, headers, body = self._forward()
        else:
            status, headers, body = answer.status, list(answer.headers), b"scripted answer"
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up waiting (a timeout test)
            pass

    def _forward(self) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {h: self.headers[h] for h in self._FORWARDED if self.headers[h]}
        request = urllib.request.Request(self.server.upstream + self.path, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                status, kept, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            status, kept, body = exc.code, exc.headers, exc.read()
        names = ("Content-Type", "ETag", "Last-Modified", "Retry-After")
        return status, [(n, kept[n]) for n in names if kept[n]], body

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def scripted_server(upstream: str, scripts: dict[str, list[Answer]]) -> Iterator[ScriptedServer]:
    server = ScriptedServer(upstream, scripts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- processes ----------------------------------------------------------------------------


@contextmanager
def _running(command: list[str], log_path: Path, ready_url: str) -> Iterator[None]:
    """Runs ``command`` until the block ends; ready once ``ready_url`` answers 200."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(process, log_path, ready_url)
        yield
    finally:
        stop(process)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"{log_path.stem} did not start (exit code {process.poll()}):\n"
        + log_path.read_text(errors="replace")
    )
