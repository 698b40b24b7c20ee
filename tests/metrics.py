"""Reading Jifen's metrics in tests, in one process or in multiprocess mode alike.

Counters are process-global and other tests move them too: assert what an operation added
(`Reading.moved`), never a value.
"""

import os

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The sample's value now (0 when it has never been written)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = REGISTRY
    if path:
        # In multiprocess mode the default registry holds no values: the per-process files do.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
    return registry.get_sample_value(name, labels or {}) or 0.0


class Reading:
    """A sample read before an operation; `moved()` is what the operation added to it since."""

    def __init__(self, name: str, **labels: str):
        self.name, self.labels = name, labels
        self.before = sample(name, labels)

    def moved(self) -> float:
        return sample(self.name, self.labels) - self.before
