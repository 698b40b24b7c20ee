"""Writes of the notifications app, one module per subject.

- reading: marking a user's notifications read (those seen, or all).
- announce: notifications and webhook outbox rows, written in the transaction of what they announce.
"""
