"""Hypothesis: random histories of appends keep the bitemporal invariants.

Whatever sequence of new facts, corrections, retractions and identical re-sends
arrives, (1) each fact has exactly one current version, (2) the current record
equals the last state sent for each fact, (3) "as of" the time after step k the
store shows exactly the state after step k, and (4) re-sending anything already
current changes nothing.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medtwin.record.facts import LOINC, Coding, Demographics, Identifier, Observation
from medtwin.store import open_store

SRC = "prop"
SUBJECT = Identifier("urn:prop:patient", "p1")
PATIENT = Demographics(
    source=SRC, source_id="Patient/p1", subject=SUBJECT, identifiers=(SUBJECT,), family="Prop"
)

step = st.tuples(
    st.integers(min_value=0, max_value=4),  # which fact
    st.sampled_from(["final", "amended", "entered-in-error"]),
    st.integers(min_value=40, max_value=45),  # value: few values, so identical re-sends happen
)


def _obs(index: int, status: str, value: int) -> Observation:
    return Observation(
        source=SRC,
        source_id=f"Observation/o{index}",
        subject=SUBJECT,
        code=Coding(LOINC, "8867-4"),
        status=status,
        effective_start=datetime(2024, 1, 1 + index, tzinfo=UTC),
        value_num=float(value),
        unit="/min",
    )


def _visible(state: dict[int, tuple[str, int]]) -> dict[str, float]:
    return {
        f"Observation/o{i}": float(v)
        for i, (status, v) in state.items()
        if status != "entered-in-error"
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_random_histories(steps: list[tuple[int, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "p.db"), actor="test")
        store.append_facts([PATIENT], source=SRC)
        state: dict[int, tuple[str, int]] = {}
        snapshots: list[tuple[datetime, dict[str, float]]] = []
        for index, status, value in steps:
            before = state.get(index)
            result = store.append_facts([_obs(index, status, value)], source=SRC)
            if before == (status, value):
                assert (
                    result.unchanged == 1
                    and result.inserted + result.new_versions + result.retracted == 0
                )
            state[index] = (status, value)
            time.sleep(0.001)  # recorded times strictly after this step
            snapshots.append((datetime.now(UTC), _visible(state)))
            time.sleep(0.001)

        current = {
            s.fact.source_id: s.fact.value_num  # type: ignore[attr-defined]
            for s in store.timeline("p1", kinds=["Observation"])
        }
        assert current == _visible(state)
        # exactly one current version per fact
        rows = store.conn.execute(
            "SELECT source_id, COUNT(*) FROM facts WHERE superseded_at IS NULL GROUP BY source_id"
        ).fetchall()
        assert all(count == 1 for _, count in rows)
        # as of each step, the store shows the state after that step
        for when, expected in snapshots:
            seen = {
                s.fact.source_id: s.fact.value_num  # type: ignore[attr-defined]
                for s in store.timeline("p1", kinds=["Observation"], as_of=when)
            }
            assert seen == expected
        # re-sending the current state is a no-op
        again = store.append_facts([_obs(i, st_, v) for i, (st_, v) in state.items()], source=SRC)
        assert again.unchanged == len(state) and again.inserted == again.new_versions == 0
        store.close()
