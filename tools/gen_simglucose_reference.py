"""Generate reference trajectories of simglucose's UVA/Padova patient for medtwin's tests.

simglucose (MIT, a dev dependency only) integrates one patient at a time with scipy's dopri5,
stepping every minute (``T1DPatient.step``). This script feeds each of its 30 virtual patients
the scenario below (the patient's own steady-state basal, meals and boluses, as in
``medtwin.physiology.uva_padova``) and writes plasma glucose (Gp / VG) and subcutaneous glucose
(Gs / VG) every 5 minutes over 24 h to ``tests/physiology/data/simglucose_reference.npz``.

Run: ``.venv/bin/python tools/gen_simglucose_reference.py`` (about a minute per patient-day
batch of 30 on a loaded machine). The test suite compares medtwin against this file for all
30 patients and against simglucose live for a few.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "physiology" / "data"

# The reference scenario, in medtwin's event format: every patient on its own basal.
SCENARIO: dict[str, Any] = {
    "events": [
        {"type": "basal"},
        {"type": "meal", "t_min": 420, "carbs_g": 45},
        {"type": "bolus", "t_min": 420, "insulin_u": 3},
        {"type": "meal", "t_min": 720, "carbs_g": 70},
        {"type": "bolus", "t_min": 725, "insulin_u": 4},
        {"type": "meal", "t_min": 900, "carbs_g": 22},
        {"type": "meal", "t_min": 902, "carbs_g": 10},
        {"type": "meal", "t_min": 1080, "carbs_g": 80},
        {"type": "bolus", "t_min": 1080, "insulin_u": 5},
        {"type": "meal", "t_min": 1320, "carbs_g": 12},
    ]
}
HOURS = 24
EVERY_MIN = 5


def run_patient(
    name: str,
    scenario: dict[str, Any],
    minutes: int,
    params: np.ndarray | None = None,
    x0: np.ndarray | None = None,
) -> np.ndarray:
    """States of simglucose's ``T1DPatient`` at t = 0 .. ``minutes`` (``[minutes + 1, 13]``).

    ``params`` (a medtwin ``uva_padova_2008`` parameter vector ``[P]``, e.g. a fitted twin's)
    replaces the named patient's values column by column, so simglucose checks any twin;
    ``x0`` (medtwin's state ``[14]`` or simglucose's ``[13]``) starts it from a given state.
    """
    from simglucose.patient.t1dpatient import Action, T1DPatient

    if params is None and x0 is not None:
        from medtwin.model import get_model

        params = get_model("uva_padova_2008").preset(name)[0]
    if params is None:
        patient = T1DPatient.withName(name)
    else:
        import tomllib
        from importlib import resources

        meta = tomllib.loads(
            resources.files("medtwin.physiology")
            .joinpath("data/uva_padova_2008/parameters.toml")
            .read_text(encoding="utf-8")
        )
        row = T1DPatient.withName(name)._params.copy()
        for spec, value in zip(meta["parameter"], np.asarray(params).ravel(), strict=True):
            row[spec["column"]] = float(value)
        steady = [row[f"x0_{i:2d}"] for i in range(1, 14)]
        for i, column in {
            4: "Gpb",
            5: "Gtb",
            6: "Ipb",
            8: "Ib",
            9: "Ib",
            10: "Ilb",
            11: "isc1ss",
            12: "isc2ss",
            13: "Gpb",
        }.items():
            steady[i - 1] = row[column]
        for i, value in enumerate(steady, start=1):
            row[f"x0_{i:2d}"] = value
        patient = T1DPatient(row, init_state=None if x0 is None else np.asarray(x0)[:13].copy())
    params = patient._params
    basal_u_per_min = params.u2ss * params.BW / 6000.0
    meals: dict[int, float] = {}
    boluses: dict[int, float] = {}
    for ev in scenario["events"]:
        if ev["type"] == "meal":
            meals[int(ev["t_min"])] = meals.get(int(ev["t_min"]), 0.0) + ev["carbs_g"]
        elif ev["type"] == "bolus":
            boluses[int(ev["t_min"])] = boluses.get(int(ev["t_min"]), 0.0) + ev["insulin_u"]
    states = np.empty((minutes + 1, 13))
    for t in range(minutes):
        states[t] = patient.state
        action = Action(CHO=meals.get(t, 0.0), insulin=basal_u_per_min + boluses.get(t, 0.0))
        patient.step(action)
    states[minutes] = patient.state
    return states


def main() -> int:
    warnings.filterwarnings("ignore")
    import pandas as pd
    import simglucose
    from simglucose.patient.t1dpatient import PATIENT_PARA_FILE

    table = pd.read_csv(PATIENT_PARA_FILE)
    names = list(table["Name"])
    minutes = HOURS * 60
    idx = np.arange(0, minutes + 1, EVERY_MIN)
    bg = np.empty((len(names), len(idx)))
    gs = np.empty((len(names), len(idx)))
    start = time.process_time()
    for i, name in enumerate(names):
        states = run_patient(name, SCENARIO, minutes)
        vg = float(table.loc[i, "Vg"])
        bg[i] = states[idx, 3] / vg
        gs[i] = states[idx, 12] / vg
        print(f"{name}: min {bg[i].min():.1f} max {bg[i].max():.1f} mg/dL", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT / "simglucose_reference.npz",
        names=np.array(names),
        times_min=idx.astype(np.float64),
        bg_mg_dl=bg,
        gs_mg_dl=gs,
        scenario=np.array(json.dumps(SCENARIO)),
        simglucose_version=np.array(getattr(simglucose, "__version__", "0.2.11")),
    )
    print(
        f"wrote {OUT / 'simglucose_reference.npz'} ({time.process_time() - start:.1f} s CPU)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
