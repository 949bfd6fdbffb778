"""Every read parameter of the contract has a MUST test that fails when a World ignores it.

A World whose ``runs.list`` ignored ``status`` was once caught only by a SHOULD
test about ordering: a filter nobody checks is a hole a MUST verdict cannot see.
The mutants in tests/mutants/ignored_parameters.py show each pinning test able to fail.
"""

from __future__ import annotations

from .parameters import NOT_PINNED, is_must, pins, read_parameters


def test_read_methods_are_found() -> None:
    params = read_parameters()
    assert ("runs.list", "status") in params and ("events.get", "run_id") in params
    assert ("hooks.list", "pagination.cursor") in params and ("get_stream_chunks", "limit") in params
    assert not {m for m, _ in params} & {"events.create", "write_to_stream"}


def test_every_read_parameter_is_pinned_by_exactly_one_must_test() -> None:
    """Exactly one: then deleting any pinning test leaves a parameter unpinned and fails here."""
    declared = pins()
    missing = sorted(read_parameters() - declared.keys() - NOT_PINNED.keys())
    assert not missing, f"read parameters no MUST test pins: {missing}"
    unknown = sorted(declared.keys() - read_parameters())
    assert not unknown, f"pins of parameters the protocols do not have: {unknown}"
    assert not (declared.keys() & NOT_PINNED.keys()), "a parameter both pinned and exempt"
    not_must = {key: tests for key, tests in declared.items() if not all(is_must(t) for t in tests)}
    assert not not_must, f"pinned only by non-MUST tests: {not_must}"
    shared = {key: tests for key, tests in declared.items() if len(tests) > 1}
    assert not shared, f"pinned twice (one pin each, so a deleted test is noticed): {shared}"


def test_deleting_any_pinning_test_leaves_a_parameter_unpinned() -> None:
    declared = pins()
    for test in {t for tests in declared.values() for t in tests}:
        left = {key for key, tests in declared.items() if set(tests) - {test}}
        assert read_parameters() - left - NOT_PINNED.keys(), f"{test} pins nothing no other test pins"


def test_exemptions_name_real_parameters() -> None:
    assert NOT_PINNED.keys() <= read_parameters()
