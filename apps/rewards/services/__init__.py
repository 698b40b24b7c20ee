"""The shop's writes, each in a transaction under the user's account lock.

- redemptions: redeeming an item (spend, stock taken exactly), fulfilling and cancelling (refund), in bulk for the admin.
"""
