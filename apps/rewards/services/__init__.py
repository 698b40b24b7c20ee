"""Writes of the rewards app, one module per subject, each in a transaction (under the user's account lock for points).

- items: the catalogue's authoring workflow (editing → review → active → retired), frozen fields, copy as draft.
- redemptions: redeeming an item (spend, stock taken exactly), fulfilling and cancelling (refund), in bulk for the admin.
- holds: points another system holds on a user's account (a checkout paying with points), captured or released.
- announcements: what redemptions and holds announce, each status once (SPEC §12).
"""
