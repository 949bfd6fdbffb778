"""The Node bridge: npm Worlds judged by the Python suite.

``npm:<package>@<exact version>`` (``--world=npm:@workflow/world-local@4.4.1``)
resolves through this package's ``worlds_resolve`` hook to a backend whose
World is :class:`~reference_worlds.node.world.NodeWorld`: one Node.js process
per World object, loading the package and serving it over JSON lines
(``shim.mjs``). See docs/node-bridge.md.
"""
