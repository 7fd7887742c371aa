"""The HTTP layer every source shares: a polite client, per-host rate limits, retries.

- :mod:`~harvester.http.transport`: ``build_client`` and the ``GuardedTransport`` under it
  (a deadline per request attempt, a stop that ends waits, a cap on the bytes read);
- :mod:`~harvester.http.ratelimit`: the ``RateLimiter``, one pace and one in-flight cap per
  host, shared by every job of the process;
- :mod:`~harvester.http.fetcher`: the ``Fetcher`` (paced GETs, retries with backoff, same-host
  redirects, secrets redacted) and the per-run request count.

Nothing here is global: ``app.build_app`` builds one client, one limiter and one fetcher
and hands them to the sources.
"""
