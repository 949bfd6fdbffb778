"""``worlds new``: a World package to start from, rendered from templates shipped with the SDK.

Two templates share every file but the World itself (``pyproject.toml`` with the
``worlds`` entry point, ``tests/``, ``tox.ini``, a GitHub Actions workflow, a README
and a manifest entry ready to submit):

- ``skeleton``: the World's glue over the SDK's shared parts (``rules.decide``,
  ``Consumer``, ``follow_stream``, the pagination and validation checks) and a
  ``Store`` whose every method raises ``NotImplementedError`` naming the rules that
  need it. The suite runs to a full per-rule verdict table from the first minute,
  each unimplemented part failing its rules by name.
- ``memory``: a subclass of :class:`worlds_sdk.memory.MemoryWorld`, which passes the
  single-process suite, so an author starts green and replaces storage seam by seam.

Templates live in ``worlds_sdk/templates/<name>/`` (``common`` is shared). A file
``x.tmpl`` renders to ``x``; a path segment ``dot-x`` to ``.x`` (so the wheel
needs no hidden directories); ``{{package}}`` in a path is the import package; in
file text ``{{id}}``, ``{{package}}``, ``{{distribution}}``, ``{{class}}``,
``{{title}}``, ``{{template}}``, ``{{sdk_version}}`` and ``{{capabilities}}`` are replaced.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

TEMPLATES = ("skeleton", "memory")
"""The templates ``worlds new --template`` offers; the first is the default."""

WORLD_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
PLACEHOLDER_RE = re.compile(r"\{\{([a-z_]+)\}\}")


class ScaffoldError(ValueError):
    """``worlds new`` cannot create the package: a bad name or template, or a directory in the way."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorldNames:
    """The names one World goes by: its id, import package, distribution, class prefix and title."""

    id: str
    package: str
    distribution: str
    class_name: str
    title: str

    @classmethod
    def for_id(cls, world_id: str) -> WorldNames:
        """Names derived from a World id (``my-world`` -> package ``my_world``, class ``MyWorld``)."""
        if not WORLD_ID_RE.match(world_id):
            raise ScaffoldError(
                f"{world_id!r} is not a World id: use lowercase letters, digits, '-' and '_', starting with a letter"
            )
        package = world_id.replace("-", "_")
        if keyword.iskeyword(package):
            raise ScaffoldError(f"{world_id!r} cannot be a Python package name (it is a keyword)")
        words = [word for word in re.split(r"[-_]", world_id) if word]
        return cls(
            id=world_id,
            package=package,
            distribution=world_id,
            class_name="".join(word.capitalize() for word in words),
            title=" ".join(word.capitalize() for word in words),
        )


def create(world_id: str, directory: Path, *, template: str = TEMPLATES[0], sdk_version: str) -> list[Path]:
    """Render ``template`` for ``world_id`` into ``directory`` (new or empty); return the files written."""
    if template not in TEMPLATES:
        raise ScaffoldError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")
    names = WorldNames.for_id(world_id)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ScaffoldError(f"{directory} already exists and is not an empty directory; nothing was written")
    values = {
        "id": names.id,
        "package": names.package,
        "distribution": names.distribution,
        "class": names.class_name,
        "title": names.title,
        "template": template,
        "sdk_version": sdk_version,
        "capabilities": json.dumps(_declared_capabilities(template)),
    }
    files = {**_template_files("common"), **_template_files(template)}
    written = []
    for relative, source in sorted(files.items()):
        target = directory / _render(relative, values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_render(source.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(target)
    return written


def _declared_capabilities(template: str) -> list[str]:
    """What the template's ``plugin.py`` declares, for its manifest entry (the generated tests check both agree)."""
    if template == "memory":
        from .memory import CAPABILITIES

        return sorted(CAPABILITIES)
    return []


def _template_files(name: str) -> dict[str, Traversable]:
    """The files of one template by rendered relative path (``dot-`` and ``.tmpl`` resolved)."""
    root = resources.files("worlds_sdk").joinpath("templates", name)
    found: dict[str, Traversable] = {}

    def walk(node: Traversable, parts: tuple[str, ...]) -> None:
        for child in node.iterdir():
            if child.name == "__pycache__":
                continue
            part = "." + child.name.removeprefix("dot-") if child.name.startswith("dot-") else child.name
            if child.is_dir():
                walk(child, (*parts, part))
            else:
                found["/".join((*parts, part.removesuffix(".tmpl")))] = child

    walk(root, ())
    return found


def _render(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ScaffoldError(f"template placeholder {{{{{key}}}}} has no value")  # a bug in a template
        return values[key]

    return PLACEHOLDER_RE.sub(replace, text)
