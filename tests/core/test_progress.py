"""The progress document: its JSON keeps the seed's shape and round-trips what it does not know."""

from __future__ import annotations

from core.runs import ModuleStatus, Progress, next_module, remaining_modules


def test_a_new_run_has_every_module_pending_with_zero_counts_in_the_seed_shape():
    assert Progress.initial(["a", "b"]).to_json() == {
        "modules": {
            "a": {"status": "pending", "processed": 0, "skipped": 0, "errors": []},
            "b": {"status": "pending", "processed": 0, "skipped": 0, "errors": []},
        }
    }


def test_counters_timestamps_and_unknown_keys_survive_a_round_trip():
    stored = {
        "note": "kept",
        "modules": {
            "a": {
                "status": "done",
                "processed": 7,
                "skipped": 1,
                "errors": ["x"],
                "calls": 3,
                "enriched": 2,
                "startedAt": "2026-01-01T00:00:00+00:00",
                "finishedAt": "2026-01-01T00:01:00+00:00",
                "hint": {"nested": True},
            }
        },
    }
    progress = Progress.from_json(stored)
    assert progress["a"].status is ModuleStatus.DONE
    assert progress["a"].counters == {"calls": 3, "enriched": 2}
    assert progress.to_json() == stored


def test_the_run_order_comes_from_the_registry_not_from_the_stored_document():
    # PostgreSQL's JSONB reorders keys: "b" may come back first.
    stored = {"modules": {"b": {"status": "pending"}, "a": {"status": "running"}}}
    assert next_module(stored, ["a", "b"]) == "a"
    assert remaining_modules(stored, ["a", "b", "c"]) == ["a", "b", "c"]  # "c" reads as pending
    assert list(Progress.from_json(stored, ["a", "b"]).modules) == ["a", "b"]


def test_errors_keep_only_the_newest_twenty():
    progress = Progress.initial(["a"])
    progress["a"].add_errors(f"error {i}" for i in range(25))
    assert progress["a"].errors == [f"error {i}" for i in range(5, 25)]


def test_a_canceled_view_marks_only_unfinished_modules():
    progress = Progress.from_json(
        {"modules": {"a": {"status": "done"}, "b": {"status": "running"}, "c": {}}}
    )
    shown = progress.as_shown("CANCELED").to_json()["modules"]
    assert [shown[k]["status"] for k in "abc"] == ["done", "canceled", "canceled"]
    assert progress["b"].status is ModuleStatus.RUNNING  # the stored progress is untouched
    assert progress.as_shown("RUNNING") is progress
