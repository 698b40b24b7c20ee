"""`make run`'s quiet side: Ctrl-C is a clean stop with one line, and beat's routine ticks log at DEBUG."""

import contextlib
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.celery import RoutineTicksAtDebug

ROOT = Path(__file__).resolve().parents[1]

# Stand-ins for web, worker and beat: they print, then wait to be stopped; "slow" takes a moment
# to stop and says so, as a Celery worker's warm shutdown does.
SLOW_TO_STOP = (
    "import signal, sys, time; "
    "signal.signal(signal.SIGTERM, lambda *a: (print('warm shutdown'), time.sleep(0.5), sys.exit(0))); "
    "print('slow up', flush=True); time.sleep(600)"
)
PROCFILE = f"""\
web: {sys.executable} -c "import time; print('web up', flush=True); time.sleep(600)"
slow: {sys.executable} -c "{SLOW_TO_STOP}"
"""


def read_until(fd: int, output: bytearray, needle: bytes, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while needle not in output and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: everything on it has exited
                return needle in output
            if not chunk:
                return needle in output
            output.extend(chunk)
    return needle in output


def runner_env(tmp_path: Path) -> dict[str, str]:
    """The test run's environment with a metrics directory of the runner's own: it empties the one it is given."""
    return {**os.environ, "JIFEN_METRICS_DIR": str(tmp_path / "metrics")}


def run_procfile(procfile: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`python -m config.procfile <procfile>` to its end, its output captured."""
    command = [sys.executable, "-m", "config.procfile", str(procfile)]
    return subprocess.run(command, cwd=ROOT, env=runner_env(tmp_path), capture_output=True, text=True, timeout=60)


def ctrl_c_in_a_terminal(argv: list[str], *, ready: tuple[bytes, ...], cwd: Path, env: dict[str, str]) -> tuple[str, int]:
    """Run argv on a pseudo-terminal, press Ctrl-C once each of `ready` shows; return what followed and the exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.environ.update(env)
        # As a developer types it, not as a sub-make of `make test` (which would say "make[1]: Leaving
        # directory"). After the update: `env` is a copy of the test run's environment, make's variables included.
        for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):
            os.environ.pop(name, None)
        os.execvp(argv[0], argv)  # noqa: S606 - a fixed command of the test's
    output = bytearray()
    try:
        for needle in ready:  # every process has started and said so: nothing more comes before the Ctrl-C
            assert read_until(fd, output, needle, 30), output.decode(errors="replace")
        time.sleep(0.3)
        before = len(output)
        os.write(fd, b"\x03")  # the terminal turns it into SIGINT for its foreground process group
        read_until(fd, output, b"\0never", 30)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return output[before:].decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_ctrl_c_under_make_stops_every_process_with_one_line_and_success(tmp_path):
    (tmp_path / "Procfile").write_text(PROCFILE)
    (tmp_path / "Makefile").write_text(f"run:\n\t@cd {ROOT} && {sys.executable} -m config.procfile {tmp_path / 'Procfile'}\n")

    after, code = ctrl_c_in_a_terminal(["make", "run"], ready=(b"web up", b"slow up"), cwd=tmp_path, env=runner_env(tmp_path))

    lines = [line for line in after.replace("^C", "").splitlines() if line.strip()]
    assert lines == ["Stopped web and slow."], after
    assert code == 0, after


def test_a_process_that_dies_stops_the_others_and_fails(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(PROCFILE.splitlines()[0] + f'\nbroken: {sys.executable} -c "import sys; sys.exit(3)"\n')
    result = run_procfile(procfile, tmp_path)
    assert result.returncode == 1
    assert "broken exited with code 3; stopped the others." in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_or_a_closed_terminal_stops_every_process(tmp_path, signum):
    pid_file = tmp_path / "web.pid"
    web = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); print('web up', flush=True); time.sleep(600)"
    procfile = tmp_path / "Procfile"
    procfile.write_text(f'web: {sys.executable} -c "{web}"\nslow: {sys.executable} -c "{SLOW_TO_STOP}"\n')
    command = [sys.executable, "-m", "config.procfile", str(procfile)]
    runner = subprocess.Popen(command, cwd=ROOT, env=runner_env(tmp_path), stdout=subprocess.PIPE, text=True)
    started = set()
    for line in runner.stdout:
        started |= {ready for ready in ("web up", "slow up") if ready in line}
        if len(started) == 2:
            break
    runner.send_signal(signum)
    assert runner.wait(timeout=30) == 0
    assert "Stopped web and slow." in runner.stdout.read()
    with pytest.raises(ProcessLookupError):  # the processes, in sessions of their own, were stopped too
        os.kill(int(pid_file.read_text()), 0)


def test_the_runner_empties_the_metrics_directory_before_starting_the_processes(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_4242.db").write_bytes(b"an earlier run's counts")
    (metrics / "notes.txt").write_text("not prometheus_client's: kept")
    procfile = tmp_path / "Procfile"
    listing = f"import os; print(sorted(os.listdir({str(metrics)!r})), flush=True)"
    procfile.write_text(f'lister: {sys.executable} -c "{listing}"\n')
    result = run_procfile(procfile, tmp_path)
    assert "['notes.txt']" in result.stdout, result.stdout + result.stderr


def routine_and_other_records(logger_name: str) -> list[logging.LogRecord]:
    """Records as Celery makes them: beat sending its heartbeat task; a worker receiving it and an event's task."""
    if logger_name == "celery.beat":
        args = ("heartbeat", "apps.tracking.tasks.heartbeat")
        return [logging.LogRecord(logger_name, logging.INFO, __file__, 1, "Scheduler: Sending due task %s (%s)", args, None)]
    received = "Task %(name)s[%(id)s] received"
    return [
        logging.LogRecord(logger_name, logging.INFO, __file__, 1, received, ({"name": name, "id": "1"},), None)
        for name in ("apps.tracking.tasks.heartbeat", "apps.tracking.tasks.process_event")
    ]


@pytest.mark.parametrize("logger_name", ["celery.beat", "celery.worker.strategy", "celery.app.trace"])
def test_routine_ticks_log_at_debug_and_events_at_info(logger_name, caplog):
    assert any(isinstance(f, RoutineTicksAtDebug) for f in logging.getLogger(logger_name).filters)
    logger = logging.getLogger(logger_name)
    with caplog.at_level(logging.INFO, logger=logger_name):
        for record in routine_and_other_records(logger_name):
            logger.handle(record)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == (
        [] if logger_name == "celery.beat" else [("INFO", "Task apps.tracking.tasks.process_event[1] received")]
    )
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=logger_name):
        for record in routine_and_other_records(logger_name):
            logger.handle(record)
    assert caplog.records[0].levelname == "DEBUG" and "heartbeat" in caplog.records[0].getMessage()
