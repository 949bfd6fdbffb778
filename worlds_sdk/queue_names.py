"""Queue names: ``__wkf_workflow_<name>`` / ``__wkf_step_<name>``, optionally namespaced."""

from __future__ import annotations

import re

from .errors import ValidationError

PREFIX_RE = re.compile(r"^__(?:[a-z][a-z0-9]*_)?wkf_(?:workflow|step)_$")
NAME_RE = re.compile(r"^__(?:[a-z][a-z0-9]*_)?wkf_(?:workflow|step)_.+$", re.DOTALL)


def check_queue_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise ValidationError(
            "must look like __wkf_workflow_<name>, __wkf_step_<name> or __<ns>_wkf_…", field="queue_name"
        )


def check_queue_prefix(prefix: str) -> None:
    if not PREFIX_RE.match(prefix):
        raise ValidationError("must be __wkf_workflow_, __wkf_step_ or __<ns>_wkf_…_", field="prefix")


def workflow_queue(workflow_name: str, namespace: str | None = None) -> str:
    """The queue that invokes a workflow: where recovery (Q-6) re-enqueues runs."""
    ns = f"{namespace}_" if namespace else ""
    return f"__{ns}wkf_workflow_{workflow_name}"
