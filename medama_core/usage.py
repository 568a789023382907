"""Host resource usage (CPU, memory, disk) read from /proc and statvfs, with no third-party library.

The parsers take file text and return numbers, so they are tested on fixed
samples; `read_usage` is the one function that touches the file system.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
# /proc/stat columns summed into the total: user nice system idle iowait irq softirq steal.
# guest and guest_nice are already counted inside user and nice, so they are left out.
_STAT_COLUMNS = 8
_IDLE_COLUMNS = (3, 4)  # idle and iowait: time the CPU had nothing to run
_KIB = 1024  # /proc/meminfo reports "kB", which the kernel means as KiB


@dataclass(frozen=True, slots=True)
class CPUTimes:
    """Cumulative jiffies since boot, all CPUs together."""

    busy: int
    total: int


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_usage: float  # percent over the interval since the previous sample
    cores: int  # physical cores
    threads: int  # logical CPUs
    memory_used: int  # bytes
    memory_total: int
    disk_used: int  # bytes, of the file system holding the databases
    disk_total: int

    def as_json(self) -> dict[str, Any]:
        """The `UserUsageGet` body."""
        return {
            "cpu": {"usage": self.cpu_usage, "cores": self.cores, "threads": self.threads},
            "memory": {"used": self.memory_used, "total": self.memory_total},
            "disk": {"used": self.disk_used, "total": self.disk_total},
        }


def parse_proc_stat(text: str) -> CPUTimes | None:
    """The aggregate `cpu` line of /proc/stat; None when there is none."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                values = [int(v) for v in fields[1 : 1 + _STAT_COLUMNS]]
            except ValueError:
                return None
            total = sum(values)
            idle = sum(values[i] for i in _IDLE_COLUMNS if i < len(values))
            return CPUTimes(total - idle, total)
    return None


def cpu_percent(previous: CPUTimes | None, current: CPUTimes) -> float:
    """Busy share of the time between two samples, in percent; since boot when there is no previous one."""
    base = previous if previous is not None else CPUTimes(0, 0)
    elapsed = current.total - base.total
    if elapsed <= 0:
        return 0.0
    busy = max(0, current.busy - base.busy)
    return round(min(100.0, 100.0 * busy / elapsed), 2)


def parse_cpuinfo(text: str) -> tuple[int, int]:
    """(physical cores, logical CPUs) from /proc/cpuinfo; (0, 0) when it lists no processors.

    Physical cores are distinct (physical id, core id) pairs; kernels that do
    not report topology (many ARM boards, some VMs) get one core per CPU.
    """
    logical = 0
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = ""
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            logical += 1
        elif key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            core_id = value.strip()
        elif not line.strip():  # a blank line ends one processor's block
            if core_id:
                cores.add((physical_id, core_id))
            physical_id = core_id = ""
    return (len(cores) or logical), logical


def parse_meminfo(text: str) -> tuple[int, int]:
    """(used, total) bytes from /proc/meminfo; used = total minus what is available without swapping."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        number = rest.split()
        if number and number[0].isdigit():
            values[key.strip()] = int(number[0]) * _KIB
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = values.get("MemFree", 0) + values.get("Buffers", 0) + values.get("Cached", 0)
    return max(0, total - available), total


def disk_usage(path: str) -> tuple[int, int]:
    """(used, total) bytes of the file system holding `path`, as `df` counts them."""
    stat = os.statvfs(path)
    total = stat.f_blocks * stat.f_frsize
    used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    return used, total


def local_path(*locations: str) -> str:
    """The first store location that is a file (not a `scheme://` URL), else the working directory: where
    the disk figures are read, the node's own disk when every store is a database server."""
    for location in locations:
        if "://" not in location:
            return location
    return os.path.join(os.getcwd(), "")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def read_usage(data_path: str, previous: CPUTimes | None, proc: Path = PROC) -> tuple[Usage, CPUTimes | None]:
    """Sample the host now; return the usage and the CPU times to pass as `previous` next time.

    Blocking (file reads, statvfs): call it from a worker thread. Where /proc is
    missing (not Linux), CPU usage reads 0 and memory falls back to sysconf.
    """
    times = parse_proc_stat(_read(proc / "stat"))
    usage = cpu_percent(previous, times) if times is not None else 0.0
    cores, threads = parse_cpuinfo(_read(proc / "cpuinfo"))
    if threads == 0:
        threads = cores = os.cpu_count() or 1
    memory_used, memory_total = parse_meminfo(_read(proc / "meminfo"))
    if memory_total == 0:
        memory_total = _sysconf_memory()
    directory = os.path.dirname(os.path.abspath(data_path))
    try:
        disk_used, disk_total = disk_usage(directory)
    except OSError:
        disk_used = disk_total = 0
    return Usage(usage, cores, threads, memory_used, memory_total, disk_used, disk_total), times


def _sysconf_memory() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


class CPUSampler:
    """Remembers the previous CPU sample so each reading covers the time since the last call."""

    def __init__(self) -> None:
        self.previous: CPUTimes | None = None

    def update(self, times: CPUTimes | None) -> None:
        if times is not None:
            self.previous = times


async def sample(data_path: str, sampler: CPUSampler) -> Usage:
    """Read usage in a worker thread and advance `sampler`; call from the event loop."""
    usage, times = await asyncio.to_thread(read_usage, data_path, sampler.previous)
    sampler.update(times)
    return usage
