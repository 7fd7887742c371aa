"""Digests: assemble the new studies of a subscription, turn them into view values, render them
(text, HTML, Slack blocks) and deliver them through the outbox to the notifiers.
"""
