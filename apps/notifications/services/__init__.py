"""Writes of the notifications app, one module per subject.

- retention: forgetting notifications older than JIFEN_NOTIFICATIONS_KEEP_DAYS.
- reading: marking a user's notifications read (those seen, or all).
- announce: notifications and webhook outbox rows, written in the transaction of what they announce.
- deliveries: sending the outbox (Standard Webhooks signing, backoff for a day, endpoint health), endpoints' services.
"""
