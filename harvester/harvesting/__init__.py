"""Harvesting: one topic × source window (harvest), history (backfill), the daemon's scheduler,
progress and status reports, and the preview commands (`try`, `check`).
"""
