"""Writes of the rewards app, one module per subject, each under the users' account locks (SPEC §11).

- holds: points another system holds on a user's account (a checkout paying with points), captured or released.
"""
