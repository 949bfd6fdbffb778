"""Parsing a World's settings: a JSON mapping into a frozen dataclass, strictly.

A World's config crosses process boundaries as JSON, so every World parses one;
the rules are the same for all (an unknown key or a wrong type is an error, never
ignored), so they live here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from .errors import ValidationError

C = TypeVar("C")


def parse_settings(cls: type[C], config: Mapping[str, Any]) -> C:
    """Build ``cls`` (a dataclass whose fields all have defaults) from ``config``.

    Fields annotated ``str`` need a non-empty string, ``str | None`` a non-empty
    string or ``None``, ``bool`` ``true`` or ``false``, ``int`` a positive integer
    and ``float`` a positive number.
    Errors are :class:`ValidationError` naming ``config.<key>``.
    """
    types = {f.name: str(f.type) for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(config) - set(types))
    if unknown:
        raise ValidationError(f"unknown keys {unknown}; known: {sorted(types)}", field="config")
    for key, value in config.items():
        where, kind = f"config.{key}", types[key]
        if kind in ("str", "str | None"):
            if not (value is None and kind == "str | None") and (not isinstance(value, str) or not value):
                raise ValidationError("must be a non-empty string", field=where)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ValidationError("must be true or false", field=where)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValidationError("must be a positive number", field=where)
        elif kind == "int" and not isinstance(value, int):
            raise ValidationError("must be a positive integer", field=where)
    return cls(**config)
