"""The run history charts' maths and wording (syncs/charts.py): one scale per chart, round ticks from 0, every
point placed by its value, the notable ones labelled, and changes stated in numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncs import charts
from syncs.models import SyncRun


def runs(sizes, rates=None, *, start=datetime(2026, 11, 20, 9, 0, tzinfo=UTC), every=timedelta(days=1)):
    rates = rates or [None] * len(sizes)
    return [SyncRun(pk=i + 1, status="succeeded", audience_size=size, match_rate=rate, created_at=start + i * every)
            for i, (size, rate) in enumerate(zip(sizes, rates, strict=True))]


def test_changes_are_stated_in_numbers_with_a_real_minus_sign():
    assert charts.size_change(1993, 3) == "1,993 → 3, −99.8 %"
    assert charts.size_change(1000, 1250) == "1,000 → 1,250, +25.0 %"
    assert charts.size_change(5, 5) == "5 → 5, ±0 %"
    assert charts.size_change(0, 40) == "0 → 40"
    assert charts.size_change(None, 40) == ""
    assert charts.rate_change(0.61, 0.58) == "61 % → 58 %, −3 points"
    assert charts.rate_change(0.5, 0.51) == "50 % → 51 %, +1 point"


def test_ticks_are_round_and_reach_the_top_value():
    assert charts.nice_ticks(1993) == [0, 500, 1000, 1500, 2000]
    assert charts.nice_ticks(100) == [0, 25, 50, 75, 100]
    assert charts.nice_ticks(3) == [0, 1, 2, 3]
    assert charts.nice_ticks(0) == [0, 1]
    assert charts.compact(2_500_000) == "2.5 M" and charts.compact(3_000_000) == "3 M"
    assert charts.compact(45_000) == "45 k" and charts.compact(1_500) == "1,500"


def test_size_and_match_rate_get_a_chart_each_with_axes_dates_and_values():
    history = runs([1200, 1993, 3], [0.6, 0.62, 0.1])
    size, rate = charts.history_charts(history)
    assert (size.key, rate.key) == ("size", "match_rate")
    assert [label for _, label in size.y_ticks] == ["0", "500", "1,000", "1,500", "2,000"]
    assert [label for _, label in rate.y_ticks] == ["0 %", "25 %", "50 %", "75 %", "100 %"]
    assert [label for _, label in size.x_ticks] == ["20 Nov", "21 Nov", "22 Nov"]
    # Heights follow the values on each chart's own scale (SVG y grows downwards).
    y = {p.text: p.y for p in size.points}
    assert y["1,993"] < y["1,200"] < y["3"] == round(size.bottom - 3 / 2000 * (size.bottom - size.top), 1)
    assert [p.text for p in rate.points] == ["60 %", "62 %", "10 %"]
    # The collapse is labelled at both ends and stated below the chart.
    assert {p.text for p in size.points if p.labelled} == {"1,200", "1,993", "3"}
    assert "Last run: 1,993 → 3, −99.8 %." in size.summary
    assert "Over 3 runs: 1,200 → 3, −99.8 %." in size.summary
    assert rate.summary[0] == "Last run: 62 % → 10 %, −52 points."
    assert size.line.count(",") == 3 and "polyline" not in size.line


def test_labels_do_not_crowd_each_other_and_the_tooltips_carry_every_value():
    sizes = [1000 + (i % 2) for i in range(30)]
    (size,) = charts.history_charts(runs(sizes))
    labelled = sorted(p.x for p in size.points if p.labelled)
    assert labelled[0] == size.points[0].x and labelled[-1] == size.points[-1].x
    assert all(b - a >= charts.LABEL_SPACING for a, b in zip(labelled, labelled[1:], strict=False))
    assert all(p.when and p.text for p in size.points)


def test_runs_on_one_day_show_times_and_a_single_run_draws_no_chart():
    same_day = runs([10, 20], start=datetime(2026, 11, 20, 9, 0, tzinfo=UTC), every=timedelta(hours=2))
    (chart,) = charts.history_charts(same_day)
    assert [label for _, label in chart.x_ticks] == ["09:00", "11:00"]
    within_a_minute = runs([10, 20], every=timedelta(seconds=7))
    assert [label for _, label in charts.history_charts(within_a_minute)[0].x_ticks] == ["09:00:00", "09:00:07"]
    assert charts.history_charts(runs([10])) == []
    assert charts.history_charts(runs([None, None])) == []
