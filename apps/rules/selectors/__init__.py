"""Reads of the rules app, one module per subject.

- rules: the workers' active-rules cache, per-object amounts, users' progress, a rule's live figures.
- dry_run: a rule's past completions streamed in time order and replayed without writing.
- review: the review queue (drafts submitted for review, and those sent back).
- badges: the badges a user holds, and whether badge awards agree with the awards of their rules (verify_ledger).
"""
