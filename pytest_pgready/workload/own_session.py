"""A forked Locust worker takes a session of its own, as every PostgreSQL backend does.

Linux kernels with autogroup scheduling (`kernel.sched_autogroup_enabled = 1`, the default of most
distributions and of this project's VMs) share the CPU between sessions first and between the processes
of a session second. PostgreSQL calls setsid() in every child it forks, so each backend weighs as much as
a whole session; the workers of `locust --processes` are forked into their master's session and share
one weight among them. With the database on the same cores (the embedded cluster), a backend woken by a
query then preempts the worker that sent it about every other request, and the worker loses its cache
and its turn: 0.54 involuntary context switches a request in one session, 0.36-0.45 in sessions of their
own (8 clients, 2 workers, 2 vCPUs). This only restores parity with the backends; it raises no priority.

Only for workers the plugin's own Locust forks (PGREADY_OWN_SESSION set by the runner): a worker a user
starts by hand keeps the session of its terminal, so Ctrl-C still reaches it. A worker outside its master's
process group is no longer killed with that group, so it asks the kernel to kill it when its master dies
(PR_SET_PDEATHSIG); the runner also kills every process left in the run directory at the end.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

ENV = "PGREADY_OWN_SESSION"
_PR_SET_PDEATHSIG = 1
_state = {"parent": 0, "forked": False}


def install() -> None:
    """Called when user.py is imported: in a `--processes` run that is in the master, before Locust forks
    its workers. Each child it forks takes its session in the fork itself, before any Locust code runs,
    so a master killed while a worker is still starting takes that worker along too."""
    if os.environ.get(ENV) != "1" or not sys.platform.startswith("linux") or _state["parent"]:
        return
    _state["parent"] = os.getpid()  # the master: its children are the workers (theirs skip, see below)
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    """Only the master's own children: a process a worker forks stays with its worker."""
    if _state["forked"]:
        return
    _state["forked"] = True
    take_own_session(_state["parent"])


def take_own_session(parent: int) -> bool:
    """setsid() for a process forked by `parent`, armed to die with it; True when it took one. Never raises:
    without it the run is only slower on a shared machine."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False  # without the death signal the worker must stay in its master's group
        os.setsid()
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the master died before the death signal was armed
        os._exit(1)
    return True
