"""The attribute glides of engine/controls.py: a value at a sample position is fixed by the
changes before it, in closed form, whatever order or how often it is read."""

import numpy as np
import pytest

from vqsynth.engine.controls import SETTLED, AttrGlide, BendTrack

HOP = 256
COEF = 0.2


def glide(a=3):
    return AttrGlide(np.full(a, 0.5), np.full(a, COEF), HOP, channels=4)


def test_a_glide_follows_its_closed_form():
    g = glide()
    g.set(1000, 0, 1, 0.9)
    for frames in (0, 1, 3, 10):
        now, target = g.at(1000 + frames * HOP)
        assert target[0, 1] == 0.9
        assert now[0, 1] == pytest.approx(0.9 + (0.5 - 0.9) * (1 - COEF) ** frames, abs=1e-12)
        assert now[0, 0] == now[0, 2] == 0.5  # the others did not move
    assert g.at(1000 + 50 * HOP)[0][0, 1] == 0.9  # 6e-6 short: within SETTLED it is there, exactly
    assert g.still_after(1000 + 50 * HOP) and not g.still_after(1000 + 10 * HOP)


def test_the_values_do_not_depend_on_how_often_or_in_what_order_they_are_read():
    rng = np.random.default_rng(0)
    changes = sorted((int(rng.integers(0, 40 * HOP)), int(rng.integers(0, 3)), int(rng.integers(0, 3)),
                      float(rng.random())) for _ in range(200))
    often, once = glide(), glide()
    for g in (often, once):
        for pos, row, k, value in changes:
            g.set(pos, row, k, value)
    for pos in range(0, 40 * HOP, 37):
        often.at(pos)
        if pos % 2000 < 37:
            often.fold(pos - 5 * HOP)  # the render thread forgets history no frame reads any more
    for pos in (40 * HOP, 41 * HOP + 17):
        assert np.array_equal(often.at(pos)[0], once.at(pos)[0])


def test_a_change_added_behind_a_read_is_not_skipped():
    """Live, a change stamped for earlier can arrive after a voice read past its position."""
    g, ref = glide(), glide()
    g.set(5 * HOP, 0, 0, 0.1)
    g.at(20 * HOP)  # the memo now holds the state after the first change
    g.set(2 * HOP, 0, 0, 0.9)
    for pos, value in ((2 * HOP, 0.9), (5 * HOP, 0.1)):
        ref.set(pos, 0, 0, value)
    assert np.array_equal(g.at(20 * HOP)[0], ref.at(20 * HOP)[0])
    assert g.at(20 * HOP)[0][0, 0] != ref.at(20 * HOP + 1)[0][0, 0]


def test_a_channel_row_starts_from_the_global_value_and_hands_back():
    g = glide()
    g.set(0, 0, 2, 1.0)
    g.set(4 * HOP, 2, 2, 0.0)  # channel 1 takes its own target from where the global one is then
    global_then = 1.0 + (0.5 - 1.0) * (1 - COEF) ** 4
    assert g.voice(4 * HOP, 1, 1)[2] == pytest.approx(global_then, abs=1e-12)
    assert g.voice(6 * HOP, 1, 1)[2] == pytest.approx(global_then * (1 - COEF) ** 2, abs=1e-12)
    assert g.voice(6 * HOP, 0, 0)[2] == pytest.approx(1.0 + (0.5 - 1.0) * (1 - COEF) ** 6, abs=1e-12)
    g.follow(7 * HOP, 2)
    assert g.voice(9 * HOP, 1, 1)[2] == g.voice(9 * HOP, 0, 0)[2]


def test_speed_and_recall_go_on_from_where_the_value_is():
    g = glide()
    g.set(0, 0, 0, 1.0)
    g.speed(3 * HOP, 0, 0.5)
    at3 = 1.0 - 0.5 * (1 - COEF) ** 3
    assert g.at(5 * HOP)[0][0, 0] == pytest.approx(1.0 - (1.0 - at3) * 0.5 ** 2, abs=1e-12)
    g.set(5 * HOP, 3, 1, 0.0)
    g.recall(6 * HOP, 1, 0.2)  # a preset: channel 2 follows the global value again
    assert np.isnan(g.at(6 * HOP)[1][3, 1])
    g.jump(8 * HOP)
    now, target = g.at(8 * HOP)
    own = ~np.isnan(target)
    assert np.array_equal(now[own], target[own]) and abs(now[0, 0] - 1.0) < SETTLED


def test_a_bend_reads_the_last_change_of_its_channel_at_or_before_the_position():
    rng = np.random.default_rng(1)
    bends = BendTrack(4)
    sent = []  # in order of arrival: a later one at the same position wins
    for _ in range(300):
        sent.append((int(rng.integers(0, 5000)), int(rng.integers(0, 4)), float(rng.uniform(-2, 2))))
        bends.set(*sent[-1])

    def expected(channel, pos):
        mine = [(p, n) for n, (p, c, _) in enumerate(sent) if c == channel and p <= pos]
        return sent[max(mine)[1]][2] if mine else 0.0

    for pos in range(0, 5200, 97):
        for channel in range(4):
            assert bends.at(channel, pos) == expected(channel, pos)
    bends.fold(2500)
    for pos in range(2500, 5200, 97):
        assert [bends.at(c, pos) for c in range(4)] == [expected(c, pos) for c in range(4)]
