"""Turn SIGTERM into an exception while the launcher waits, so a cancelled step cleans up.

KFP terminates a run by patching its Argo Workflow's ``activeDeadlineSeconds`` to 0
(kubeflow/pipelines ``backend/src/common/util/execution_spec.go``, ``GetTerminatePatch``).
Argo's workflow controller then stops every running pod past the deadline, as it does on a
``stop``/``terminate`` (argoproj/argo-workflows ``workflow/controller/exec_control.go`` ->
``TerminateContainers``): ``workflow/controller/pod/queue.go`` (``signalContainers``) sends
SIGTERM to each running container's PID 1 and SIGKILL after the pod's
``terminationGracePeriodSeconds`` (30 s when unset); the emissary that is PID 1 of the main
container forwards the signal to our process (``cmd/argoexec/commands/emissary.go``; v3.6 and
v4). Python's default SIGTERM handling ends the process on the spot, without ``finally``
blocks, so the Experiment it created (and every trial's GPU) would outlive the run.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

__all__ = ["Terminated", "sigterm_raises"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the pipeline task is being stopped.

    A ``KeyboardInterrupt`` so that ``except Exception`` (retries, error reporting) lets it
    through, exactly like Ctrl-C. The CLI exits with :attr:`exit_code` (128 + SIGTERM's
    number, the shell's convention), so a stopped step reads as stopped, not as Ctrl-C's 130.
    """

    exit_code = 128 + int(signal.SIGTERM)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler comes back after.

    Python lets only the main thread install handlers; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        log.debug("not the main thread: SIGTERM keeps its handler")
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        # ``None``: a handler installed from C, which Python cannot reinstall; the default.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
