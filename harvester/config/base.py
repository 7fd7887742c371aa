"""What every configuration table shares: strict frozen models, secrets read from the
environment, the one check of source names, and the error that knows its key path."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from harvester.registry import SOURCE_NAMES

_Names = TypeVar("_Names", bound=Iterable[str])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def env_secret(var: str | None) -> SecretStr | None:
    """The value of the environment variable ``var``, None when it is not set.

    A named but unset variable is not an error here: it is one only where the secret is used
    (:meth:`Settings.require_channel_secrets` for the commands that send; a source without its
    key is skipped or runs keyless, with a warning), so `status`, `export`, `try` and friends
    work before any secret exists. :meth:`Settings.missing_secrets` lists what is unset."""
    if var is None:
        return None
    value = os.environ.get(var)
    return SecretStr(value) if value else None


class WithSecrets(Strict):
    """A table whose secrets come from the environment: each key in ``SECRETS`` (a field,
    never printed nor written back) is read from the variable its ``*_env`` key names, and
    may not be written in the file itself."""

    SECRETS: ClassVar[Mapping[str, str]] = {}  # secret field → the key naming its variable

    @model_validator(mode="before")
    @classmethod
    def _read_secrets(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        for secret, env in cls.SECRETS.items():
            if secret in data:
                raise ValueError(
                    f"{secret} must not be written in the file; set {env} to the name of "
                    "an environment variable that holds it"
                )
        data = dict(data)
        for secret, env in cls.SECRETS.items():
            data[secret] = env_secret(data.get(env))
        return data


def one_or_many(v: Any) -> Any:
    """A single string where a list is expected (``to = "a@b.org"``) is a list of one."""
    return (v,) if isinstance(v, str) else v


def known_sources(names: _Names) -> _Names:
    """``names`` unchanged if each is a source in the registry, else ValueError naming it."""
    for name in names:
        if name not in SOURCE_NAMES:
            raise ValueError(f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}")
    return names


class KeyedError(ValueError):
    """A cross-reference error that knows its own key path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
