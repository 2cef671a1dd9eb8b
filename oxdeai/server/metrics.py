"""The service's Prometheus metrics, in a registry of its own (`GET /metrics`).

Contract: decisions are counted by decision, first reason code (`none` for an ALLOW)
and tool — a tool the policy does not declare is counted as `(undeclared)`, so a
caller cannot grow the label set; decision latency is a histogram of the time from
the body read to the answer built; completions are counted by outcome and result;
store errors by operation; decision-log failures; and `oxdeai_policy_info` is 1 for
the policy being served (name, version, sha256).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from oxdeai.runtime.models import Decision

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("oxdeai_decisions", "Decisions made.", ["decision", "code", "tool"], registry=r)
        self.latency = Histogram("oxdeai_decision_seconds", "Time to decide one call.", buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.completions = Counter("oxdeai_completions", "Completions reported.", ["outcome", "result"], registry=r)
        self.store_errors = Counter("oxdeai_store_errors", "State store failures.", ["operation"], registry=r)
        self.log_failures = Gauge("oxdeai_decision_log_failures", "Decision-log lines not written.", registry=r)
        self.rejected = Counter("oxdeai_requests_rejected", "Requests refused before any decision.", ["status"],
                                registry=r)
        self.policy = Gauge("oxdeai_policy_info", "The policy being served.", ["name", "version", "sha256"],
                            registry=r)

    def serving(self, name: str, version: str | None, sha256: str) -> None:
        self.policy.clear()
        self.policy.labels(name, version or "", sha256).set(1)

    def decided(self, decision: Decision, declared: bool, seconds: float) -> None:
        code = decision.reasons[0][0] if decision.reasons else "none"
        tool = decision.tool if declared and decision.tool is not None else "(undeclared)"
        self.decisions.labels(decision.decision, code, tool).inc()
        self.latency.observe(seconds)
        if code == "store_unavailable":
            self.store_errors.labels("decide").inc()

    def render(self, log_failures: int) -> bytes:
        self.log_failures.set(log_failures)
        return generate_latest(self.registry)
