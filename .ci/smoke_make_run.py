"""`make run` as a user starts it, on a terminal: alice's 签到 reaches her points page (smoke_checkin.py),
beat's routine ticks stay out of the log, and one Ctrl-C stops everything with one line and success."""

import os
import pty
import select
import sys
import threading
import time
from pathlib import Path

from smoke_checkin import main as checkin_smoke

ROOT = Path(__file__).resolve().parent.parent
QUIET_S = 12  # longer than beat's 10 s ticks: at least one of each would have been logged
STOP_TIMEOUT_S = 30
STOPPED_LINE = "Stopped web, worker and beat."
ROUTINE_TICKS = ("Sending due task", "tasks.heartbeat", "tasks.flush_outbox", "tasks.sweep_inbox")


class Terminal:
    """`make run` on a pseudo-terminal; everything it prints is kept (and written to `log`)."""

    def __init__(self, port: str, log: Path):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(ROOT)
            os.execvp("make", ["make", "run", f"PORT={port}"])  # noqa: S606, S607 - the README's command
        self.output = bytearray()
        self.log = log.open("wb")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            if not select.select([self.fd], [], [], 0.2)[0]:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)
            self.log.write(chunk)
            self.log.flush()

    def text(self, start: int = 0) -> str:
        return self.output[start:].decode(errors="replace").replace("\r\n", "\n")

    def ctrl_c(self) -> int | None:
        """Press Ctrl-C; make's exit code, or None if it is still running after STOP_TIMEOUT_S."""
        os.write(self.fd, b"\x03")
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                time.sleep(0.5)  # the reader takes the last output
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.2)
        return None


def main(port: str) -> int:
    log = ROOT / "var" / "smoke-make-run.log"
    log.parent.mkdir(exist_ok=True)
    terminal = Terminal(port, log)
    problems = []
    if checkin_smoke(f"http://127.0.0.1:{port}") != 0:
        problems.append("the sign-in did not reach the points page")
    quiet_from = len(terminal.output)
    time.sleep(QUIET_S)
    ticks = [line for line in terminal.text(quiet_from).splitlines() if any(tick in line for tick in ROUTINE_TICKS)]
    if ticks:
        problems.append("beat's routine ticks logged at INFO:\n  " + "\n  ".join(ticks[:9]))

    stop_from = len(terminal.output)
    code = terminal.ctrl_c()
    after = [line for line in terminal.text(stop_from).replace("^C", "").splitlines() if line.strip()]
    if code is None:
        problems.append(f"make run did not stop within {STOP_TIMEOUT_S} s of Ctrl-C")
        os.killpg(terminal.pid, 9)
    elif code != 0:
        problems.append(f"make run exited with {code} after Ctrl-C")
    if after != [STOPPED_LINE]:
        problems.append("Ctrl-C printed:\n  " + "\n  ".join(after))
    if problems:
        print("--- make run log (tail)\n" + "\n".join(terminal.text().splitlines()[-120:]))
        print("\n".join(problems))
        return 1
    print(f"make run stopped cleanly on Ctrl-C: {STOPPED_LINE!r}, exit 0")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
