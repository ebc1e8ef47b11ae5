"""The detector subprocess: ``python -m forgeyard.analysis.detector_worker``.

The engine (:mod:`forgeyard.analysis.engine`) starts it with a scrubbed environment in its own
process group and sends it requests, one detector and a list of files each; the worker answers
each with the files' reports and waits for the next, so the tools are imported once per
analysis rather than once per detector. It exits when its standard input closes.

Frames in both directions are an 8-byte big-endian length, then that many bytes of JSON:
``{"detector": name, "root": path, "paths": [...]}`` in, ``{"reports": {path: report}}`` or
``{"error": text}`` out. Anything else that writes to standard output (a library's progress
bar, a stray print) is sent to standard error instead, so it cannot corrupt a frame.
"""

from __future__ import annotations

import os
import struct
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from forgeyard.analysis.detectors import DETECTORS
from forgeyard.analysis.detectors.base import FileReport

HEADER = struct.Struct(">Q")


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's body, or None when the stream ends."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        raise EOFError("the stream ended inside a frame")
    return body


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def handle(request: dict[str, Any]) -> dict[str, Any]:
    detector = DETECTORS[request["detector"]]()
    root, paths = Path(request["root"]), list(request["paths"])
    try:
        return {"reports": detector.analyse(root, paths)}
    except Exception:
        traceback.print_exc()
    # One file the tool chokes on must not cost the others their reports: file by file, the
    # culprit gets a report that says what went wrong.
    reports = {}
    for path in paths:
        try:
            reports.update(detector.analyse(root, [path]))
        except Exception as exc:
            reports[path] = FileReport(error=f"{detector.name} failed: {type(exc).__name__}: {exc}")
    return {"reports": reports}


def _protocol_channel() -> BinaryIO:
    """A private copy of standard output for frames; fd 1 itself now points at stderr."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def main() -> int:
    channel = _protocol_channel()
    requests = sys.stdin.buffer
    while (body := read_frame(requests)) is not None:
        try:
            reply = handle(orjson.loads(body))
        except Exception as exc:
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        channel.write(frame(orjson.dumps(reply)))
        channel.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
