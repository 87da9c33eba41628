"""The ``python3`` that kfp.local starts for each task of a local run: a client of the warm step
server (:mod:`aurora_mlops.kfp._warm_steps`).

Run as a file, with ``python -S`` (standard library only, no site-packages: it starts in a few
tens of milliseconds). Usage: ``python -S _step_client.py SOCKET REAL_PYTHON ARGS...``.

``ARGS`` of the form ``-m MODULE ...`` (kfp.local's ``-m kfp.dsl.executor_main ...``) run in a
process that the server forks from its preloaded interpreter: the request carries this
process's arguments, environment and working folder, and its standard input, output and error
(the descriptors themselves, so the task writes straight into kfp.local's pipe). Signals that
end this process (SIGINT, SIGTERM, SIGHUP) are passed on to the task, and this process ends as
the task did (its exit code, or the same signal). Anything else, or no server, runs
``REAL_PYTHON ARGS...`` in this process's place, as kfp.local would have.
"""

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exec_real(real: str, args: list[str]) -> None:  # never returns
    os.execv(real, [real, *args])


def _lines(conn: socket.socket) -> Iterator[dict[str, Any]]:
    buf = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


def main(argv: list[str]) -> int:
    path, real, args = argv[0], argv[1], argv[2:]
    if len(args) < 2 or args[0] != "-m":
        _exec_real(real, args)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        _exec_real(real, args)
    request = json.dumps({"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(conn, [struct.pack("!I", len(request))], [0, 1, 2])
    conn.sendall(request)
    pid = 0

    def forward(signum: int, frame: FrameType | None) -> None:
        if pid:
            with contextlib.suppress(OSError):
                os.killpg(pid, signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    for reply in _lines(conn):
        if "pid" in reply:
            pid = reply["pid"]
        elif "signal" in reply:  # end as the task ended: killed by the same signal
            conn.close()
            for sig in _FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), reply["signal"])
            return 128 + reply["signal"]
        elif "exit" in reply:
            return int(reply["exit"])
    sys.stderr.write(f"the warm step server at {path} closed the connection before the task "
                     "ended; run again with AURORA_MLOPS_WARM_STEPS=0 to start tasks as "
                     "plain processes\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
