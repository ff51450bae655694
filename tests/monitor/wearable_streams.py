"""Hand-made minute streams of heart rate and steps for the wearable monitor tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from medtwin.monitor.base import FactRef, Reading

START = 1_700_006_400.0  # 2023-11-15T00:00:00Z, a UTC midnight


def minute_stream(
    heart_rate: Sequence[float] | np.ndarray,
    steps: Sequence[float] | np.ndarray,
    *,
    start_epoch_s: float = START,
    patient_id: str = "mt-wear",
    step_code: str = "55423-8",
) -> list[Reading]:
    """One heart rate and one step count per minute (``nan``: no reading that minute)."""
    readings: list[Reading] = []
    for i, (hr, st) in enumerate(zip(heart_rate, steps, strict=True)):
        t = start_epoch_s + 60.0 * i
        if not math.isnan(hr):
            readings.append(
                Reading(patient_id, "8867-4", t, float(hr), "/min", FactRef("test", f"hr/{i}"))
            )
        if not math.isnan(st):
            readings.append(
                Reading(
                    patient_id,
                    step_code,
                    t,
                    float(st),
                    "{steps}",
                    FactRef("test", f"st/{i}"),
                    t + 60.0,
                )
            )
    return readings
