"""Writes of the tracking app, one module per subject.

- pipeline: events from the web process to the workers (hand-off, outbox) and their processing there.
- service_keys: other systems' keys, the signatures seen, and accepting their batches of events.
"""
