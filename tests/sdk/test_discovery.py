"""Discovery: plugins in the ``worlds`` entry-point group, the manifest, and ``module:attr`` references.

Distributions are faked the way pluggy reads them: real ``*.dist-info``
directories (METADATA + entry_points.txt) in a temporary directory, with
``importlib.metadata.distributions`` narrowed to that directory so the
environment's own plugins stay out of the picture. Nothing is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from worlds_sdk import Capability, WorldBackend
from worlds_sdk.discovery import (
    DiscoveryError,
    WorldNotFoundError,
    WorldNotInstalledError,
    discover,
    load_backend,
    resolve_world,
)
from worlds_sdk.manifest import parse_manifest


def plugin_source(*world_ids: str, capabilities: str = "{Capability.DURABLE_QUEUE}", extra: str = "None") -> str:
    """A plugin module registering one backend per id."""
    backends = ", ".join(
        f"WorldBackend(id={world_id!r}, factory=dict, sandbox=temp_dir_sandbox(), spec_versions=frozenset({{3}}), "
        f"capabilities=frozenset({capabilities}), description='fake {world_id}', extra={extra})"
        for world_id in world_ids
    )
    return textwrap.dedent(f"""
        from worlds_sdk import Capability, Extra, WorldBackend, hookimpl, temp_dir_sandbox

        @hookimpl
        def worlds_register():
            return [{backends}]
    """)


class FakeSite:
    """A directory that ``importlib.metadata`` and ``import`` both see, holding fake distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def install(self, distribution: str, entry_points: dict[str, str], modules: dict[str, str] | None = None) -> None:
        info = self.root / f"{distribution.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[worlds]\n{lines}")
        for module, source in (modules or {}).items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    real_distributions = importlib.metadata.distributions
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: real_distributions(path=[str(tmp_path)]))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield FakeSite(tmp_path)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_a_plugin_backend_is_found_with_its_plugin_and_distribution(site: FakeSite) -> None:
    site.install("fake-alpha", {"alpha": "alpha_plugin"}, {"alpha_plugin": plugin_source("alpha")})

    discovered = discover()

    (world,) = discovered.worlds
    assert (world.backend.id, world.plugin, world.distribution) == ("alpha", "alpha", "fake-alpha")
    assert world.backend.capabilities == {Capability.DURABLE_QUEUE}
    assert discovered.broken == ()


@pytest.mark.parametrize("reference", ["alpha", "alpha-plugin", "fake-alpha", "Fake_Alpha"])
def test_a_world_resolves_by_id_entry_point_or_distribution(site: FakeSite, reference: str) -> None:
    site.install("fake-alpha", {"alpha-plugin": "alpha_plugin"}, {"alpha_plugin": plugin_source("alpha")})

    assert resolve_world(reference).id == "alpha"


def test_the_same_world_id_from_two_plugins_is_an_error_naming_both(site: FakeSite) -> None:
    site.install("fake-one", {"one": "one_plugin"}, {"one_plugin": plugin_source("shared")})
    site.install("fake-two", {"two": "two_plugin"}, {"two_plugin": plugin_source("shared")})

    with pytest.raises(DiscoveryError, match="'shared' is registered twice") as caught:
        discover()
    assert "plugin 'one' (fake-one)" in str(caught.value)
    assert "plugin 'two' (fake-two)" in str(caught.value)


def test_one_entry_point_name_in_two_distributions_is_an_error(site: FakeSite) -> None:
    site.install("fake-one", {"same": "one_plugin"}, {"one_plugin": plugin_source("one")})
    site.install("fake-two", {"same": "two_plugin"}, {"two_plugin": plugin_source("two")})

    with pytest.raises(DiscoveryError, match="entry point 'same' in group 'worlds' is declared twice"):
        discover()


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("import no_such_dependency_xyz\n", "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"),
        (
            "from worlds_sdk import hookimpl\n\n@hookimpl\ndef worlds_regsiter():\n    return []\n",
            "PluginValidationError: unknown hook 'worlds_regsiter'",
        ),
        (
            "from worlds_sdk import hookimpl\n\n@hookimpl\ndef worlds_register():\n    return 'mine'\n",
            "DiscoveryError: worlds_register returned a str, not a list of WorldBackend",
        ),
    ],
    ids=["import-error", "unknown-hook", "bad-registration"],
)
def test_a_broken_plugin_is_reported_and_does_not_hide_the_others(site: FakeSite, source: str, error: str) -> None:
    site.install("fake-good", {"good": "good_plugin"}, {"good_plugin": plugin_source("good")})
    site.install("fake-bad", {"bad": "bad_plugin"}, {"bad_plugin": source})

    discovered = discover()

    assert [w.backend.id for w in discovered.worlds] == ["good"]
    (broken,) = discovered.broken
    assert (broken.plugin, broken.distribution) == ("bad", "fake-bad")
    assert broken.error.startswith(error)
    assert resolve_world("good").id == "good"
    with pytest.raises(DiscoveryError, match="plugin 'bad' \\(fake-bad\\) failed to load"):
        resolve_world("bad")


def test_a_world_whose_optional_extra_is_missing_is_not_installed_not_broken(site: FakeSite) -> None:
    """A plugin that imports its driver lazily and declares it as an extra: a default install is not an error."""
    fast = plugin_source("fast", extra="Extra('turbo', ('json', 'no_such_driver_xyz'))")
    site.install("fake-fast", {"fast": "fast_plugin"}, {"fast_plugin": fast})
    site.install("fake-alpha", {"alpha": "alpha_plugin"}, {"alpha_plugin": plugin_source("alpha")})

    discovered = discover()

    assert discovered.broken == ()
    world = discovered.get("fast")
    assert world is not None
    assert (world.missing, world.install) == (("no_such_driver_xyz",), "pip install 'fake-fast[turbo]'")
    for reference in ("fast", "fake-fast"):
        with pytest.raises(WorldNotInstalledError) as caught:
            resolve_world(reference)
        assert str(caught.value) == (
            "World 'fast' is not installed: pip install 'fake-fast[turbo]' (no module named 'no_such_driver_xyz')"
        )
    assert isinstance(caught.value, WorldNotFoundError)
    assert resolve_world("alpha").id == "alpha"


def test_a_world_whose_optional_extra_is_installed_resolves(site: FakeSite) -> None:
    site.install(
        "fake-fast", {"fast": "fast_plugin"}, {"fast_plugin": plugin_source("fast", extra="Extra('turbo', ('json',))")}
    )

    assert discover().get("fast").install is None  # type: ignore[union-attr]
    assert resolve_world("fast").id == "fast"


def test_a_module_attr_backend_is_checked_for_its_extra_too(site: FakeSite) -> None:
    source = (
        plugin_source("fast", extra="Extra('turbo', ('no_such_driver_xyz',))") + "\nBACKEND = worlds_register()[0]\n"
    )
    site.install("fake-fast", {}, {"fast_direct": source})

    with pytest.raises(WorldNotInstalledError, match="World 'fast' is not installed: install the 'turbo' extra"):
        resolve_world("fast_direct:BACKEND")


def test_an_unknown_world_is_one_line_naming_what_was_tried_and_the_known_ids(site: FakeSite) -> None:
    site.install("fake-alpha", {"alpha": "alpha_plugin"}, {"alpha_plugin": plugin_source("alpha")})
    manifest = parse_manifest({"worlds": [manifest_entry("listed", entry_point="listed")]})

    with pytest.raises(LookupError) as caught:
        resolve_world("nowhere", manifest=manifest)

    assert isinstance(caught.value, WorldNotFoundError)
    assert str(caught.value) == (
        "no World 'nowhere': not a manifest id, installed World id, entry-point name or distribution name "
        "(known Worlds: alpha, listed)"
    )


def test_a_distribution_with_several_worlds_must_be_named_by_id(site: FakeSite) -> None:
    site.install("fake-pair", {"pair": "pair_plugin"}, {"pair_plugin": plugin_source("left", "right")})

    with pytest.raises(DiscoveryError, match=r"distribution 'fake-pair' provides several Worlds \(left, right\)"):
        resolve_world("fake-pair")
    with pytest.raises(DiscoveryError, match=r"plugin 'pair' provides several Worlds"):
        resolve_world("pair")
    assert resolve_world("right").id == "right"


def manifest_entry(world_id: str, *, entry_point: str) -> dict[str, object]:
    return {
        "id": world_id,
        "type": "official",
        "package": f"fake-{world_id}[extra]",
        "name": world_id,
        "description": "",
        "pypi": f"fake-{world_id}",
        "entryPoint": entry_point,
        "specVersions": [3],
        "capabilities": [],
    }


def test_a_manifest_id_resolves_through_its_entry_point(site: FakeSite) -> None:
    site.install("fake-pair", {"pair": "pair_plugin"}, {"pair_plugin": plugin_source("left", "right")})
    manifest = parse_manifest({"worlds": [manifest_entry("right", entry_point="pair")]})

    assert resolve_world("right", manifest=manifest).id == "right"


def test_a_manifest_id_resolves_through_module_attr_without_scanning_plugins(site: FakeSite) -> None:
    site.install("fake-bad", {"bad": "bad_plugin"}, {"bad_plugin": "raise RuntimeError('must not be imported')"})
    site.install("fake-direct", {}, {"direct_world": plugin_source("direct") + "\nBACKEND = worlds_register()[0]\n"})
    manifest = parse_manifest({"worlds": [manifest_entry("direct", entry_point="direct_world:BACKEND")]})

    assert resolve_world("direct", manifest=manifest).id == "direct"
    assert "bad_plugin" not in sys.modules


def test_a_manifest_world_that_is_not_installed_says_what_to_install(site: FakeSite) -> None:
    manifest = parse_manifest({"worlds": [manifest_entry("ghost", entry_point="ghost")]})

    with pytest.raises(
        WorldNotFoundError, match=r"'ghost' is in the manifest but not installed.*'fake-ghost\[extra\]'"
    ):
        resolve_world("ghost", manifest=manifest)


def test_a_manifest_entry_pointing_at_another_world_is_an_error(site: FakeSite) -> None:
    site.install("fake-alpha", {"alpha": "alpha_plugin"}, {"alpha_plugin": plugin_source("alpha")})
    manifest = parse_manifest({"worlds": [manifest_entry("beta", entry_point="alpha")]})

    with pytest.raises(DiscoveryError, match="manifest entry 'beta' points at 'alpha', which is World 'alpha'"):
        resolve_world("beta", manifest=manifest)


FACTORIES = """
    from worlds_sdk import WorldBackend, temp_dir_sandbox

    BACKEND = WorldBackend(id="made", factory=dict, sandbox=temp_dir_sandbox(), spec_versions=frozenset({3}),
                           capabilities=frozenset())

    def make():
        return BACKEND

    def make_with(config):
        return BACKEND

    def make_nothing():
        return None

    def make_badly():
        raise RuntimeError("no database configured")

    class Holder:
        backend = BACKEND
"""


@pytest.mark.parametrize("reference", ["factories:BACKEND", "factories:make", "factories:Holder.backend"])
def test_module_attr_names_a_backend_or_a_zero_argument_factory(site: FakeSite, reference: str) -> None:
    site.install("fake-factories", {}, {"factories": FACTORIES})

    backend = resolve_world(reference)

    assert isinstance(backend, WorldBackend)
    assert backend.id == "made"


@pytest.mark.parametrize(
    ("reference", "error", "message"),
    [
        ("factories:make_with", DiscoveryError, "'factories:make_with' is a function that needs arguments"),
        ("factories:make_nothing", DiscoveryError, "'factories:make_nothing' returned None, not a WorldBackend"),
        ("factories:make_badly", DiscoveryError, "calling 'factories:make_badly' failed: RuntimeError: no database"),
        ("factories:absent", WorldNotFoundError, "no World 'factories:absent': 'factories' has no attribute 'absent'"),
        ("no_such_module_xyz:make", WorldNotFoundError, "no World 'no_such_module_xyz:make': no module named"),
        ("broken_import:make", DiscoveryError, "importing 'broken_import' for 'broken_import:make' failed: Module"),
    ],
)
def test_module_attr_failures_say_which_part_is_wrong(
    site: FakeSite, reference: str, error: type[Exception], message: str
) -> None:
    site.install("fake-factories", {}, {"factories": FACTORIES, "broken_import": "import missing_dependency_xyz\n"})

    with pytest.raises(error) as caught:
        load_backend(reference)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
