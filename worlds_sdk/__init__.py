"""worlds_sdk: the World contract in Python.

Typed models, async protocols, the event-sourcing rules, errors, ids, the
capability vocabulary, and the plugin/manifest machinery that finds Worlds.
"""

from importlib.metadata import PackageNotFoundError, version

from .backend import Extra, Sandbox, TempDirSandbox, WorldBackend, WorldConfig, temp_dir_sandbox
from .capabilities import Capability, Observation, parse_capabilities
from .discovery import DiscoveryError, WorldNotFoundError, WorldNotInstalledError, resolve_world
from .errors import (
    EntityConflictError,
    EventNotFoundError,
    HookNotFoundError,
    IncompatibleFormatError,
    NotFoundError,
    PreconditionFailedError,
    RunExpiredError,
    RunNotSupportedError,
    StepNotFoundError,
    StreamNotFoundError,
    ThrottleError,
    TooEarlyError,
    ValidationError,
    WaitNotFoundError,
    WorkflowRunNotFoundError,
    WorkflowWorldError,
    WorldUnavailableError,
)
from .hookspecs import hookimpl
from .inspection import DeadLetter, QueueStats
from .manifest import Manifest, ManifestEntry, ManifestError, load_manifest, parse_manifest
from .models import (
    ChunkPage,
    Enqueued,
    Event,
    EventRequest,
    EventResult,
    Hook,
    MessageMeta,
    Page,
    Pagination,
    Reschedule,
    ResolveData,
    Run,
    RunStatus,
    Step,
    StepStatus,
    StreamChunk,
    StreamInfo,
    StructuredError,
    Wait,
)
from .protocols import (
    BatchStreamer,
    EncryptingWorld,
    InspectableWorld,
    Queue,
    QueueHandler,
    Storage,
    Streamer,
    World,
)
from .telemetry import instrument

try:
    __version__ = version("worlds-sdk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

SPEC_VERSION = 3
"""The spec version of the stable upstream line this SDK expresses (event sourcing + binary queue)."""

__all__ = [
    "SPEC_VERSION",
    "BatchStreamer",
    "Capability",
    "Observation",
    "ChunkPage",
    "DeadLetter",
    "DiscoveryError",
    "EncryptingWorld",
    "Enqueued",
    "EntityConflictError",
    "Event",
    "EventNotFoundError",
    "EventRequest",
    "EventResult",
    "Extra",
    "Hook",
    "HookNotFoundError",
    "IncompatibleFormatError",
    "InspectableWorld",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "MessageMeta",
    "NotFoundError",
    "Page",
    "Pagination",
    "PreconditionFailedError",
    "Queue",
    "QueueHandler",
    "QueueStats",
    "Reschedule",
    "ResolveData",
    "Run",
    "RunExpiredError",
    "RunNotSupportedError",
    "RunStatus",
    "Sandbox",
    "Step",
    "StepNotFoundError",
    "StepStatus",
    "Storage",
    "StreamChunk",
    "StreamInfo",
    "StreamNotFoundError",
    "Streamer",
    "StructuredError",
    "TempDirSandbox",
    "ThrottleError",
    "TooEarlyError",
    "ValidationError",
    "Wait",
    "WaitNotFoundError",
    "WorkflowRunNotFoundError",
    "WorkflowWorldError",
    "World",
    "WorldBackend",
    "WorldConfig",
    "WorldNotFoundError",
    "WorldNotInstalledError",
    "WorldUnavailableError",
    "__version__",
    "hookimpl",
    "instrument",
    "load_manifest",
    "parse_capabilities",
    "temp_dir_sandbox",
    "parse_manifest",
    "resolve_world",
]
