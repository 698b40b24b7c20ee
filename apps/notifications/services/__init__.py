"""Writes of the notifications app, one module per subject.

- announce: notifications and webhook outbox rows, written in the transaction of what they announce.
"""
