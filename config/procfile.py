"""`make run`'s process runner: the Procfile's processes, their output interleaved, and a quiet stop.

    PORT=8000 python -m config.procfile [Procfile]

Before starting them it empties the processes' metrics directory (JIFEN_METRICS_DIR).

Ctrl-C (or SIGTERM, or the terminal closing) stops them all, and a clean stop prints one line. Three things make it clean:

- Each process runs in a session of its own, so Ctrl-C reaches only this runner, which sends one
  SIGTERM to each main process. A Celery worker then finishes its tasks and stops its pool itself;
  signalling the pool's processes too (as a process-group kill does) makes billiard log each one
  as an error ("ForkPoolWorker-1 exited with signal 15").
- On a terminal, the runner makes its own process group the foreground one, so `make` does not get
  the Ctrl-C either: it would report it as a failure ("make: *** [run] Interrupt", exit 130). The
  terminal is given back before the runner exits.
- What the processes print while they stop (Celery's shutdown banners) is kept, and shown only if
  one of them did not stop cleanly within STOP_TIMEOUT_S.
"""

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

STOP_TIMEOUT_S = 20
# A process that exits by itself or of the SIGTERM it was sent has stopped cleanly.
CLEAN_EXIT_CODES = {0, -signal.SIGTERM}


def read_procfile(path: Path) -> list[tuple[str, list[str]]]:
    """The Procfile's (name, argv) pairs, with $VARIABLES taken from the environment."""
    processes = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        processes.append((name.strip(), [os.path.expandvars(word) for word in shlex.split(command)]))
    return processes


def take_terminal() -> Callable[[], None]:
    """Make this process's group the terminal's foreground group; return what gives the terminal back."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return lambda: None
        previous = os.tcgetpgrp(fd)
        if previous != os.getpgrp():
            return lambda: None  # started in the background (`make run &`): the terminal is not ours to take
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may change the foreground only so
        os.tcsetpgrp(fd, os.getpgrp())
    except OSError:
        return lambda: None

    def give_back() -> None:
        with suppress(OSError):
            os.tcsetpgrp(fd, previous)

    return give_back


class Runner:
    def __init__(self, processes: list[tuple[str, list[str]]], *, stop_requested: threading.Event):
        self.names = [name for name, _ in processes]
        self.width = max(len(name) for name in self.names)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.processes: dict[str, subprocess.Popen] = {}
        self.readers: list[threading.Thread] = []
        self.stop_requested = stop_requested
        self.stopping = False
        self.held: list[str] = []  # output printed while stopping
        self.lock = threading.Lock()
        for name, argv in processes:
            self._start(name, argv)

    def _start(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
        )
        self.processes[name] = process
        reader = threading.Thread(target=self._relay, args=(name, process), daemon=True)
        reader.start()
        self.readers.append(reader)

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.say(name, line.rstrip("\n"))

    def say(self, name: str, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text}"
        with self.lock:
            if self.stopping:
                self.held.append(line)
            else:
                print(line, flush=True)

    def run(self) -> int:
        """Until Ctrl-C, SIGTERM or a process's exit; then stop them all. Returns the exit code."""
        exited = None
        while exited is None and not self.stop_requested.wait(0.2):
            exited = next((name for name, p in self.processes.items() if p.poll() is not None), None)
        with self.lock:
            self.stopping = True
        killed = self._stop_all()
        for reader in self.readers:
            reader.join(timeout=2)
        unclean = [name for name, p in self.processes.items() if p.returncode not in CLEAN_EXIT_CODES or name in killed]
        if exited is None and not unclean:
            print(f"Stopped {', '.join(self.names[:-1])} and {self.names[-1]}.", flush=True)
            return 0
        print("\n".join(self.held), flush=True)
        if exited is not None:
            print(f"{exited} exited with code {self.processes[exited].returncode}; stopped the others.", flush=True)
        for name in killed:
            print(f"{name} did not stop within {STOP_TIMEOUT_S} s of SIGTERM and was killed.", flush=True)
        return 1

    def _stop_all(self) -> list[str]:
        """SIGTERM each main process, SIGKILL the groups of those still running after STOP_TIMEOUT_S."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        killed = []
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                killed.append(name)
        return killed


def empty_metrics_dir() -> None:
    """Start the processes' metrics from nothing (prometheus_client's multiprocess files; docs/production.md,
    "Metrics"): the directory is the one config.settings gives every process this runner starts."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    from config.prometheus import empty_metrics_dir

    empty_metrics_dir(settings.JIFEN_METRICS_DIR)


def main(argv: list[str]) -> int:
    procfile = Path(argv[1] if len(argv) > 1 else "Procfile")
    empty_metrics_dir()
    stop_requested = threading.Event()
    # SIGHUP too: the processes have sessions of their own, so a closed terminal reaches only the runner.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: stop_requested.set())
    give_back = take_terminal()
    try:
        return Runner(read_procfile(procfile), stop_requested=stop_requested).run()
    finally:
        give_back()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
