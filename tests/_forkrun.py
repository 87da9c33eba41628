"""Run console commands each in a fresh process forked from one that has already imported
torch and aurora, so that a sequence of commands pays those imports (several seconds of CPU
per command) once.

Each command still runs in its own process, started the way the console script starts it
(``sys.argv`` set, ``sys.exit(main())``, the interpreter's own exit with its atexit hooks), so
nothing one command sets (environment, MLflow's tracking URI, logging, caches) reaches the
next, and the console script's own file runs. The parent imports nothing else, in particular
none of ``aurora_mlops`` (whose imports and settings each command makes itself) and not
``sqlite3`` (whose import order matters: see tests/conftest.py).

Run as a script, this module is the parent: it reads one JSON request a line on stdin, forks,
and answers one JSON line with the child's exit code.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

#: What a forked command finds already imported: torch and aurora import no sqlite3 and read
#: no setting of this project (the environment is the commands' own from the start).
PRELOAD = ("torch", "aurora")


@dataclass(frozen=True)
class Finished:
    """A command's exit code and output (as ``subprocess.CompletedProcess`` has them)."""

    returncode: int
    stdout: str
    stderr: str


class ForkRunner:
    """Runs commands in ``cwd`` with ``env``, each in a process forked from a parent that
    imported ``preload``; ``python`` runs a snippet as ``python -c`` would."""

    def __init__(self, cwd: Path, env: dict[str, str], preload: Sequence[str] = PRELOAD,
                 timeout: float = 600) -> None:
        self.cwd, self.env, self.timeout = cwd, env, timeout
        self.logs = cwd / ".forkrun"
        self.logs.mkdir(exist_ok=True)
        self.count = 0
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *preload], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True)

    def __enter__(self) -> ForkRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the parent and whatever it still runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def command(self, argv: Sequence[str]) -> Finished:
        """Run ``argv``, whose first word is a console script of this environment."""
        script = shutil.which(argv[0], path=self.env.get("PATH"))
        if script is None:
            raise FileNotFoundError(f"{argv[0]} is not on the PATH given")
        return self._run({"argv": [script, *argv[1:]]})

    def python(self, code: str) -> Finished:
        """Run ``code`` as ``python -c code`` would."""
        return self._run({"argv": ["-c"], "code": code})

    def _run(self, request: dict[str, Any]) -> Finished:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.count += 1
        out, err = self.logs / f"{self.count}.out", self.logs / f"{self.count}.err"
        self.proc.stdin.write(json.dumps({**request, "stdout": str(out), "stderr": str(err),
                                          "env": self.env}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.close()
            raise TimeoutError(f"{request['argv']} ran past {self.timeout} s")
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the fork runner ended (exit {self.proc.wait()})")
        return Finished(json.loads(answer)["code"], out.read_text(), err.read_text())


def _child(request: dict[str, Any]) -> NoReturn:
    """In the forked process: become the command, then leave as its interpreter would."""
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, key in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = request["argv"]
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    if "code" in request:  # python -c: the current folder first on the path
        sys.path[0] = ""
        exec(compile(request["code"], "<string>", "exec"), main.__dict__)
    else:  # the console script's own file, with its folder first on the path
        sys.path[0] = str(Path(sys.argv[0]).parent)
        runpy.run_path(sys.argv[0], run_name="__main__")
    sys.exit(0)


def _serve() -> None:
    for name in sys.argv[1:]:
        importlib.import_module(name)
    # Out of the collector's sight: a child's collections would otherwise walk (and so copy,
    # page by page) every object the preloaded modules made.
    gc.freeze()
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)  # an uncaught exception ends the child as it would end python
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        print(json.dumps({"code": code}), flush=True)


if __name__ == "__main__":
    _serve()
