"""Peak memory of a process tree (an import and its worker processes), sampled from /proc."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc/PID/stat)."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name (field 2) may hold spaces: the fields after its ")" are plain
        out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


def _pss_rss_kib(pid: int) -> tuple[int, int]:
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class TreeMemory:
    """Samples, every ``interval_s``, the summed PSS (proportional set size: shared pages
    divided among the processes that share them) and RSS of a process and its descendants.

    PSS summed over the tree is the memory the import really holds; RSS summed counts the
    pages that forked workers share with their parent once per process (an upper bound).
    """

    def __init__(self, process: subprocess.Popen[bytes], interval_s: float = 0.05) -> None:
        self.process = process
        self.interval_s = interval_s
        self.peak_pss_kib = 0
        self.peak_rss_kib = 0
        self.peak_processes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.process.poll() is None:
            pids = _tree(self.process.pid)
            sums = [_pss_rss_kib(pid) for pid in pids]
            self.peak_pss_kib = max(self.peak_pss_kib, sum(p for p, _ in sums))
            self.peak_rss_kib = max(self.peak_rss_kib, sum(r for _, r in sums))
            self.peak_processes = max(self.peak_processes, len(pids))
            time.sleep(self.interval_s)

    def join(self) -> None:
        self._thread.join()
