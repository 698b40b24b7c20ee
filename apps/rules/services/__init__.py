"""Writes of the rules app, one module per subject.

- scoring: applying the engine's decisions to progress rows, counted completions, places and the ledger.
- rescore: re-scoring one user and rule from a period on, when a late event or a reversal changes the time order (SPEC §6).
- backfill: awarding what past completions earned under a rule activated after them.
- workflow: the rule workflow (editing → active → retired), frozen fields, copy as draft.
- sheets: rule sheets (task configs, rules, per-object points) in and out of CSV, XLSX and JSON.
- badges: badge awards kept with the awards that grant them, and settled by the re-score (SPEC §12).
"""
