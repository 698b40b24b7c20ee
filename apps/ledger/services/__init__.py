"""Writes of the ledger, one module per subject.

- entries: accounts, their locks, and posting entries (one, a list, or a worker's whole batch).
- adjustments: operators' adjustments, posted at once or approved by a second operator.
- leaderboard: the leaderboard totals kept with the entries that change them, and their rebuild.
- lots: every credit a lot with its expiry, every debit taking the soonest-expiring lots first.
- expiry: the daily expiry job, lots that reached their end leaving their accounts once (G14).
"""
