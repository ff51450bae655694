"""NEWS2, qSOFA and MEWS as streaming monitors: windows, partial floors, artefacts, evidence."""

from __future__ import annotations

import json

import pytest

from medtwin.monitor import FactRef, MonitorConfigError, Reading
from medtwin.monitor.artefact import ArtefactMonitor
from medtwin.monitor.early_warning import MewsMonitor, News2Monitor, QsofaMonitor
from medtwin.risk import get

T0 = 1_800_000_000.0
MIN = 60.0


def r(code: str, minute: float, value: float, ref: str | None = None) -> Reading:
    return Reading(
        "p", code, T0 + minute * MIN, value, None, FactRef("icu", ref or f"{code}@{minute}")
    )


HR, RR, SPO2, SBP, TEMP, FLOW, FIO2 = (
    "8867-4",
    "9279-1",
    "59408-5",
    "8480-6",
    "8310-5",
    "3151-8",
    "3150-0",
)


def normal_set(minute: float) -> list[Reading]:
    return [
        r(HR, minute, 80),
        r(RR, minute, 16),
        r(SPO2, minute, 97),
        r(SBP, minute, 125),
        r(TEMP, minute, 37.0),
    ]


def test_complete_normal_set_is_quiet_and_matches_the_score() -> None:
    m = News2Monitor("p")
    assert m.learn_many(normal_set(0)) == []
    # the same inputs through the registered score: NEWS2 0 (consciousness missing: partial)
    res = get("news2").compute_one(
        {
            "pulse_per_min": 80,
            "respiratory_rate_per_min": 16,
            "spo2_percent": 97,
            "systolic_bp_mm_hg": 125,
            "temperature_c": 37.0,
            "spo2_scale": 1,
        }
    )
    assert res.value == 0 and res.partial and "consciousness" in res.missing
    assert m.level == 0


def test_rise_to_high_alerts_once_with_the_evidence_used() -> None:
    m = News2Monitor("p")
    m.learn_many(normal_set(0))
    alerts = m.learn_many(
        [r(RR, 5, 26, "rr-bad"), r(HR, 6, 135, "hr-bad"), r(SPO2, 7, 91, "spo2-bad")]
    )
    assert [a.rule for a in alerts] == ["news2.low-medium", "news2.medium", "news2.high"]
    high = alerts[-1]
    assert high.severity == "high" and high.key == "news2"
    # RR 26 [3] + HR 135 [3] + SpO2 91 [3] + SBP 125 [0] + temp 37 [0], air unknown
    assert high.detail["value"] == 9 and high.detail["partial"] is True
    assert set(high.detail["missing"]) == {"on_oxygen", "consciousness"}
    refs = {ref.source_id for ref in high.evidence}
    assert {"rr-bad", "hr-bad", "spo2-bad", f"{SBP}@0", f"{TEMP}@0"} == refs
    assert "emergency" in high.message
    # staying high: no new alert
    assert m.learn_many([r(HR, 8, 140)]) == []


def test_a_fall_then_rise_alerts_again() -> None:
    m = News2Monitor("p")
    m.learn_many(normal_set(0))
    assert [a.rule for a in m.learn_one(r(RR, 1, 26))] == ["news2.low-medium"]
    assert m.learn_one(r(RR, 2, 16)) == []
    assert m.level == 0
    assert [a.rule for a in m.learn_one(r(RR, 3, 27))] == ["news2.low-medium"]


def test_values_older_than_the_window_are_not_scored() -> None:
    m = News2Monitor("p", {"window_min": 30})
    m.learn_one(r(HR, 0, 135))  # pulse 3 points: red score
    assert m.level == 1
    # 31 minutes later the pulse has aged out; RR 22 alone is 2 points: low
    assert m.learn_one(r(RR, 31, 22)) == []
    assert m.level == 0
    # within the window both count: 3 + 2 = 5, medium
    m2 = News2Monitor("p", {"window_min": 30})
    m2.learn_one(r(HR, 0, 135))
    assert [a.rule for a in m2.learn_one(r(RR, 30, 22))] == ["news2.medium"]


def test_artefacts_are_not_scored_and_are_flagged() -> None:
    m = News2Monitor("p")
    m.learn_many(normal_set(0))
    assert m.learn_one(r(HR, 1, 900)) == []  # not a pulse of 900: no alarm
    assert m.learn_one(r(SPO2, 2, 120)) == []
    assert m.state_dict()["latest"]["pulse_per_min"][0] == 80.0
    flags = ArtefactMonitor("p").learn_many(
        [r(HR, 1, 900), r(SPO2, 2, 120), r(HR, 3, 350), r(SPO2, 4, 100)]
    )
    assert [(a.rule, a.category, a.severity) for a in flags] == [
        ("artefact.8867-4", "artefact", "info"),
        ("artefact.59408-5", "artefact", "info"),
    ]
    assert "900" in flags[0].message and flags[0].detail["high"] == 350.0


def test_steps_artefact_uses_the_rate_over_the_interval() -> None:
    m = ArtefactMonitor("p")
    ok = Reading("p", "55423-8", T0, 250.0, "{steps}", FactRef("w", "a"), T0 + 60)
    over_a_minute = Reading("p", "55423-8", T0, 400.0, "{steps}", FactRef("w", "b"), T0 + 60)
    over_an_hour = Reading("p", "55423-8", T0, 4000.0, "{steps}", FactRef("w", "c"), T0 + 3600)
    negative = Reading("p", "55423-8", T0, -1.0, "{steps}", FactRef("w", "d"))
    assert [
        a.evidence[0].source_id for a in m.learn_many([ok, over_a_minute, over_an_hour, negative])
    ] == ["b", "d"]


def test_oxygen_from_flow_or_fio2() -> None:
    m = News2Monitor("p")
    m.learn_many(normal_set(0))
    alerts = m.learn_one(r(FLOW, 1, 2.0))  # 2 L/min: on oxygen, 2 points, low
    assert alerts == [] and m.level == 0
    assert m.state_dict()["latest"]["on_oxygen"][0] == 1.0
    m.learn_one(r(FIO2, 2, 21.0))  # room air
    assert m.state_dict()["latest"]["on_oxygen"][0] == 0.0
    m.learn_one(r(FIO2, 3, 40.0))
    assert m.state_dict()["latest"]["on_oxygen"][0] == 1.0


def test_spo2_scale_2_on_oxygen() -> None:
    # Scale 2 on oxygen: SpO2 97 % scores 3 (RCP 2017 Chart 1); on scale 1 it scores 0
    readings = [*normal_set(0), r(FLOW, 0, 2.0)]
    scale1 = News2Monitor("p")
    assert scale1.learn_many(readings) == []
    scale2 = News2Monitor("p", {"spo2_scale": 2})
    alerts = scale2.learn_many(readings)
    assert alerts[-1].detail["components"]["spo2_percent"] == 3
    assert alerts[-1].rule == "news2.medium"  # 3 + oxygen 2 = 5
    with pytest.raises(MonitorConfigError, match="spo2_scale"):
        News2Monitor("p", {"spo2_scale": 3})


def test_qsofa_turns_positive_with_two_criteria() -> None:
    m = QsofaMonitor("p")
    assert m.learn_one(r(RR, 0, 22)) == []  # one criterion, mentation unknown: floor negative
    alerts = m.learn_one(r(SBP, 1, 100))
    assert [a.rule for a in alerts] == ["qsofa.positive"]
    assert (
        "gcs" in alerts[0].detail["missing"] or "altered_mentation" in alerts[0].detail["missing"]
    )
    m2 = QsofaMonitor("p")
    m2.learn_one(r(RR, 0, 21))
    assert m2.learn_one(r(SBP, 1, 101)) == []
    assert [a.rule for a in m2.learn_one(r("9269-2", 2, 14))] == []  # GCS<15 is one criterion only
    assert [a.rule for a in m2.learn_one(r(RR, 3, 22))] == ["qsofa.positive"]


def test_mews_alerts_at_five() -> None:
    m = MewsMonitor("p")
    # Subbe et al. 2001 Table 1: SBP 71-80 scores 2, HR >= 130 scores 3: 5, the alerting score
    alerts = m.learn_many([r(SBP, 0, 75), r(HR, 1, 130)])
    assert [a.rule for a in alerts] == ["mews.high"]
    assert alerts[0].detail["value"] == 5
    assert alerts[0].detail["components"] == {"systolic_bp_mm_hg": 2, "pulse_per_min": 3}


def test_state_json_round_trip_continues_identically() -> None:
    a = News2Monitor("p")
    a.learn_many(normal_set(0))
    saved = json.loads(json.dumps(a.state_dict()))
    b = News2Monitor("p")
    b.load_state(saved)
    nxt = [r(RR, 5, 26), r(HR, 6, 135)]
    assert [x.to_dict() for x in a.learn_many(nxt)] == [x.to_dict() for x in b.learn_many(nxt)]


def test_zero_pulse_pressure_saturation_are_not_scored() -> None:
    m = News2Monitor("p")
    m.learn_many(normal_set(0))
    assert m.learn_many([r(HR, 1, 0), r(SBP, 1, 0), r(SPO2, 1, 0)]) == []
    latest = m.state_dict()["latest"]
    assert latest["pulse_per_min"][0] == 80.0 and latest["systolic_bp_mm_hg"][0] == 125.0
    # a zero respiratory rate is a recorded apnoea: scored (3 points, a red score)
    assert [a.rule for a in m.learn_one(r(RR, 2, 0))] == ["news2.low-medium"]


def test_zero_artefacts_say_whether_another_signal_contradicts_them() -> None:
    m = ArtefactMonitor("p")
    alone = m.learn_one(r(HR, 0, 0))  # nothing else known: sensor off or arrest
    assert alone[0].detail["contradicted"] is False and "check the patient" in alone[0].message
    m.learn_one(r("8889-8", 1, 72))  # the oximeter counts a pulse
    lead_off = m.learn_one(r(HR, 2, 0))
    assert lead_off[0].detail["contradicted"] is True and "disconnected" in lead_off[0].message
    # more than 120 s after the last non-zero signal, a zero is no longer contradicted
    assert m.learn_one(r(HR, 4.1, 0))[0].detail["contradicted"] is False
    assert m.learn_one(r("8889-8", 5, 70)) == []
