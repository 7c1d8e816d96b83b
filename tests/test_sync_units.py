"""Small parts of sync with exact rules: the probe backoff and the offline signal."""

from __future__ import annotations

import random

from appliance.config import SyncSection
from appliance.sync.backoff import Backoff
from appliance.sync.link import is_offline, link_for, share


def test_probes_back_off_from_a_few_seconds_to_two_minutes_with_jitter() -> None:
    cfg = SyncSection()
    delays = [
        Backoff(cfg.probe_min_seconds, cfg.probe_max_seconds, random.Random(seed)).next()
        for seed in range(50)
    ]
    assert all(1.5 <= d <= 3.0 for d in delays)  # the first probe waits a few seconds
    assert len({round(d, 3) for d in delays}) > 40  # jitter: registers do not probe in step
    backoff = Backoff(cfg.probe_min_seconds, cfg.probe_max_seconds, random.Random(1))
    seq = [backoff.next() for _ in range(12)]
    ceilings = [min(120.0, 3.0 * 2**n) for n in range(12)]
    assert all(c / 2 <= d <= c for d, c in zip(seq, ceilings, strict=True))
    assert max(seq) <= 120.0 and seq[-1] >= 60.0  # capped at two minutes
    backoff.reset()
    assert backoff.next() <= 3.0  # "retry now" / a network change starts over


def test_the_offline_signal_is_one_object_per_register() -> None:
    class Owner:
        pass

    service, register, standalone = Owner(), Owner(), Owner()
    link = link_for(service)
    share(link, register)
    assert not is_offline(standalone)  # never paired: not offline, just standalone
    link.paired = True
    assert is_offline(service) and is_offline(register)
    link.online = True
    assert not is_offline(register)
