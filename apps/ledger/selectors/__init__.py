"""Reads of the ledger, one module per subject.

- ledger: balances, history, the per-user page's data, and the invariants `verify_ledger` checks.
- leaderboard: a board's page in a period, one user's standing, and the totals' check.
- levels: a user's balance, earned points and level in each point type.
- point_types: a type's expiry policy in words, and what uses a type (why it cannot be deleted).
- expiring: what expires when, a user's by date and everyone's per month ahead.
"""
