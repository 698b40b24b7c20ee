"""Writes of the ledger, one module per subject.

- entries: accounts, their locks, and posting entries (one, a list, or a worker's whole batch).
- adjustments: operators' adjustments, posted at once or approved by a second operator.
- lots: every credit a lot with its expiry, debits oldest first, refunds giving the same lots back (SPEC §11).
- leaderboard: the leaderboard totals kept with the entries that change them, and their rebuild.
- lots: the lots every credit makes and every debit takes from (expiry, invariant 6).
- expiry: the daily expiry job, lots that reached their end leaving their accounts once (G14).
- announcements: what a batch of entries announces (awards, reversals, adjustments, expiry, levels reached; SPEC §12).
- expiry_notices: telling users ahead of time of points about to expire, once per account and day.
"""
