"""harvester: new studies on your topics, from the public bibliographic APIs."""

__version__ = "0.1.0"
