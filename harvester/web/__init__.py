"""The web interface: dashboard, topic and study pages, one-click unsubscribe, feedback.

``create_app(app)`` (harvester.web.server) builds the Starlette ASGI app over a built
:class:`harvester.app.App`; ``harvester web`` serves it with uvicorn."""
