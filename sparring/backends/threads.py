"""torch's CPU thread count: a setting of the whole process, so the entry point
(command line, trainer) sets it once with `use_threads`; backends never do."""

from __future__ import annotations

import os
import time

from sparring.errors import SparringError


def use_threads(threads: int) -> int:
    """Let torch run on `threads` CPU threads, 0 meaning the cores free now
    (`free_cores`); return the count set."""
    import torch

    if threads < 0:
        raise SparringError(f"threads={threads}: give a number of CPU threads, or 0 for the cores free now")
    count = threads or free_cores()
    torch.set_num_threads(count)
    return count


def free_cores() -> int:
    """Cores idle right now (sampled from /proc/stat over 0.2 s; the load average
    elsewhere). On a shared 2-core machine two threads while another process held
    a core were 5-10x slower than one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        idle_before, total_before = _cpu_times()
        time.sleep(0.2)
        idle_after, total_after = _cpu_times()
        idle = (idle_after - idle_before) / max(1, total_after - total_before)
        return max(1, min(cores, round(idle * (os.cpu_count() or cores))))
    except OSError:
        busy = int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
        return max(1, cores - busy)


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait
