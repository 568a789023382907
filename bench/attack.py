"""Replay issue 14's attacks by one unauthenticated client against a running medama.pyz, and measure.

Each attack runs while a probe opens a fresh connection to GET /api/health every PROBE_INTERVAL_S
from an address of its own network (127.0.9.1), as a monitor would. Per attack it prints the
server's CPU seconds (utime + stime from /proc/<pid>/stat; "net" subtracts what the probe alone
costs), how long its threads waited for a CPU while runnable (wait_s, from schedstat: the
machine's load, not the server's), its RSS before, at the peak and after (VmRSS from
/proc/<pid>/status), and the probe's answers: how many were 200, the worst and the p99 latency
(a failed probe counts with the time it took to fail). The probe runs in a process of its own.

  (no attack)    the probe alone for 5 s, the noise floor of a shared machine.
  chunked        1,000,000 one-byte chunks (6 MB on the wire) to POST /api/auth/login, as fast
                 as the socket takes them. chunked-cpu and plain-cpu send it again, and the same
                 1,000,000 data bytes as a plain Content-Length body, with no probe, for the CPU
                 ratio (each counted as at least one clock tick).
  chunked-drip   the same chunks spread evenly over --drip-seconds on one connection.
  long-names     5,000 GET /scripts/<16,000 letters>.js (all 404), pipelined.
  script-names   100,000 GET /scripts/<random>.js (all 404).
  dash-paths     100,000 GET /<random dashboard path> (the SPA shell).
                 The three are pipelined 100 deep over 4 connections, flat out or at --names-rate.
  flood          4,100 connections from 127.0.0.1 that never send a byte, held --hold seconds;
                 whether a client from another network (127.0.1.1, another /24) is served.
  bodies         300 connections each sending 1,000,000 bytes of a 1,048,576-byte body, then
                 nothing, held --hold seconds.

Targets (issue 14): chunked CPU at most 2x the plain body's; /api/health p99 at most 100 ms during
every attack; RSS growth at most 10 MiB after 100,000 distinct 404 names and after 4,100 silent
connections; the other network served during the flood. Exits 1 when one is missed.

The machine is shared: run it a few times, and read latencies with the load average it prints.

Usage: python build_zipapp.py && python bench/attack.py [--pyz dist/medama.pyz] [--only chunked,flood]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import resource
import selectors
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ATTACKER = "127.0.0.1"
PROBE_SOURCE = "127.0.9.1"  # a /24 of its own, so per-network caps on the attacker do not touch it
OTHER_CLIENT = "127.0.1.1"  # "a second address": another /24, as 127.0.0.2 would share the attacker's
PROBE_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 10.0
SAMPLE_INTERVAL_S = 0.05  # RSS samples for the peak
FLOOD_CONNECTIONS = 4100
BODY_CONNECTIONS = 300
BODY_ANNOUNCED = 1024 * 1024  # app.DEFAULT_BODY_LIMIT: the largest body /api/auth/login accepts
BODY_SENT = 1_000_000
CHUNKS = 1_000_000
PIPELINE_DEPTH = 100  # requests written before their answers are read
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the server process and what /proc says about it ----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def run_queue_seconds(pid: int) -> float:
    """How long the server's threads have waited for a CPU while runnable (/proc/<pid>/task/*/schedstat)."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            waited += int((task / "schedstat").read_text().split()[1])
    return waited / 1e9


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def server(pyz: Path, python: str) -> Iterator[tuple[int, int]]:
    with tempfile.TemporaryDirectory(prefix="medama-attack-") as tmp:
        port = free_port()
        cmd = [python, str(pyz), "start", "-host", "127.0.0.1", "-port", str(port), "-level", "warn"]
        cmd += ["-appdb", f"{tmp}/me_meta.db", "-analyticsdb", f"{tmp}/me_analytics.db", "-ratelimit", "0"]
        with open(f"{tmp}/server.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, cwd=tmp)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(Path(f"{tmp}/server.log").read_text()[-3000:]) from None
                    time.sleep(0.05)
            yield proc.pid, port
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- measuring while an attack runs ---------------------------------------------------------------


def read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one Content-Length framed response; its status. Leftovers stay in `buf`."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    end = buf.index(b"\r\n\r\n")
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(buf) < end + 4 + length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed mid-body")
        buf += data
    del buf[: end + 4 + length]
    return int(head[0].split(" ")[1])


def get(port: int, source: str, path: str = "/api/health", timeout: float = PROBE_TIMEOUT_S) -> int:
    """One GET on a fresh connection from `source`: its status (0: no answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            return read_response(sock, bytearray())
    except OSError:
        return 0


@dataclass
class Measurement:
    name: str
    cpu_s: float = 0.0
    net_cpu_s: float = 0.0
    waited_s: float = 0.0  # the server runnable but not running: how busy the machine was, not the server
    seconds: float = 0.0
    rss_before: float = 0.0
    rss_peak: float = 0.0
    rss_after: float = 0.0
    probes_ms: list[float] = field(default_factory=list)
    probe_failures: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return self.rss_after - self.rss_before

    def percentile(self, pct: float) -> float:
        if not self.probes_ms:
            return float("nan")
        ordered = sorted(self.probes_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]

    def line(self) -> str:
        return (
            f"{self.name:<14} {self.seconds:6.1f} {self.cpu_s:7.2f} {self.net_cpu_s:7.2f} {self.waited_s:6.2f} "
            f"{self.rss_before:7.1f} {self.rss_peak:7.1f} {self.rss_after:7.1f} {self.growth:+7.1f} "
            f"{len(self.probes_ms) - self.probe_failures:5d} {self.probe_failures:5d} "
            f"{self.percentile(99):8.1f} {max(self.probes_ms, default=float('nan')):8.1f}"
        )


HEADER = (
    f"{'attack':<14} {'secs':>6} {'cpu_s':>7} {'net_cpu':>7} {'wait_s':>6} "
    f"{'rss0':>7} {'rss_pk':>7} {'rss1':>7} {'growth':>7} {'ok':>5} "
    f"{'fail':>5} {'p99_ms':>8} {'max_ms':>8}   (MiB, health probe every 50 ms)"
)


def probe_worker(port: int, conn: Connection) -> None:
    """In a process of its own, so the attack's threads cannot delay it on this process's GIL:
    on "start", probe until "stop" arrives, then send back (milliseconds, answered 200) per probe."""
    while conn.recv() == "start":
        samples = []
        while not conn.poll():
            started = time.monotonic()
            status = get(port, PROBE_SOURCE)
            samples.append(((time.monotonic() - started) * 1000, status == 200))
            conn.poll(max(0.0, PROBE_INTERVAL_S - (time.monotonic() - started)))
        conn.recv()
        conn.send(samples)


class Watch:
    """Samples RSS for the peak and runs the health probe (in its own process) while an attack runs."""

    def __init__(self, pid: int, port: int) -> None:
        self.pid, self.port = pid, port
        self.probe_cpu_per_s = 0.0
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._prober = multiprocessing.get_context("spawn").Process(target=probe_worker, args=(port, child))
        self._prober.start()

    def close(self) -> None:
        self._conn.send("quit")
        self._prober.join(PROBE_TIMEOUT_S)

    def calibrate(self, seconds: float = 3.0) -> None:
        """Measure what the probe alone costs the server, in CPU seconds per second."""
        cpu0, t0 = cpu_seconds(self.pid), time.monotonic()
        self._conn.send("start")
        time.sleep(seconds)
        self._conn.send("stop")
        self._conn.recv()
        self.probe_cpu_per_s = (cpu_seconds(self.pid) - cpu0) / (time.monotonic() - t0)

    @contextlib.contextmanager
    def measure(self, name: str, settle_s: float = 1.0, probe: bool = True) -> Iterator[Measurement]:
        result = Measurement(name, rss_before=rss_mib(self.pid))
        stop = threading.Event()
        peak = [result.rss_before]

        def sample() -> None:
            while not stop.wait(SAMPLE_INTERVAL_S):
                with contextlib.suppress(OSError):
                    peak[0] = max(peak[0], rss_mib(self.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        cpu0, wait0, t0 = cpu_seconds(self.pid), run_queue_seconds(self.pid), time.monotonic()
        sampler.start()
        if probe:
            self._conn.send("start")
        try:
            yield result
        finally:
            time.sleep(settle_s)  # what the attack left for the server to do, and its closes
            stop.set()
            sampler.join()
            if probe:
                self._conn.send("stop")
                samples = self._conn.recv()
                result.probes_ms = [ms for ms, _ in samples]
                result.probe_failures = sum(1 for _, ok in samples if not ok)
            result.seconds = time.monotonic() - t0
            result.cpu_s = cpu_seconds(self.pid) - cpu0
            result.waited_s = run_queue_seconds(self.pid) - wait0
            probe_cpu = self.probe_cpu_per_s * result.seconds if probe else 0.0
            result.net_cpu_s = max(0.0, result.cpu_s - probe_cpu)
            result.rss_after = rss_mib(self.pid)
            result.rss_peak = max(peak[0], result.rss_after)


# --- the attacks ----------------------------------------------------------------------------------


LOGIN_HEAD = "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def login_data() -> bytes:
    """1,000,000 bytes of a login body (a password far past its 128 characters)."""
    start = b'{"username": "admin", "password": "'
    return start + b"a" * (CHUNKS - len(start) - 2) + b'"}'


def send_and_answer(port: int, head: bytes, body: bytes, seconds: float = 0.0) -> str:
    """Send a request (its body spread over `seconds` when given) and return the answer's status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(ATTACKER, 0)) as sock:
        try:
            sock.sendall(head)
            piece = 64 * 1024 if not seconds else max(1, int(len(body) / seconds / 20))
            started = time.monotonic()
            for offset in range(0, len(body), piece):
                sock.sendall(body[offset : offset + piece])
                if seconds:
                    due = started + seconds * (offset + piece) / len(body)
                    time.sleep(max(0.0, due - time.monotonic()))
        except OSError as exc:
            sent = f"stopped sending: {exc.strerror or exc}"
        else:
            sent = "sent all"
        try:
            buf = bytearray()
            while b"\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
            answer = bytes(buf.split(b"\r\n", 1)[0]).decode("latin-1") or "closed without an answer"
        except OSError as exc:
            answer = f"no answer ({exc.strerror or exc})"
    return f"{sent}; {answer}"


def chunked_body() -> bytes:
    return b"".join(b"1\r\n%c\r\n" % byte for byte in login_data()) + b"0\r\n\r\n"


def attack_chunked(watch: Watch, drip_s: float) -> list[Measurement]:
    """The chunked body with the probe (latency), then it and the plain body without (clean CPU)."""
    head = (LOGIN_HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode()
    body = chunked_body()
    plain = login_data()
    plain_head = (LOGIN_HEAD + f"Content-Length: {len(plain)}\r\n\r\n").encode()
    results = []
    with watch.measure("chunked") as m:
        m.notes.append(send_and_answer(watch.port, head, body))
    results.append(m)
    with watch.measure("chunked-cpu", probe=False) as c:
        c.notes.append(send_and_answer(watch.port, head, body) + " (no probe: CPU of the attack alone)")
    results.append(c)
    with watch.measure("plain-cpu", probe=False) as p:
        p.notes.append(send_and_answer(watch.port, plain_head, plain) + " (no probe)")
    results.append(p)
    c.notes.append(f"CPU {cpu_ratio(c, p):.1f}x the plain body's ({c.cpu_s:.2f} s vs {p.cpu_s:.2f} s)")
    if drip_s:
        with watch.measure("chunked-drip", settle_s=1.0) as d:
            d.notes.append(send_and_answer(watch.port, head, body, seconds=drip_s))
        results.append(d)
    return results


def pipelined_gets(port: int, paths: list[str], connections: int = 4, rate: float = 0.0) -> dict[int, int]:
    """GET every path, pipelined PIPELINE_DEPTH deep over a few keep-alive connections, at most `rate`
    requests a second in all (0: as fast as the server answers); statuses counted."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def lane(share: list[str]) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(ATTACKER, 0))
        buf = bytearray()
        began = time.monotonic()
        try:
            for start in range(0, len(share), PIPELINE_DEPTH):
                if rate:
                    time.sleep(max(0.0, began + start * connections / rate - time.monotonic()))
                batch = share[start : start + PIPELINE_DEPTH]
                sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for p in batch))
                for _ in batch:
                    status = read_response(sock, buf)
                    with lock:
                        statuses[status] = statuses.get(status, 0) + 1
        finally:
            sock.close()

    threads = [threading.Thread(target=lane, args=(paths[i::connections],)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def random_names(rng: random.Random, count: int, length: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choices(alphabet, k=length)) for _ in range(count)]


def attack_names(watch: Watch, count: int, rate: float) -> list[Measurement]:
    rng = random.Random(14)
    results = []
    long_count = max(1, count // 20)
    cases: list[tuple[str, Callable[[], list[str]]]] = [
        ("long-names", lambda: [f"/scripts/{n}.js" for n in random_names(rng, long_count, 16_000)]),
        ("script-names", lambda: [f"/scripts/{n}.js" for n in random_names(rng, count, 24)]),
        ("dash-paths", lambda: [f"/{n[:12]}/{n[12:]}" for n in random_names(rng, count, 24)]),
    ]
    for name, make in cases:
        paths = make()
        with watch.measure(name, settle_s=2.0) as m:
            statuses = pipelined_gets(watch.port, paths, rate=rate)
            m.notes.append(f"{len(paths):,} requests: {json.dumps(statuses)}")
        results.append(m)
    return results


def open_many(port: int, count: int, source: str) -> list[socket.socket]:
    """`count` connections from `source`, opened in batches so the listen backlog never overflows."""
    opened: list[socket.socket] = []
    for start in range(0, count, 100):
        for _ in range(min(100, count - start)):
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((source, 0))
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            opened.append(sock)
        time.sleep(0.02)
    return opened


def outcomes(socks: list[socket.socket], seconds: float) -> dict[str, int]:
    """Watch connections for `seconds`: how each ended (answered 503, closed silently) or stayed open."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    ended: dict[socket.socket, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(ended) < len(socks):
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            ended[sock] = data[:12].decode("latin-1").replace("HTTP/1.1 ", "answered ") if data else "closed"
            selector.unregister(sock)
    selector.close()
    counts: dict[str, int] = {}
    for sock in socks:
        kind = ended.get(sock, "still open")
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def attack_flood(watch: Watch, hold_s: float) -> list[Measurement]:
    with watch.measure("flood", settle_s=1.0) as m:
        socks = open_many(watch.port, FLOOD_CONNECTIONS, ATTACKER)
        time.sleep(1.0)
        other = get(watch.port, OTHER_CLIENT, "/api/health")
        same = get(watch.port, ATTACKER, "/api/health")
        m.notes.append(
            f"{OTHER_CLIENT} (another /24) got {other or 'no answer'}; {ATTACKER} itself got {same or 'no answer'}"
        )
        m.notes.append(f"{len(socks):,} silent connections after {hold_s:.0f} s: {json.dumps(outcomes(socks, hold_s))}")
        for sock in socks:
            sock.close()
    m.notes.append(f"other network served: {'yes' if other == 200 else 'no'}")
    return [m]


def attack_bodies(watch: Watch, hold_s: float) -> list[Measurement]:
    head = (LOGIN_HEAD + f"Content-Length: {BODY_ANNOUNCED}\r\n\r\n").encode()
    data = b"a" * BODY_SENT
    with watch.measure("bodies", settle_s=1.0) as m:
        socks: list[socket.socket] = []
        refused = 0
        for _ in range(BODY_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", watch.port), timeout=10, source_address=(ATTACKER, 0))
            socks.append(sock)
            try:
                sock.sendall(head + data)
            except OSError:
                refused += 1
        m.notes.append(
            f"{BODY_CONNECTIONS} x {BODY_SENT:,} of {BODY_ANNOUNCED:,} bytes; {refused} stopped while sending"
        )
        for sock in socks:
            sock.setblocking(False)
        m.notes.append(f"after {hold_s:.0f} s: {json.dumps(outcomes(socks, hold_s))}")
        for sock in socks:
            sock.close()
    return [m]


# --- the run --------------------------------------------------------------------------------------


ATTACKS = ("chunked", "names", "flood", "bodies")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pyz", default=str(ROOT / "dist" / "medama.pyz"), help="archive to run (build_zipapp.py)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run it with")
    parser.add_argument("--only", default=",".join(ATTACKS), help=f"comma-separated subset of {','.join(ATTACKS)}")
    parser.add_argument("--names", type=int, default=100_000, help="distinct names per name attack")
    parser.add_argument("--names-rate", type=float, default=0.0, help="requests/s of the name attacks (0: flat out)")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds the flood and bodies are held open")
    parser.add_argument("--drip-seconds", type=float, default=10.0, help="chunked-drip duration (0: skip it)")
    args = parser.parse_args(argv)
    only = args.only.split(",")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FLOOD_CONNECTIONS + 200
    if soft < needed:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (min(hard, needed) if hard != resource.RLIM_INFINITY else needed, hard)
        )
    results: list[Measurement] = []
    with server(Path(args.pyz), args.python) as (pid, port):
        watch = Watch(pid, port)
        watch.calibrate()
        print(f"medama {args.pyz} (pid {pid}, port {port}); probe alone: {watch.probe_cpu_per_s:.3f} CPU s/s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip
        print(HEADER, flush=True)
        with watch.measure("(no attack)", settle_s=5.0) as idle:
            idle.notes.append("the probe alone for 5 s: the machine's own noise floor")
        print(idle.line(), flush=True)
        print(f"{'':<15}{idle.notes[0]}", flush=True)
        for attack in only:
            if attack == "chunked":
                done = attack_chunked(watch, args.drip_seconds)
            elif attack == "names":
                done = attack_names(watch, args.names, args.names_rate)
            elif attack == "flood":
                done = attack_flood(watch, args.hold)
            elif attack == "bodies":
                done = attack_bodies(watch, args.hold)
            else:
                parser.error(f"unknown attack {attack!r}")
            for m in done:
                print(m.line(), flush=True)
                for note in m.notes:
                    print(f"{'':<15}{note}", flush=True)
            results.extend(done)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        watch.close()
    return verdict(results)


def cpu_ratio(attack: Measurement, baseline: Measurement) -> float:
    """CPU of `attack` over `baseline`'s, each at least one clock tick (the resolution of /proc)."""
    tick = 1 / CLOCK_TICKS
    return max(attack.cpu_s, tick) / max(baseline.cpu_s, tick)


def verdict(results: list[Measurement]) -> int:
    by_name = {m.name: m for m in results}
    missed = []
    if "chunked-cpu" in by_name and "plain-cpu" in by_name:
        ratio = cpu_ratio(by_name["chunked-cpu"], by_name["plain-cpu"])
        if ratio > 2:
            missed.append(f"chunked CPU {ratio:.1f}x the plain body's (target 2x)")
    for m in results:
        if m.probes_ms and (m.percentile(99) > 100 or m.probe_failures):
            missed.append(
                f"{m.name}: /api/health p99 {m.percentile(99):.0f} ms, {m.probe_failures} failed (target 100 ms)"
            )
    for name in ("script-names", "flood"):  # judged at the peak, which is stricter than after
        if name in by_name and by_name[name].rss_peak - by_name[name].rss_before > 10:
            grown = by_name[name].rss_peak - by_name[name].rss_before
            missed.append(f"{name}: RSS grew {grown:.1f} MiB at the peak (target 10)")
    if "flood" in by_name and "other network served: yes" not in by_name["flood"].notes:
        missed.append("flood: another network was not served")
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
