"""Processes of the benchmark: a pinned server, wrk runs, and /proc readings of CPU and RSS."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

LUA_DIR = Path(__file__).parent / "lua"
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_CORE = "0"
LOAD_CORE = "1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process pinned to `SERVER_CORE`, listening on `url`."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        """The server's process id (taskset execs, so it is the Python process)."""
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its live child processes."""
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.pid)) / CLOCK_TICKS

    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {self.pid}")


@contextmanager
def run_server(
    name: str, argv: list[str], env: dict[str, str], port: int, work_dir: Path
) -> Iterator[Server]:
    """Start `argv` pinned to one core, wait until it answers HTTP, stop it on exit.

    Raises:
        RuntimeError: it exited or did not answer within 30 seconds.
    """
    log_path = work_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *argv],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
            cwd=work_dir,  # no stray .env from the caller's folder
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        _stop(process)


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{_tail(server.log_path)}")
        try:
            httpx.get(server.url + "/api/v1/leads", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        return
    raise RuntimeError(f"{server.name} did not start in 30 s:\n{_tail(server.log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _process_tree(pid: int) -> list[int]:
    """Return `pid` and its descendants, by parent id (no /proc/*/children on every kernel)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree = [pid]
    for member in tree:
        tree.extend(child for child, parent in parents.items() if parent == member)
    return tree


def _cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    fields = stat.rsplit(")", 1)[1].split()  # the name may hold spaces; fields follow ")"
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured over one run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def run_wrk(
    script: str, url: str, *, seconds: float, connections: int, env: dict[str, str]
) -> WrkResult:
    """Run wrk pinned to `LOAD_CORE` with `lua/<script>.lua` and return its figures.

    Raises:
        RuntimeError: wrk failed or printed no result line.
    """
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        "--timeout",
        "5s",
        "-s",
        str(LUA_DIR / f"{script}.lua"),
        url,
    ]
    done = subprocess.run(
        argv,
        env={**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **env},
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line.removeprefix("BENCH_RESULT "))
            return WrkResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors=data["non_2xx"] + data["socket_errors"],
            )
    raise RuntimeError(f"wrk {script} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextmanager
def sample_rss(server: Server, interval: float = 0.1) -> Iterator[list[int]]:
    """Collect the server's RSS (KiB) every `interval` seconds while the block runs."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(server.rss_kib())
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=5)
