"""The pluggy hooks through which packages contribute Worlds.

A package registers a plugin module under the ``worlds`` entry-point group::

    # pyproject.toml
    [project.entry-points.worlds]
    mine = "my_world.plugin"

and that module implements the hooks below with :data:`hookimpl`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from .backend import WorldBackend

PROJECT = "worlds"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class WorldsHookspecs:
    @hookspec
    def worlds_register(self) -> Sequence[WorldBackend]:  # type: ignore[empty-body]
        """Return the World backends this plugin provides.

        Example plugin module::

            from worlds_sdk import WorldBackend, Capability, hookimpl, temp_dir_sandbox

            @hookimpl
            def worlds_register():
                return [WorldBackend(
                    id="mine",
                    factory=lambda config: MyWorld(**config),
                    sandbox=temp_dir_sandbox(),  # a fresh directory per test instance
                    spec_versions=frozenset({3}),
                    capabilities=frozenset({Capability.DURABLE_QUEUE}),
                )]
        """

    @hookspec
    def worlds_resolve(self, reference: str) -> WorldBackend | None:
        """Return the backend for a ``scheme:…`` reference this plugin understands, else ``None``.

        For Worlds that cannot be listed in advance, such as any version of any
        npm package (``npm:@workflow/world-local@4.4.1``). Only consulted for a
        reference with a colon that is not a ``module:attr`` reference. Raise
        :class:`~worlds_sdk.discovery.DiscoveryError` for a reference of your
        scheme that is malformed, so the user sees why rather than "not found".
        """
