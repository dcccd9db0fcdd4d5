"""The fault schedule: a pure function of the seed and the duration, so a seed replays its run.

Faults of one component (Kafka, the API, ...) never overlap each other; faults of different
components overlap freely. Nothing starts in the first tenth of the run (the stack warms up)
nor ends in its last fifth (every fault healed while traffic still flows, then the drain).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Fault kind -> (component, shortest and longest duration in seconds, parameter range).
#: A kill's duration is how long the killed process stays down before it is restarted.
KINDS: dict[str, tuple[str, tuple[float, float], tuple[float, float]]] = {
    "api_worker_kill": ("api", (0.0, 3.0), (0.0, 1.0)),  # param: which worker (fraction)
    "api_kill": ("api", (0.5, 6.0), (0.0, 0.0)),
    "etl_kill": ("etl", (0.5, 5.0), (0.05, 0.6)),  # param: seconds into a pass
    "kafka_stop": ("kafka", (4.0, 30.0), (0.0, 0.0)),
    "kafka_pause": ("kafka", (2.0, 12.0), (0.0, 0.0)),
    "redis_stop": ("redis", (4.0, 25.0), (0.0, 0.0)),
    "auth_stop": ("auth", (4.0, 25.0), (0.0, 0.0)),
    "auth_slow": ("auth", (4.0, 25.0), (0.4, 2.5)),  # param: seconds per answer
    "spool_full": ("spool", (4.0, 20.0), (0.0, 0.0)),
    "warehouse_readonly": ("warehouse", (4.0, 25.0), (0.0, 0.0)),
    "clock_step": ("clock", (5.0, 40.0), (-7200.0, 7200.0)),  # param: seconds of the step
}
#: Faults started per minute of the fault window, on average (several at once, by design).
FAULTS_PER_MINUTE = 9.0


@dataclass(frozen=True)
class Fault:
    """One fault: its kind, when it starts and how long it lasts (seconds from the start)."""

    kind: str
    at_s: float
    duration_s: float
    param: float = 0.0

    @property
    def component(self) -> str:
        return KINDS[self.kind][0]

    @property
    def heal_s(self) -> float:
        return self.at_s + self.duration_s

    def describe(self) -> str:
        extra = {
            "api_worker_kill": f" worker {self.param:.2f}",
            "etl_kill": f" {self.param:.2f} s into a pass",
            "auth_slow": f" {self.param:.2f} s per answer",
            "clock_step": f" sent_at {self.param:+.0f} s",
        }.get(self.kind, "")
        return f"{self.at_s:7.1f}s +{self.duration_s:5.1f}s  {self.kind}{extra}"


def window(duration_s: float) -> tuple[float, float]:
    """When faults may start and by when they have all healed."""
    return duration_s * 0.1, duration_s * 0.8


def plan(seed: int, duration_s: float) -> list[Fault]:
    """The faults of a run, sorted by start: every kind at least once, then random ones.

    Each component is free again one second after its fault heals; a fault whose component
    is busy at its drawn time is moved to just after, or dropped past the window's end.
    """
    rng = random.Random(f"{seed}/{duration_s}")
    start, end = window(duration_s)
    count = max(len(KINDS), round(FAULTS_PER_MINUTE * (end - start) / 60))
    kinds = list(KINDS)
    rng.shuffle(kinds)
    kinds += [rng.choice(list(KINDS)) for _ in range(count - len(KINDS))]
    # Every kind once, spread over the window, then the rest anywhere in it.
    span = end - start
    times = [start + span * (i + rng.random()) / len(KINDS) * 0.8 for i in range(len(KINDS))]
    times += [start + rng.random() * span for _ in range(count - len(KINDS))]
    free_at: dict[str, float] = {}
    faults = []
    for kind, at in sorted(zip(kinds, times, strict=True), key=lambda pair: pair[1]):
        component, (low, high), (p_low, p_high) = KINDS[kind]
        at = max(at, free_at.get(component, 0.0))
        duration = min(rng.uniform(low, high), max(end - at, 0.0))
        param = rng.uniform(p_low, p_high)
        if at >= end or duration < low:
            continue
        free_at[component] = at + duration + 1.0
        faults.append(Fault(kind, round(at, 1), round(duration, 1), round(param, 2)))
    return sorted(_spool_full_in_an_outage(faults), key=lambda fault: fault.at_s)


def _spool_full_in_an_outage(faults: list[Fault]) -> list[Fault]:
    """A full spool shows only while Kafka is away: the full spool nearest the first Kafka
    outage is moved into it (2 s after it starts), and any other it would overlap dropped."""
    outage = next((f for f in faults if f.kind == "kafka_stop" and f.duration_s > 4.5), None)
    fulls = [f for f in faults if f.kind == "spool_full"]
    if outage is None or not fulls:
        return faults
    nearest = min(fulls, key=lambda f: abs(f.at_s - outage.at_s))
    low = KINDS["spool_full"][1][0]
    moved = Fault(
        "spool_full",
        round(outage.at_s + 2.0, 1),
        round(max(low, min(nearest.duration_s, outage.duration_s - 2.0)), 1),
    )
    kept = [
        f
        for f in faults
        if f is not nearest
        and not (f.kind == "spool_full" and f.at_s < moved.heal_s + 1 and moved.at_s < f.heal_s + 1)
    ]
    return [*kept, moved]


def overlaps(faults: list[Fault]) -> int:
    """How many pairs of faults are active at the same time."""
    return sum(
        1
        for i, a in enumerate(faults)
        for b in faults[i + 1 :]
        if a.at_s < b.heal_s and b.at_s < a.heal_s
    )
