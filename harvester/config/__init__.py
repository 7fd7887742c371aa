"""The configuration: TOML in, validated frozen settings out.

Every error names the file, the key path and the problem, e.g.::

    config/harvester.toml: topics[0].schedule: invalid cron "* * *": Wrong number of fields

Secrets never live in the file: it names environment variables (``api_key_env``), whose values
are read once (:mod:`~harvester.config.base`) and kept as :class:`pydantic.SecretStr` so they
never print.

Modules: ``base`` (strict models, secrets from the environment, the source-name check),
``topics``, ``subscriptions`` (with cadence and channels), ``sections`` (database, sources,
daemon, http, feeds, web), ``settings`` (the whole, its cross-references and secrets),
``loading`` (read, validate, explain errors). Import a model from its module; this package
re-exports only the entry points every command uses: ``Settings``, ``load_settings``,
``parse_settings`` and ``default_config_path``.

May import: errors, query (to check a topic's query), registry (the source names); nothing
that does I/O beyond reading the file and the environment.
"""

from harvester.config.loading import default_config_path, load_settings, parse_settings
from harvester.config.settings import Settings

__all__ = ["Settings", "default_config_path", "load_settings", "parse_settings"]
