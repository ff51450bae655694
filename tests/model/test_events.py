"""The event/scenario format: normalisation of units and the errors for bad events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medtwin.model import EVENT_TYPES, ScenarioError, get_model, load_scenario, parse_scenario


def test_units_are_normalised_to_minutes() -> None:
    s = parse_scenario(
        {
            "events": [
                {"type": "basal", "u_per_h": 1.2},
                {"type": "meal", "t_h": 1.5, "carbs_g": 50},
                {"type": "bolus", "t_min": 60, "insulin_u": 5},
                {
                    "type": "infusion",
                    "drug": "vancomycin",
                    "t_h": 0,
                    "amount_mg": 1000,
                    "duration_h": 1,
                    "every_h": 12,
                    "count": 10,
                },
                {"type": "blood_loss", "t_min": 30, "volume_ml": 500, "duration_min": 20},
            ]
        }
    )
    by_type = {e.type: e for e in s.events}
    assert by_type["basal"].t_min == 0.0  # no time: from 0
    assert by_type["basal"]["u_per_min"] == pytest.approx(1.2 / 60)
    assert by_type["meal"].t_min == 90.0
    assert by_type["infusion"]["duration_min"] == 60.0
    assert by_type["infusion"]["every_min"] == 720.0
    assert [d[0] for d in by_type["infusion"].doses()] == [720.0 * k for k in range(10)]
    assert by_type["blood_loss"]["duration_min"] == 20.0
    # sorted by time, stable, and the index is the position in the file
    assert [e.t_min for e in s.events] == sorted(e.t_min for e in s.events)
    assert by_type["bolus"].index == 2
    # the normalised form parses back to the same events
    again = parse_scenario(s.to_dict())
    assert [e.to_dict() for e in again.events] == [e.to_dict() for e in s.events]


def test_bare_list_is_a_scenario() -> None:
    assert len(parse_scenario([{"type": "meal", "t_min": 0, "carbs_g": 10}]).events) == 1


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([{"type": "snack", "t_min": 1}], "event 0: unknown type 'snack'"),
        ([{"t_min": 1}], "event 0: unknown type None"),
        ([{"type": "meal", "t_min": 1, "carbs_g": -5}], "field 'carbs_g' must be >= 0"),
        ([{"type": "meal", "t_min": -1, "carbs_g": 5}], "field 't_min' must be >= 0"),
        ([{"type": "meal", "t_min": 1, "carbs_g": 5, "fat_g": 3}], "unknown field 'fat_g'"),
        ([{"type": "meal", "t_min": 1, "t_h": 1, "carbs_g": 5}], "give only one of t_min, t_h"),
        ([{"type": "meal", "carbs_g": 5}], "missing field 't_min' (or 't_h', 't_d')"),
        ([{"type": "meal", "t_min": 1}], "missing field 'carbs_g'"),
        ([{"type": "meal", "t_min": "1", "carbs_g": 5}], "field 't_min' must be a number"),
        ([{"type": "meal", "t_min": True, "carbs_g": 5}], "field 't_min' must be a number"),
        ([{"type": "bolus", "t_min": 1, "insulin_u": float("nan")}], "must be finite"),
        ([{"type": "basal", "u_per_h": 1, "u_per_min": 1}], "give only one of"),
        (
            [
                {
                    "type": "infusion",
                    "drug": "x",
                    "t_h": 0,
                    "amount_mg": 1,
                    "duration_h": 1,
                    "count": 3,
                }
            ],
            "'count' needs 'every_min' or 'every_h'",
        ),
        (
            [{"type": "infusion", "drug": "", "t_h": 0, "amount_mg": 1, "duration_h": 1}],
            "field 'drug' must be a non-empty text",
        ),
        (
            [
                {
                    "type": "infusion",
                    "drug": "x",
                    "t_h": 0,
                    "amount_mg": 1,
                    "duration_h": 1,
                    "every_h": 1,
                    "count": 0,
                }
            ],
            "field 'count' must be a whole number >= 1",
        ),
        ([{"type": "meal", "t_min": 1, "carbs_g": 5}, 3], "event 1: must be a JSON object"),
    ],
)
def test_bad_events_name_the_event_and_field(events: list[object], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"events": events})
    assert message in str(err.value)


def test_times_outside_the_simulated_range() -> None:
    with pytest.raises(ScenarioError, match=r"event 1 \(meal\): field 't_h' = 30 is after the end"):
        parse_scenario(
            [{"type": "basal"}, {"type": "meal", "t_h": 30, "carbs_g": 5}], t_end_min=24 * 60
        )
    # at the end itself is inside the range
    parse_scenario([{"type": "meal", "t_h": 24, "carbs_g": 5}], t_end_min=24 * 60)


def test_scenario_shape_errors() -> None:
    with pytest.raises(ScenarioError, match="unknown key 'meals'"):
        parse_scenario({"events": [], "meals": []})
    with pytest.raises(ScenarioError, match="missing key 'events'"):
        parse_scenario({})
    with pytest.raises(ScenarioError, match="must be a list"):
        parse_scenario({"events": "meal"})


def test_load_scenario_file_errors(tmp_path: Path) -> None:
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"events": [{"type": "meal", "t_min": 5, "carbs_g": 20}]}))
    assert load_scenario(good).events[0]["carbs_g"] == 20.0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScenarioError, match=r"bad\.json: not valid JSON"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"type": "meal", "t_min": 5, "carbs_g": -1}]))
    with pytest.raises(ScenarioError, match=r"wrong.json: event 0 \(meal\)"):
        load_scenario(wrong)


def test_a_model_refuses_event_types_it_does_not_take() -> None:
    model = get_model("uva_padova_2008")
    assert model.event_types <= set(EVENT_TYPES)
    s = parse_scenario([{"type": "blood_loss", "t_min": 30, "volume_ml": 500, "duration_min": 20}])
    with pytest.raises(ScenarioError.__mro__[1], match="event 0: model 'uva_padova_2008' does"):
        model.accepts(s)


def test_days_signed_changes_and_lifestyle_events() -> None:
    s = parse_scenario(
        {
            "events": [
                {"type": "diet", "t_d": 7, "intake_change_kcal_per_day": -500},
                {"type": "activity", "physical_activity_level": 1.7},
                {"type": "drug_effect", "t_min": 30, "target": "svr", "change_pct": -25},
                {"type": "fluid_bolus", "t_min": 60, "duration_min": 15, "volume_ml": 500},
                {"type": "exercise", "t_h": 17, "duration_min": 45, "intensity_pct_vo2max": 60},
                {"type": "weight", "t_d": 30, "weight_kg": 80},
            ]
        }
    )
    kinds = [(e.type, e.t_min) for e in s.events]
    assert kinds == [
        ("activity", 0.0),
        ("drug_effect", 30.0),
        ("fluid_bolus", 60.0),
        ("exercise", 1020.0),
        ("diet", 10080.0),
        ("weight", 43200.0),
    ]
    assert s.of_type("diet")[0]["intake_change_kcal_per_day"] == -500.0
    assert s.of_type("drug_effect")[0]["change_pct"] == -25.0


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "diet"}, "give exactly one of intake_kcal_per_day, intake_change_kcal_per_day"),
        (
            {"type": "diet", "intake_kcal_per_day": 2000, "intake_change_kcal_per_day": -5},
            "give exactly one of",
        ),
        ({"type": "diet", "intake_kcal_per_day": -1}, "'intake_kcal_per_day' must be >= 0"),
        (
            {"type": "diet", "intake_kcal_per_day": 2000, "carbs_pct": 120},
            "'carbs_pct' must be <= 100",
        ),
        ({"type": "drug_effect", "t_min": 0, "target": "svr"}, "missing field 'change_pct'"),
        (
            {"type": "drug_effect", "t_min": 0, "target": "svr", "change_pct": float("nan")},
            "'change_pct' must be finite",
        ),
        ({"type": "weight", "t_d": 1, "t_h": 2, "weight_kg": 70}, "give only one of t_h, t_d"),
    ],
)
def test_lifestyle_events_refuse_bad_fields(event: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scenario([event])


def test_oral_doses_and_steady_state_flags_round_trip() -> None:
    s = parse_scenario(
        [
            {
                "type": "oral",
                "drug": "warfarin",
                "t_h": 0,
                "amount_mg": 5,
                "every_h": 24,
                "count": 7,
                "steady_state": True,
            }
        ]
    )
    e = s.events[0]
    assert e["steady_state"] is True and e["every_min"] == 1440.0
    assert [t for t, _ in e.doses()] == [1440.0 * k for k in range(7)]
    assert parse_scenario([e.to_dict()]).events[0].fields == e.fields
    with pytest.raises(ScenarioError, match="'steady_state' must be true or false, got 1"):
        parse_scenario([{"type": "oral", "drug": "w", "t_h": 0, "amount_mg": 5, "steady_state": 1}])
