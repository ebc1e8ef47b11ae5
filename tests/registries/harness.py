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
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.processes import free_port, node_available, npm_ci_once, running

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 60.0  # seconds; verdaccio's first start after an install reads many files


@dataclass(frozen=True)
class Verdaccio:
    url: str
    token: str
    npmrc: Path  # a user config with the token, for npm publish / npm deprecate


# --- pypiserver ---------------------------------------------------------------------------


def write_wheel(directory: Path, name: str, version: str, module: str = "") -> Path:
    """A minimal pure-Python wheel of ``name`` ``version`` (one module, valid RECORD);
    ``module`` is more source for that module (``def add(a, b): ...``)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n{module}',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: forgeyard-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    return _zip_wheel(directory / f"{dist}-{version}-py3-none-any.whl", info, files)


def _zip_wheel(wheel: Path, info: str, files: Mapping[str, str | bytes]) -> Path:
    """Writes ``files`` and their RECORD (``info``/RECORD) into the wheel archive ``wheel``."""
    record = []
    for path, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(data)}")
    files = {**files, f"{info}/RECORD": "\n".join([*record, f"{info}/RECORD,,"]) + "\n"}
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return wheel


def write_installed_wheels(directory: Path, name: str) -> list[Path]:
    """Wheels of ``name`` and of everything it needs here, rebuilt from what is installed in
    this Python (pure-Python distributions only: the index then serves the real pytest).
    Only the distribution's own files are taken: no scripts, no bytecode, no installer notes."""
    wanted, done, wheels = [name], set(), []
    while wanted:
        dist = metadata.distribution(wanted.pop())
        key = canonicalize_name(dist.metadata["Name"])
        if key in done:
            continue
        done.add(key)
        wheels.append(_wheel_from_installed(directory, dist))
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return wheels


def _wheel_from_installed(directory: Path, dist: metadata.Distribution) -> Path:
    name, version = dist.metadata["Name"], dist.version
    info = next(p.parts[0] for p in dist.files or [] if p.parts[0].endswith(".dist-info"))
    left_out = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    files: dict[str, str | bytes] = {}
    for path in dist.files or []:
        if path.parts[0] == ".." or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.parts[0] == info and path.name in left_out:
            continue
        files[path.as_posix()] = Path(str(path.locate())).read_bytes()
    if b"Tag: py3-none-any" not in Path(str(dist.locate_file(f"{info}/WHEEL"))).read_bytes():
        raise RuntimeError(f"{name} {version} is not a pure-Python wheel; cannot rebuild it")
    dist_name = re.sub(r"[-_.]+", "_", name).lower()
    return _zip_wheel(directory / f"{dist_name}-{version}-py3-none-any.whl", info, files)


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
    with running(command, log_dir / "pypiserver.log", f"{url}/simple/", timeout=START_TIMEOUT):
        yield url


# --- verdaccio ----------------------------------------------------------------------------

_VERDACCIO_CONFIG = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    algorithm: {password_hash}
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
def start_verdaccio(tmp_dir: Path, password_hash: str = "bcrypt") -> Iterator[Verdaccio]:
    """Runs verdaccio with no uplinks (nothing is fetched from elsewhere) and one user.

    Verdaccio checks the user's password on every authenticated request; ``password_hash``
    "sha1" makes that cheap where bcrypt (verdaccio's default) costs ~0.1 s a request, for
    callers that publish hundreds of versions (bench/deps_fixture.py)."""
    if not node_available():
        pytest.skip("the npm registry tests need Node.js and npm (node, npm on PATH)")
    npm_ci_once(HERE)
    config = tmp_dir / "config.yaml"
    config.write_text(
        _VERDACCIO_CONFIG.format(
            storage=tmp_dir / "storage",
            htpasswd=tmp_dir / "htpasswd",
            password_hash=password_hash,
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(HERE / "node_modules" / ".bin" / "verdaccio"), "--config", str(config)]
    command += ["--listen", f"127.0.0.1:{port}"]
    with running(command, tmp_dir / "verdaccio.log", f"{url}/-/ping", timeout=START_TIMEOUT):
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


def publish_npm(
    verdaccio: Verdaccio,
    work_dir: Path,
    name: str,
    version: str,
    scripts: dict[str, str] | None = None,
) -> None:
    """Publishes a one-file package ``name@version`` (prereleases under the ``next`` tag),
    with ``scripts`` in its package.json when given (a ``postinstall``, say)."""
    package = work_dir / f"{name.replace('/', '+')}-{version}"
    package.mkdir(parents=True)
    manifest: dict[str, object] = {"name": name, "version": version, "main": "index.js"}
    manifest["license"] = "MIT"
    if scripts:
        manifest["scripts"] = scripts
    (package / "package.json").write_text(json.dumps(manifest))
    (package / "index.js").write_text(f"module.exports = {json.dumps(version)};\n")
    tag = ["--tag", "next"] if "-" in version else []
    npm(verdaccio, "publish", *tag, cwd=package)


# --- a registry that misbehaves on purpose -------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted answer: ``status`` (None: forward to the upstream) with ``body``, after
    ``delay`` s."""

    status: int | None = 500
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    body: bytes = b"scripted answer"


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
            status, headers, body = answer.status, list(answer.headers), answer.body
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
