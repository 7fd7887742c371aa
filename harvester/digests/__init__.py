"""Digests: the new studies of a subscription, from the store to a reader's inbox or channel.

::

    assemble (Digest, DigestItem: rank, badges, backlog)  ──▶ view (DigestView … ItemView;
    excerpt: abstract excerpt, highlighting)  ──▶ render (text, HTML: Jinja; RenderedDigest;
    fit: the excerpt length an email's HTML can carry) + blocks (Slack Block Kit)
    ──▶ compose (what goes into the outbox) ──▶ delivery (send, mark sent, retry)

Imports point down that line. assemble, excerpt, view, fit, render and blocks are pure
(records, query and store value types; no store access, no network); compose reads and
writes the outbox through the app's repository; delivery alone imports the notifiers and the
web interface (its signed links, readers' feedback and unsubscriptions).
"""
