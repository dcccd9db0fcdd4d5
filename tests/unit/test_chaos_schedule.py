"""The chaos run's fault schedule: a pure function of the seed and the duration."""

from __future__ import annotations

import pytest

from chaos.schedule import KINDS, Fault, overlaps, plan, window


@pytest.mark.parametrize("duration", [120.0, 600.0])
def test_the_same_seed_and_duration_give_the_same_schedule(duration):
    assert plan(7, duration) == plan(7, duration)
    assert plan(7, duration) != plan(8, duration)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("duration", [120.0, 600.0])
def test_every_kind_appears_within_the_window_and_faults_overlap(seed, duration):
    faults = plan(seed, duration)
    start, end = window(duration)
    assert {fault.kind for fault in faults} == set(KINDS)
    assert all(start <= fault.at_s and fault.heal_s <= end + 0.1 for fault in faults)
    assert overlaps(faults) > 0
    assert [fault.at_s for fault in faults] == sorted(fault.at_s for fault in faults)


@pytest.mark.parametrize("seed", range(20))
def test_faults_of_one_component_never_overlap(seed):
    faults = plan(seed, 600.0)
    for i, a in enumerate(faults):
        for b in faults[i + 1 :]:
            if a.component == b.component:
                assert b.at_s >= a.heal_s or a.at_s >= b.heal_s, (a, b)


@pytest.mark.parametrize("seed", range(20))
def test_durations_and_parameters_are_in_their_kinds_ranges(seed):
    for fault in plan(seed, 600.0):
        _, (low, high), (p_low, p_high) = KINDS[fault.kind]
        assert low - 0.05 <= fault.duration_s <= high + 0.05
        assert p_low - 0.005 <= fault.param <= p_high + 0.005


@pytest.mark.parametrize("seed", range(10))
def test_the_first_full_spool_lands_in_a_kafka_outage(seed):
    faults = plan(seed, 600.0)
    outages = [f for f in faults if f.kind == "kafka_stop"]
    fulls = [f for f in faults if f.kind == "spool_full"]
    assert any(k.at_s < s.at_s < k.heal_s for k in outages for s in fulls)


def test_overlaps_counts_pairs_active_together():
    faults = [Fault("api_kill", 0, 10), Fault("redis_stop", 5, 10), Fault("auth_stop", 20, 1)]
    assert overlaps(faults) == 1


def test_a_fault_describes_itself_with_its_parameter():
    assert "sent_at +3600 s" in Fault("clock_step", 1, 2, 3600).describe()
    assert "1.50 s per answer" in Fault("auth_slow", 1, 2, 1.5).describe()
