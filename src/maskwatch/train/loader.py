"""The data loader every multi-process loading in maskwatch goes through (training, features, evaluation)."""

from __future__ import annotations

import os
import signal

import torch

_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}
_MASKS = hasattr(signal, "pthread_sigmask")  # POSIX; not on Windows


def _leave_process_group(worker_id: int) -> None:
    """A worker's first step (its ``worker_init_fn``): it leaves the process group, so that a signal sent to the
    whole group (Ctrl-C at a terminal, ``timeout``, ``kill -- -PGID``, a job scheduler) reaches only the main
    process, which stops the run and shuts its workers down itself. SIGINT and SIGTERM were blocked since the fork
    (see ``QuietLoader``): what the group got meanwhile is discarded. SIGTERM then works as usual, so the main
    process can still end a worker with ``terminate()``, as torch and ``multiprocessing`` do with one that does not
    stop (a worker that ignored SIGTERM instead hung the process at exit)."""
    try:
        os.setpgid(0, 0)
        own_group = True
    except (OSError, AttributeError):  # not allowed here, or no process groups (Windows): ignore both instead
        own_group = False
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # setting SIG_IGN discards a pending signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if own_group:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _MASKS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)


class QuietLoader(torch.utils.data.DataLoader):
    """A DataLoader whose worker processes never get the signals sent to the whole process group.

    Workers start afresh at each epoch. A worker forked while a group signal was on its way died of it before its
    init function had run ("DataLoader worker exited unexpectedly", found by signalling runs at random moments), so
    the thread that starts the workers blocks SIGINT and SIGTERM meanwhile: the workers inherit the blocked mask
    and drop what came, and that thread gets its own signal when its mask is restored."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, worker_init_fn=_leave_process_group, **kwargs)

    def __iter__(self):
        if self.num_workers == 0 or not _MASKS:
            return super().__iter__()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        try:
            return super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
