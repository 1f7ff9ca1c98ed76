"""The local runtime's injected handler crashes: seeded, per function, whatever the interleaving."""

from __future__ import annotations

from omsdev.localcloud.lambda_runtime import CrashPlan

BATCH = {"Records": [{"n": index} for index in range(5)]}


def test_a_functions_draws_do_not_depend_on_how_other_functions_invocations_interleave():
    # GIVEN two plans with one seed
    alone, interleaved = CrashPlan(rate=0.33, seed=8), CrashPlan(rate=0.33, seed=8)
    # WHEN one sees only KpiFunction's invocations and the other sees RiskFunction's between them
    draws_alone = [alone.draw("KpiFunction", BATCH) for _ in range(20)]
    draws_interleaved = []
    for _ in range(20):
        interleaved.draw("RiskFunction", BATCH)
        draws_interleaved.append(interleaved.draw("KpiFunction", BATCH))
    # THEN KpiFunction's n-th invocation gets the same draw in both, and some of them crash
    assert draws_alone == draws_interleaved
    assert any(draws_alone) and not all(draws_alone)


def test_functions_outside_the_plan_never_crash():
    plan = CrashPlan(rate=1.0, functions=frozenset({"KpiFunction"}), seed=1)
    assert plan.draw("RiskFunction", BATCH) is None and plan.draw("KpiFunction", BATCH) is not None
