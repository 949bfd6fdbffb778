"""The typed errors: they cross processes intact, and keep their messages under ``python -OO``."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import pytest

from worlds_sdk import errors
from worlds_sdk.errors import WorkflowWorldError

ERROR_CLASSES = sorted(
    (
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, WorkflowWorldError) and cls.__module__ == errors.__name__
    ),
    key=lambda cls: cls.__name__,
)


def example(cls: type[WorkflowWorldError]) -> WorkflowWorldError:
    """An instance built through the class's own constructor, every required argument given a value."""
    required = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    positional = [7 for p in required if p.kind is not p.KEYWORD_ONLY]
    keywords = {p.name: 7 for p in required if p.kind is p.KEYWORD_ONLY}
    return cls(*positional, **keywords)


def test_introspection_finds_every_error_class() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"WorkflowWorldError", "TooEarlyError", "RunNotSupportedError", "ValidationError"} <= names
    assert len(names) == 17


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_pickles_with_its_fields(cls: type[WorkflowWorldError]) -> None:
    error = example(cls)
    error.extra = "set after construction"  # type: ignore[attr-defined]

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is cls
    assert (str(copy), copy.args, vars(copy)) == (str(error), error.args, vars(error))
    assert copy.status == error.status


def test_validation_error_keeps_its_field_through_pickle() -> None:
    copy = pickle.loads(pickle.dumps(errors.ValidationError("must be a string", field="event_data.input")))

    assert (copy.field, copy.message) == ("event_data.input", "event_data.input: must be a string")


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_the_default_message_is_a_class_attribute(cls: type[WorkflowWorldError]) -> None:
    assert "default_message" in vars(cls), "each class states its own default message"
    assert cls.default_message.strip()


def test_default_messages_survive_python_OO() -> None:
    """``-OO`` strips docstrings; a message taken from one would be empty."""
    probe = (
        "from worlds_sdk import errors\n"
        "assert errors.WorkflowWorldError.__doc__ is None, 'not running under -OO'\n"
        "print(errors.HookNotFoundError())\n"
        "print(errors.TooEarlyError(retry_after=2))\n"
        "print(errors.WorkflowWorldError())\n"
    )
    done = subprocess.run([sys.executable, "-OO", "-c", probe], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        errors.HookNotFoundError.default_message,
        errors.TooEarlyError.default_message,
        errors.WorkflowWorldError.default_message,
    ]
