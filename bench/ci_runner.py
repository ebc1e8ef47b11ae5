"""``python -m bench.ci_runner``: a simulated CI runner, for checkouts without ``forgeyard runner``.

It speaks the runner protocol (:mod:`forgeyard.protocol.runner`) over HTTP the way an agent
would, with the same command line as ``forgeyard runner`` (``--server``,
``--registration-token``, ``--work-dir``): register, long-poll a claim, download the source,
run each step's commands with ``sh``, send the output as log batches, report the steps and
the build's end. What it leaves out: the spec's signature is not checked, there are no
artifacts, timeouts or cancellation, and the environment is not scrubbed.

Output is read in chunks and cut into lines by one task; another sends what has accumulated,
up to ``BATCH_LINES`` lines a request, one request at a time, as fast as the server answers:
a backlog goes in full batches, a trickle in small ones as soon as it comes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx

from forgeyard.protocol.runner import MAX_LOG_LINE_CHARS, BuildSpec, ClaimedBuild, LogBatch

API = "/api/v1"
BATCH_LINES = 1000
CLAIM_WAIT_S = 30
READ_CHUNK = 64 * 1024


class Runner:
    def __init__(self, client: httpx.AsyncClient, runner_id: str, token: str) -> None:
        self.client = client
        self.base = f"{API}/runners/{runner_id}"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, tail: str, body: dict[str, Any]) -> httpx.Response:
        response = await self.client.post(f"{self.base}{tail}", json=body, headers=self.headers)
        if response.status_code >= 300 and response.status_code != 204:
            raise RuntimeError(f"POST {tail} answered {response.status_code}: {response.text}")
        return response

    async def claim(self) -> ClaimedBuild | None:
        response = await self.post("/claim", {"wait_seconds": CLAIM_WAIT_S})
        if response.status_code == 204:
            return None
        return ClaimedBuild.model_validate_json(response.content)

    async def run_build(self, claimed: ClaimedBuild, work_dir: Path) -> None:
        spec = BuildSpec.model_validate_json(claimed.spec)
        build = f"/builds/{spec.build_id}"
        checkout = work_dir / spec.build_id
        checkout.mkdir(parents=True)
        source = await self.client.get(f"{self.base}{build}/source", headers=self.headers)
        source.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(source.content)) as archive:
            archive.extractall(checkout, filter="data")
        heartbeat = asyncio.create_task(self._heartbeat(spec.build_id, claimed.lease_seconds))
        failed = False
        try:
            steps = spec.pipeline["steps"]
            for index in spec.run:
                step = steps[index]
                wanted = step["status"]
                if wanted != "always" and (wanted == "failure") != failed:
                    await self.post(f"{build}/steps/{index}", {"status": "skipped"})
                    continue
                await self.post(f"{build}/steps/{index}", {"status": "running"})
                env = {**spec.pipeline["env"], **step["env"]}
                code = await self._run_step(build, index, step["commands"], env, checkout)
                failed = failed or code != 0
                status = "succeeded" if code == 0 else "failed"
                await self.post(f"{build}/steps/{index}", {"status": status, "exit_code": code})
            await self.post(f"{build}/finish", {"status": "failed" if failed else "succeeded"})
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, build_id: str, lease_seconds: int) -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            await self.post("/heartbeat", {"builds": [build_id]})

    async def _run_step(
        self, build: str, index: int, commands: list[str], env: dict[str, str], cwd: Path
    ) -> int:
        script = "set -e\n" + "\n".join(commands) + "\n"
        process = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            script,
            cwd=cwd,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        lines: list[str] = []
        more = asyncio.Event()
        done = False

        async def read() -> None:
            nonlocal done
            assert process.stdout is not None
            partial = b""
            while chunk := await process.stdout.read(READ_CHUNK):
                *complete, partial = (partial + chunk).split(b"\n")
                lines.extend(
                    line.decode(errors="replace")[:MAX_LOG_LINE_CHARS] for line in complete
                )
                more.set()
            if partial:
                lines.append(partial.decode(errors="replace")[:MAX_LOG_LINE_CHARS])
            done = True
            more.set()

        reader = asyncio.create_task(read())
        sent = 0
        while True:
            if sent == len(lines):
                if done:
                    break
                more.clear()
                await more.wait()
                continue
            batch = lines[sent : sent + BATCH_LINES]
            body = LogBatch(step=index, first_line=sent, lines=batch)
            await self.post(f"{build}/logs", body.model_dump())
            sent += len(batch)
        await reader
        return await process.wait()


async def main(args: argparse.Namespace) -> int:
    args.work_dir.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(base_url=args.server, timeout=CLAIM_WAIT_S + 30) as client:
        registered = await client.post(
            f"{API}/runners/register",
            json={
                "registration_token": args.registration_token,
                "name": "bench-simulated-runner",
                "labels": [],
                "version": "bench",
            },
        )
        if registered.status_code != 201:
            print(f"register answered {registered.status_code}: {registered.text}", file=sys.stderr)
            return 1
        answer = registered.json()
        runner = Runner(client, answer["id"], answer["token"])
        print(json.dumps({"registered": answer["id"]}), flush=True)
        while True:
            claimed = await runner.claim()
            if claimed is None:
                continue
            await runner.run_build(claimed, args.work_dir)
            if args.once:
                return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ci_runner", description=__doc__)
    parser.add_argument("--server", required=True, help="the server's base URL")
    parser.add_argument("--registration-token", required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--once", action="store_true", help="exit after one build")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(sys.argv[1:]))))
