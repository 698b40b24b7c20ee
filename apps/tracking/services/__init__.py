"""Writes of the tracking app, one module per subject.

- pipeline: events from the web process to the workers (hand-off, outbox) and their processing there.
- parking: setting aside an event that cannot be processed, whatever its payload holds.
- service_keys: other systems' keys, the signatures seen, and accepting their batches of events.
"""
