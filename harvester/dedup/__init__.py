"""Deduplication, pure: match features of a record, pairwise similarity, the one decision of
which work a record joins (rules), batch clustering and merging, and the `harvester dedup` file
formats. The store's page writer looks candidates up and applies the same rules.
"""
