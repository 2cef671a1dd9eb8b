"""Every finding of the outside review (one folder each in the shared review set, when it
is laid beside the project) has its regression cases here: this index names them, and
fails when a finding has none, or a named case no longer exists."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import ROOT

REVIEW = ROOT.parent / "shared" / "redteam"

CASES = {
    "engine-01-regex-backtracking-dos": [
        "tests.test_redteam_regex:test_nested_quantifiers_cannot_stall_a_decision",
        "tests.test_redteam_regex:test_check_refuses_patterns_whose_automaton_makes_every_character_costly"],
    "engine-02-sqlite-purge-forgets-live-state": [
        "tests.stores.test_faults:test_a_request_from_the_future_is_decided_alike_on_memory_and_sqlite",
        "tests.stores.test_faults:test_with_a_clock_and_max_skew_a_time_far_ahead_is_refused_and_nothing_is_forgotten"],
    "engine-03-duplicate-json-keys-accepted": ["tests.test_redteam_cli:test_a_repeated_key_is_refused",
                                               "tests.test_redteam_cli:test_a_repeated_key_in_a_state_file_or_trace_is_refused"],
    "engine-04-null-request-line-silently-skipped": ["tests.test_redteam_cli:test_a_null_request_is_denied_in_its_place"],
    "engine-06-eval-state-storeerror-traceback": [
        "tests.test_redteam_cli:test_a_state_file_the_store_cannot_hold_is_refused_the_same_on_every_store"],
    "engine-09-corrupted-store-tracebacks": ["tests.test_redteam_cli:test_a_damaged_sqlite_file_is_a_clear_error",
                                             "tests.test_redteam_cli:test_an_entry_that_does_not_decode_is_a_clear_error"],
    "engine-11-complete-raises-storeerror": [
        "tests.test_redteam_cli:test_complete_on_a_failing_store_raises_a_completion_error_and_changes_nothing"],
    "engine-12-redis-restart-reuses-decision-numbers": [
        "tests.stores.test_faults:test_after_a_flush_numbers_stay_unique_and_completions_find_their_own_call",
        "tests.stores.test_faults:test_eight_processes_survive_a_flushall_mid_run"],
    "engine-13-redis-script-error-after-writes": ["tests.stores.test_faults:test_a_failing_commit_script_writes_nothing"],
    "engine-14-redis-eviction-forgets-budgets-and-nonces": ["tests.stores.test_faults:test_a_redis_that_evicts_keys_is_refused"],
    "engine-15-sqlite-deleted-file-split-brain": [
        "tests.stores.test_faults:test_a_deleted_sqlite_file_stops_the_engine_that_holds_it",
        "tests.stores.test_faults:test_a_replaced_sqlite_file_stops_the_engine_that_holds_it"],
    "engine-17-long-operator-chain-recursionerror": ["tests.test_redteam_verify:test_an_expression_too_deep_is_a_diagnostic",
                                                     "tests.test_redteam_verify:test_a_regex_too_deep_is_a_diagnostic"],
    "engine-18-long-chain-passes-check-then-internal-error": [
        "tests.test_redteam_verify:test_every_expression_check_accepts_is_decided_and_verified"],
    "engine-19-big-policies-slow-first-decision-under-store-lock": [
        "tests.test_redteam_index:test_a_plan_is_built_before_the_store_step"],
    "engine-20-redis-hashes-depend-on-cache-retries": [
        "tests.stores.test_faults:test_ids_and_hashes_do_not_depend_on_what_a_process_remembered",
        "tests.stores.test_memory:test_only_allowed_calls_are_remembered_and_completion_errors_read_alike_on_every_store"],
    # engine-21 is a limit of Redis, documented in docs/state.md (TTLs count on Redis's clock, with a
    # day's margin over the window); its case checks the documented TTLs
    "engine-21-redis-ttls-use-wall-clock": ["tests.stores.test_redis:test_nonces_and_records_expire"],
    "engine-22-bad-store-url-tracebacks": ["tests.test_redteam_cli:test_a_bad_store_url_is_exit_2"],
    "engine-23-redis-timeout-applies-denied-step": [
        "tests.stores.test_faults:test_a_step_redis_runs_after_the_client_gave_up_writes_nothing"],
    "verify-backward-host-time": ["tests.test_redteam_time:test_host_time_going_backwards_is_decided_at_the_store_time"],
    "verify-completion-across-windows": ["tests.test_redteam_time:test_a_completion_in_a_later_window_is_dropped_whole"],
    "verify-default-outside-safe-range": ["tests.test_redteam_verify:test_a_default_outside_the_request_domain_is_refused"],
    "verify-diff-optional-parameter-exit70": [
        "tests.test_redteam_verify:test_diff_a_new_optional_parameter_is_a_compatible_change"],
    "verify-diff-unknown-passes-gate": ["tests.test_redteam_verify:test_diff_unknown_never_passes_the_gate"],
    "verify-engine-deep-expression-internal-error": [
        "tests.test_redteam_verify:test_every_expression_check_accepts_is_decided_and_verified"],
    "verify-engine-regex-backtracking-hang": [
        "tests.test_redteam_regex:test_nested_quantifiers_cannot_stall_a_decision",
        "tests.test_redteam_regex:test_random_arguments_over_the_largest_accepted_automata_decide_correctly"],
    "verify-guard-ignores-same-step-expiry": ["tests.test_redteam_time:test_the_guard_sees_a_lease_that_expired_in_the_same_step"],
    "verify-limit-amount-check-ignores-invariants": [
        "tests.test_redteam_verify:test_a_limit_amount_is_checked_on_states_satisfying_the_invariants"],
    "verify-parser-recursion-traceback": ["tests.test_redteam_verify:test_an_expression_too_deep_is_a_diagnostic"],
    "verify-regex-zero-repetition": [
        "tests.test_redteam_regex:test_zero_repetition_matches_only_the_empty_string_in_engine_and_verifier",
        "tests.test_redteam_regex:test_zero_repetition_whole_policy_checks_agree_with_the_engine"],
    "verify-spurious-unknown-concurrent-nonneg": [
        "tests.test_redteam_verify:test_a_concurrent_count_is_never_negative_and_verify_proves_it"],
}


def test_every_named_case_exists() -> None:
    for cases in CASES.values():
        for case in cases:
            module, name = case.split(":")
            assert callable(getattr(importlib.import_module(module), name, None)), case


@pytest.mark.skipif(not REVIEW.is_dir(), reason="the shared review set is not laid beside this checkout")
def test_every_finding_has_a_case() -> None:
    folders = sorted(p.name for p in REVIEW.iterdir() if p.is_dir())
    assert folders, REVIEW
    assert [f for f in folders if f not in CASES] == []


def test_a_plan_is_built_before_the_store_step() -> None:
    """A tool's first decision compiles its plan outside the store's lock, so a big policy
    never holds a shared store's write lock while it compiles."""
    from oxdeai import load_policy
    from oxdeai.runtime.engine import Engine
    from oxdeai.runtime.store import MemoryStore

    seen: list[bool] = []

    class WatchedStore(MemoryStore):
        def atomic(self, step, *args):  # type: ignore[no-untyped-def]
            seen.append("t" in engine.planned_tools())
            return super().atomic(step, *args)

    policy = load_policy("policy p\ntool t(x: int)\nallow r on t when args.x > 1\n")
    engine = Engine(policy, store=WatchedStore())
    engine.decide({"tool": "t", "args": {"x": 2}}, {"agent": {}, "time": 0})
    assert seen == [True]
