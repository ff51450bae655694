"""``encode_fact`` writes the bytes orjson writes for the fact itself, for every kind of fact.

The store's content hash is computed over these bytes, so a faster encoder must not
change a single byte: otherwise re-importing data stored by an earlier version would
make new versions of unchanged facts.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson

from conftest import shared_data_dir
from medtwin.ingest.fhir import read_bundle
from medtwin.record.facts import (
    FACT_KINDS,
    LOINC,
    Coding,
    Demographics,
    Fact,
    Genotype,
    Identifier,
    Observation,
    encode_fact,
)


def reference_bytes(fact: Fact) -> bytes:
    """What the store wrote before the encoder: the dataclass itself, without ``raw``."""
    return orjson.dumps(dataclasses.replace(fact, raw=None))


def test_every_fact_of_the_synthea_bundles_encodes_as_the_dataclass() -> None:
    folder = shared_data_dir() / "fhir" / "synthea-r4"
    kinds: Counter[str] = Counter()
    for path in sorted(folder.glob("*.json"))[:20]:
        for unit in read_bundle(Path(path)).units:
            for fact in unit.facts:
                data, raw, _ = encode_fact(fact, unit.raw_json)
                assert data == reference_bytes(fact), fact.source_id
                assert raw == unit.raw_json
                kinds[fact.kind] += 1
    assert {"Demographics", "Observation", "Condition", "Encounter", "RawResource"} <= set(kinds)


def test_hand_made_facts_with_every_field_set() -> None:
    when = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    facts: list[Fact] = [
        Observation(
            source="s",
            source_id="Observation/1",
            subject=Identifier("urn:x", "p1"),
            code=Coding(LOINC, "8867-4", None),
            status="final",
            effective_start=when,
            effective_end=when,
            source_recorded_at=when,
            original_time="2024-03-01T12:30:00Z",
            value_num=72.5,
            unit="/min",
            value_code=Coding("urn:y", "a", "A \u00e9"),
            raw={"resourceType": "Observation"},
        ),
        Demographics(
            source="s",
            source_id="Patient/1",
            identifiers=(Identifier("urn:a", "1"), Identifier("urn:b", "2")),
            given=("Ann", "B"),
            telecom=("555",),
        ),
        Genotype(source="s", source_id="g/1", gene="CYP2C19", genotype="*1/*2"),
    ]
    facts += [cls(source="s", source_id=f"{name}/0") for name, cls in FACT_KINDS.items()]
    for fact in facts:
        data, raw, digest = encode_fact(fact)
        assert data == reference_bytes(fact)
        assert (raw is None) == (fact.raw is None)
        assert len(digest) == 32
