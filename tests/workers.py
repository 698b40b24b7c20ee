"""Real Celery worker processes for end-to-end and fault tests."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import database_url_for_workers

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60


class WorkerProcess:
    """`celery -A config worker` against the test database, its output kept for failure reports."""

    def __init__(self, *, concurrency: int = 1, name: str = "w1", env: dict[str, str] | None = None):
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_workers(),
            "DJANGO_SETTINGS_MODULE": "tests.django_settings",
            **(env or {}),
        }
        self.output: list[str] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT_S):
            self.stop()
            raise RuntimeError("worker did not become ready:\n" + self.log())

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def log(self) -> str:
        return "".join(self.output[-200:])

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(predicate, *, timeout_s: float = 15, interval_s: float = 0.1):
    """Poll `predicate` until it returns something truthy; return that, or None on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval_s)
    return None
