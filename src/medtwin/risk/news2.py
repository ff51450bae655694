"""NEWS2: the Royal College of Physicians' National Early Warning Score 2 (2017).

Seven parameters, each 0-3 points (air or oxygen: 0 or 2), summed to 0-20. The scoring table is
RCP 2017 **Chart 1** ("The NEWS scoring system"), reproduced row by row below as printed; SpO2
has two scales: Scale 1 for everyone, Scale 2 only for patients with a prescribed target range
of 88-92 % (hypercapnic respiratory failure), on the clinician's decision. The clinical risk
bands are RCP 2017 **Chart 3** ("NEWS thresholds and triggers"); Chart 4 gives the clinical
response to each. Model card: ``docs/models/news2.md``.

Chart 1 (points in brackets)::

    respiration rate (/min)   ≤8 [3]   9–11 [1]   12–20 [0]   21–24 [2]   ≥25 [3]
    SpO2 Scale 1 (%)          ≤91 [3]  92–93 [2]  94–95 [1]   ≥96 [0]
    SpO2 Scale 2 (%)          ≤83 [3]  84–85 [2]  86–87 [1]   88–92 or ≥93 on air [0]
                              93–94 on oxygen [1]  95–96 on oxygen [2]  ≥97 on oxygen [3]
    air or oxygen?            air [0]  oxygen [2]
    systolic BP (mmHg)        ≤90 [3]  91–100 [2] 101–110 [1] 111–219 [0] ≥220 [3]
    pulse (/min)              ≤40 [3]  41–50 [1]  51–90 [0]   91–110 [1]  111–130 [2]  ≥131 [3]
    consciousness             alert [0]   new confusion, voice, pain, unresponsive (CVPU) [3]
    temperature (°C)          ≤35.0 [3]  35.1–36.0 [1]  36.1–38.0 [0]  38.1–39.0 [1]  ≥39.1 [2]

Chart 3 clinical risk: aggregate 0-4 "low"; a score of 3 in any single parameter ("red score")
with an aggregate below 5 "low-medium"; aggregate 5-6 "medium"; 7 or more "high".

Values between printed bands (20.5 /min, 35.05 °C) take the band with the higher points
(:class:`~medtwin.risk.base.BandTable`).

References
----------
Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the assessment
of acute-illness severity in the NHS. Updated report of a working party. London: RCP, 2017.
Chart 1 (scoring), Chart 2 (observation chart, SpO2 Scale 2 use), Chart 3 (thresholds and
triggers), Chart 4 (clinical response).

Examples
--------
>>> from medtwin.risk.news2 import NEWS2
>>> r = NEWS2.compute_one({"respiratory_rate_per_min": 24, "spo2_percent": 93, "on_oxygen": False,
...     "systolic_bp_mm_hg": 105, "pulse_per_min": 115, "consciousness": "A", "temperature_c": 38.5})
>>> r.value, r.band
(8, 'high')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medtwin.risk.base import (
    Band,
    BandTable,
    CodeArray,
    InputData,
    IntArray,
    PointsScore,
    PopulationRule,
    ScoreInput,
    age_input,
    bool_points,
    category_points,
    pulse_input,
    respiratory_rate_input,
    spo2_input,
    systolic_bp_input,
    temperature_input,
)

__all__ = ["NEWS2", "News2"]

SOURCE = (
    "Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the "
    "assessment of acute-illness severity in the NHS. Updated report of a working party. "
    "London: RCP, 2017. Chart 1 (scoring system), Chart 3 (thresholds and triggers), "
    "Chart 4 (clinical response)."
)
_CHART1 = "RCP 2017, NEWS2 Chart 1"

RESPIRATION = BandTable(
    "respiratory_rate_per_min",
    (("≤8", 3), ("9–11", 1), ("12–20", 0), ("21–24", 2), ("≥25", 3)),
    _CHART1,
)
SPO2_SCALE_1 = BandTable(
    "spo2_percent (Scale 1)",
    (("≤91", 3), ("92–93", 2), ("94–95", 1), ("≥96", 0)),
    _CHART1,
)
SPO2_SCALE_2_AIR = BandTable(
    "spo2_percent (Scale 2, on air)",
    (("≤83", 3), ("84–85", 2), ("86–87", 1), ("88–92", 0), ("≥93", 0)),
    _CHART1 + ": 88–92 and ≥93 on air both score 0",
)
SPO2_SCALE_2_OXYGEN = BandTable(
    "spo2_percent (Scale 2, on oxygen)",
    (
        ("≤83", 3),
        ("84–85", 2),
        ("86–87", 1),
        ("88–92", 0),
        ("93–94", 1),
        ("95–96", 2),
        ("≥97", 3),
    ),
    _CHART1 + ": on oxygen, saturations above the 88–92 % target score",
)
SYSTOLIC_BP = BandTable(
    "systolic_bp_mm_hg",
    (("≤90", 3), ("91–100", 2), ("101–110", 1), ("111–219", 0), ("≥220", 3)),
    _CHART1,
)
PULSE = BandTable(
    "pulse_per_min",
    (("≤40", 3), ("41–50", 1), ("51–90", 0), ("91–110", 1), ("111–130", 2), ("≥131", 3)),
    _CHART1,
)
TEMPERATURE = BandTable(
    "temperature_c",
    (("≤35.0", 3), ("35.1–36.0", 1), ("36.1–38.0", 0), ("38.1–39.0", 1), ("≥39.1", 2)),
    _CHART1,
)
CONSCIOUSNESS_POINTS = (0, 3, 3, 3, 3)
"""A, C, V, P, U (RCP 2017 Chart 1: alert 0; new confusion, voice, pain, unresponsive 3)."""
OXYGEN_POINTS = 2
"""Supplemental oxygen 2, air 0 (RCP 2017 Chart 1, "Air or oxygen?")."""


class News2(PointsScore):
    """NEWS2 (RCP 2017). See the module docstring for the chart; ``NEWS2`` is the instance."""

    name = "news2"
    title = "National Early Warning Score 2 (NEWS2)"
    version = "1.0.0"
    source = SOURCE
    valid_population = (
        "Adults aged 16 years or over in acute care (hospital or pre-hospital); not validated in "
        "children under 16 or in pregnancy (RCP 2017). Rows with age_years < 16 or "
        "pregnant = true are refused. SpO2 Scale 2 only for patients with a prescribed target "
        "range of 88-92 % (hypercapnic respiratory failure), as decided by a clinician."
    )
    inputs = (
        respiratory_rate_input(),
        spo2_input(),
        ScoreInput(
            "spo2_scale",
            None,
            "category",
            "SpO2 scale: 1 (default) or 2 (prescribed target 88-92 %, hypercapnic respiratory "
            "failure; RCP 2017 Chart 1 and 2)",
            required=False,
            categories=(1, 2),
            aliases={"scale 1": 1, "scale 2": 2, "scale1": 1, "scale2": 2},
            default=1,
        ),
        ScoreInput(
            "on_oxygen",
            None,
            "bool",
            "Supplemental oxygen (true) or air (false) at the time of the SpO2 reading",
        ),
        systolic_bp_input(),
        pulse_input("Pulse, beats per minute"),
        ScoreInput(
            "consciousness",
            None,
            "category",
            "ACVPU: A alert, C new confusion (new-onset or worsening), V responds to voice, "
            "P responds to pain, U unresponsive",
            categories=("A", "C", "V", "P", "U"),
            aliases={
                "alert": "A",
                "new confusion": "C",  # only new: chronic confusion is not "C" (RCP 2017)
                "voice": "V",
                "pain": "P",
                "unresponsive": "U",
            },
        ),
        temperature_input(),
        age_input("16 years or over"),
        ScoreInput(
            "pregnant",
            None,
            "bool",
            "Pregnancy; NEWS2 is not validated in pregnancy (RCP 2017); checked, not scored",
            required=False,
            population=True,
        ),
    )
    components: Mapping[str, int] = {
        "respiratory_rate_per_min": RESPIRATION.max_points,
        "spo2_percent": max(SPO2_SCALE_1.max_points, SPO2_SCALE_2_OXYGEN.max_points),
        "on_oxygen": OXYGEN_POINTS,
        "systolic_bp_mm_hg": SYSTOLIC_BP.max_points,
        "pulse_per_min": PULSE.max_points,
        "consciousness": max(CONSCIOUSNESS_POINTS),
        "temperature_c": TEMPERATURE.max_points,
    }
    tables: Mapping[str, BandTable] = {
        t.label: t
        for t in (
            RESPIRATION,
            SPO2_SCALE_1,
            SPO2_SCALE_2_AIR,
            SPO2_SCALE_2_OXYGEN,
            SYSTOLIC_BP,
            PULSE,
            TEMPERATURE,
        )
    }
    population_rules = (
        PopulationRule(
            "age_years",
            lambda age: age < 16.0,
            "age_years={value}: NEWS2 is validated for adults aged 16 years or over "
            "(RCP 2017); use a paediatric early warning score",
        ),
        PopulationRule(
            "pregnant",
            lambda pregnant: pregnant == 1.0,
            "pregnant=true: NEWS2 is not validated in pregnancy (RCP 2017); use a maternity "
            "early warning score",
        ),
    )
    bands = (
        Band("low", "aggregate 0-4 and no single parameter scoring 3", "RCP 2017 Chart 3"),
        Band(
            "low-medium",
            "a score of 3 in any single parameter (red score), aggregate below 5",
            "RCP 2017 Chart 3",
        ),
        Band("medium", "aggregate 5-6", "RCP 2017 Chart 3"),
        Band("high", "aggregate 7 or more", "RCP 2017 Chart 3"),
    )

    def points(self, data: InputData) -> dict[str, CodeArray]:
        """Points per parameter (RCP 2017 Chart 1); -1 where not determined."""
        spo2 = data.number("spo2_percent")
        oxygen = data.number("on_oxygen")
        scale_2 = data.code("spo2_scale") == 1  # code 1 is scale 2
        s2_air = SPO2_SCALE_2_AIR.points(spo2)
        s2_oxygen = SPO2_SCALE_2_OXYGEN.points(spo2)
        # Scale 2 without the air/oxygen answer is determined only where both readings agree
        # (SpO2 <= 92 %); otherwise the SpO2 points stay undetermined (-1), never guessed.
        s2 = np.where(
            oxygen == 1.0,
            s2_oxygen,
            np.where(oxygen == 0.0, s2_air, np.where(s2_air == s2_oxygen, s2_air, np.int8(-1))),
        ).astype(np.int8)
        spo2_points = np.where(scale_2, s2, SPO2_SCALE_1.points(spo2)).astype(np.int8)
        return {
            "respiratory_rate_per_min": RESPIRATION.points(data.number("respiratory_rate_per_min")),
            "spo2_percent": spo2_points,
            "on_oxygen": bool_points(oxygen, OXYGEN_POINTS),
            "systolic_bp_mm_hg": SYSTOLIC_BP.points(data.number("systolic_bp_mm_hg")),
            "pulse_per_min": PULSE.points(data.number("pulse_per_min")),
            "consciousness": category_points(data.code("consciousness"), CONSCIOUSNESS_POINTS),
            "temperature_c": TEMPERATURE.points(data.number("temperature_c")),
        }

    def band_codes(self, value: IntArray, points: Mapping[str, CodeArray]) -> CodeArray:
        """Chart 3: 7+ high, 5-6 medium, else a 3 anywhere low-medium, else low."""
        red = np.zeros(value.shape[0], dtype=np.bool_)
        for p in points.values():
            red |= p == 3
        out: CodeArray = red.astype(np.int8)
        out[value >= 5] = 2
        out[value >= 7] = 3
        return out


NEWS2 = News2()
"""The NEWS2 score (registered as ``"news2"``)."""
