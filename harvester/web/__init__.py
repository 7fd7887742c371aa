"""The web interface (Starlette, server-rendered, no JavaScript) and the signed links digests
carry to it.

- ``server``: ``create_app`` (security headers, session, routes); ``serve``: run it;
- ``site``: what the routes share; ``topics``: dashboard, topic and study pages, exports;
  ``recipients``: unsubscribe/feedback links and the admin's login;
- ``tokens``: the signed tokens; ``links``: those tokens put into a rendered digest;
- ``store``: feedback and unsubscriptions in the database; ``dashboard``: its figures.

Imports the app, the store, the digests' view/render and the exporters; digests import from
here only in :mod:`harvester.digests.delivery` (links, tokens, feedback, unsubscriptions).
"""
