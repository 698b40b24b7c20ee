"""Prometheus's multiprocess mode for Jifen's processes (docs/production.md, "Metrics").

Every process of a host (gunicorn's or runserver's web process, each Celery pool process) writes
its counters and histograms to files of its own in JIFEN_METRICS_DIR (config/settings.py sets
PROMETHEUS_MULTIPROC_DIR to it before anything imports prometheus_client); a scrape reads them all
and adds them up. That is what makes a worker's figures right with any number of pool processes,
at no cost per event beyond a write to a memory-mapped file, and with nothing to push.

Nothing here imports prometheus_client at module level: config.procfile imports this module
before any settings exist.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def process_registry():
    """The registry of this host's processes: all of them in multiprocess mode, else this one's."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def empty_metrics_dir(path: Path) -> None:
    """Remove the files of earlier runs' processes: to run before the host's processes start, never while they run.

    The files of dead processes are still added up (a counter's total includes its dead processes'
    counts), so a directory kept across restarts would only grow, and a restart of everything is
    when the counters may start again from zero (Prometheus's rate() takes that as a reset).
    """
    # Only prometheus_client's own files (counter_1234.db, histogram_1234.db, gauge_all_1234.db, ...):
    # a directory set by mistake to somewhere else loses nothing else.
    for entry in path.glob("*_[0-9]*.db") if path.is_dir() else ():
        if entry.is_file() and entry.stem.rpartition("_")[2].isdigit():
            entry.unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)


def mark_process_dead(pid: int) -> None:
    """A process ended: drop its live gauges' files (prometheus_client's bookkeeping; counters are kept)."""
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


def start_worker_exporter(port: int, address: str = "0.0.0.0"):  # noqa: S104 - Prometheus scrapes it from elsewhere
    """Serve this host's processes' metrics on `port` (a worker host without a web process), in a
    daemon thread of the calling process; returns the server (its `shutdown()` stops it)."""
    from prometheus_client import start_http_server

    server, _ = start_http_server(port, addr=address, registry=process_registry())
    logger.info("serving this host's processes' metrics on port %s", port)
    return server
