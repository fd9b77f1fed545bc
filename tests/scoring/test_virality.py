from __future__ import annotations

import csv
import math
from bisect import bisect_right
from itertools import pairwise

import numpy as np
import pytest
from cascades import draw_cascade
from cascades import polls as cascade_polls

from emberwatch.scoring.virality import (
    _CALIBRATION,
    CUTOFF,
    HORIZON,
    _chi2_quantile,
    _gamma_q,
    calibrated,
    forecast_from_polls,
    infectiousness,
    memory_ccdf,
    platform_prior,
    predict_final_size,
)

# The official R package's output on its example cascade (seismic_reference_predictions.csv):
# observation time -> (infectiousness, p_low, p_up, predicted final size).
REFERENCE = {
    300: (0.018596245, 0.012589437, 0.025561759, math.inf),
    600: (0.0075217888, 0.0040808756, 0.011813132, 262.96575),
    900: (0.0043178371, 0.0022525808, 0.0069251628, 92.368775),
    1800: (0.033596672, 0.026627164, 0.041235722, math.inf),
    3600: (0.0079088433, 0.0074576504, 0.0083711238, 7580.7895),
    7200: (0.0061073499, 0.0058623112, 0.006356592, 8760.9696),
    10800: (0.0064124054, 0.0062080925, 0.0066194915, 14140.134),
    14400: (0.006248102, 0.0060668933, 0.0064315468, 16520.189),
    21600: (0.0044448041, 0.0043022648, 0.0045892908, 15144.958),
    43200: (0.0034048192, 0.0032307896, 0.0035826703, 18130.929),
    86400: (0.0034864741, 0.0030790306, 0.0039149977, 19325.83),
}


@pytest.fixture(scope="module")
def cascade(shared_data):
    path = shared_data / "virality" / "seismic_tweet_127001313513967616.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    times = [float(r["relative_time_second"]) for r in rows]
    followers = [float(r["number_of_followers"]) for r in rows]
    return times, followers


def test_memory_kernel_ccdf_is_continuous_at_the_cutoff_and_decreasing():
    assert memory_ccdf(CUTOFF) == pytest.approx(memory_ccdf(CUTOFF + 1e-6), rel=1e-4)
    values = [memory_ccdf(t) for t in (0, 60, 300, 3600, 86400, 10**7)]
    assert values == sorted(values, reverse=True)
    assert values[0] == 1.0 and 0 < values[-1] < 0.1


@pytest.mark.parametrize(
    ("prob", "dof", "expected"),
    [(0.05, 10, 3.940299), (0.95, 10, 18.307038), (0.05, 2, 0.1025866), (0.95, 400, 447.6325)],
)
def test_chi_square_quantiles_match_r(prob, dof, expected):
    assert _chi2_quantile(prob, dof) == pytest.approx(expected, rel=1e-5)


def test_incomplete_gamma_tails():
    assert _gamma_q(1.0, 2.0) == pytest.approx(math.exp(-2))
    assert _gamma_q(5.0, 0.0) == 1.0
    assert 0 < _gamma_q(30.0, 45.0) < 0.01


@pytest.mark.parametrize("at", sorted(REFERENCE))
def test_seismic_matches_the_r_package_at_the_reference_times(cascade, at):
    times, followers = cascade
    value, low, up, final = REFERENCE[at]
    est = infectiousness(times, followers, at)
    assert est.value == pytest.approx(value, rel=1e-6)
    assert est.low == pytest.approx(low, rel=1e-6)
    assert est.up == pytest.approx(up, rel=1e-6)
    predicted = predict_final_size(at, est.value, times, followers, n_star=100)
    if math.isinf(final):
        assert math.isinf(predicted)
    else:
        assert predicted == pytest.approx(final, rel=1e-6)


def test_seismic_is_within_1_percent_of_the_reference_series(shared_data, cascade):
    times, followers = cascade
    with (shared_data / "virality" / "seismic_reference_series_nstar100.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    checked = 0
    for row in rows[::9]:  # every 9th minute keeps the test fast; the bench checks all
        at = float(row["obs_time_s"])
        ref_final = float(row["predicted_final_retweets"])
        est = infectiousness(times, followers, at)
        predicted = predict_final_size(at, est.value, times, followers)
        if math.isinf(ref_final):
            assert math.isinf(predicted), at
            continue
        checked += 1
        assert est.value == pytest.approx(float(row["infectiousness"]), rel=0.01, abs=1e-12)
        assert predicted == pytest.approx(ref_final, rel=0.01, abs=1e-9), at
    assert checked > 100


def test_polling_every_5_minutes_stays_near_the_true_size_after_4_hours(cascade):
    times, followers = cascade
    for hours in (4, 6):
        polls = [(t, bisect_right(times, t) - 1) for t in range(300, hours * 3600 + 1, 300)]
        forecast = forecast_from_polls(
            polls, threshold=500, poster_followers=followers[0], prior=platform_prior("x")
        )
        assert abs(forecast.expected_final / 15_562 - 1) < 0.15


def _forecast(polls, followers=500, threshold=500, source="twitter"):
    return forecast_from_polls(
        polls, threshold=threshold, poster_followers=followers, prior=platform_prior(source)
    )


def test_no_observation_leaves_a_reach_based_prior():
    small, big = _forecast([], followers=300), _forecast([], followers=3_000_000)
    assert small.probability < 0.05 < big.probability
    assert 0 < small.expected_final < big.expected_final


def test_more_engagement_at_the_same_age_means_more_likely_viral():
    probs = [_forecast([(1800, n)]).probability for n in (0, 10, 50, 150, 300)]
    assert probs == sorted(probs)
    assert probs[0] < 0.05 and probs[-1] > 0.25


def test_the_same_engagement_later_is_less_likely_to_go_viral():
    probs = [_forecast([(age, 80)]).probability for age in (600, 3600, 6 * 3600, 20 * 3600)]
    assert probs == sorted(probs, reverse=True)


def test_a_higher_threshold_is_less_likely_to_be_reached():
    polls = [(600, 20), (1200, 60)]
    probs = [_forecast(polls, threshold=t).probability for t in (100, 500, 5000)]
    assert probs == sorted(probs, reverse=True)


def test_reaching_the_threshold_within_24_hours_is_certain():
    forecast = _forecast([(3600, 700)])
    assert forecast.probability == 1.0
    assert forecast.expected_final >= 700


def test_a_mention_below_the_threshold_after_24_hours_did_not_go_viral():
    assert _forecast([(25 * 3600, 120)]).probability == 0.0


def test_polls_may_come_unsorted_and_repeat():
    a = _forecast([(600, 10), (1200, 40), (1800, 90)])
    b = _forecast([(1800, 90), (600, 10), (1200, 40), (1200, 35)])
    assert a.probability == b.probability
    assert a.expected_final == b.expected_final


def test_a_supercritical_cascade_gets_a_finite_capped_size():
    forecast = _forecast([(300 * k, 40 * k * k) for k in range(1, 7)], threshold=10**6)
    assert math.isfinite(forecast.expected_final)
    assert any("supercritical" in r for r in forecast.reasons)
    assert 0.0 <= forecast.probability <= 1.0


AGES = (0.0, 600.0, 1039.0, 1800.0, 3600.0, 5091.0, 14400.0, 24942.0, 86400.0)


def test_the_calibration_bands_are_increasing_maps_from_0_to_1():
    assert [a for a, _ in _CALIBRATION] == sorted({a for a, _ in _CALIBRATION})
    for _, knots in _CALIBRATION:
        xs, ys = [x for x, _ in knots], [y for _, y in knots]
        assert xs == sorted(set(xs)) and ys == sorted(ys)
        assert knots[0] == (0.0, 0.0) and knots[-1] == (1.0, 1.0)
    grid = [i / 10_000 for i in range(10_001)] + [10.0**-k for k in range(2, 9)]
    grid.sort()
    for age in AGES:
        values = [calibrated(x, age) for x in grid]
        assert all(a <= b for a, b in pairwise(values))  # monotone: the ranking is kept
        assert calibrated(0.0, age) == 0.0 and calibrated(1.0, age) == 1.0
        assert all(0.0 <= v <= 1.0 for v in values)


def test_the_calibration_corrects_both_ways():
    # From the fit (bench/virality_calibration.py): on the simulation, forecasts at raw 0.005
    # 10-40 min after publication came true about 43 % of the time, and 4-12 h after it,
    # raw 0.9 came true about half the time.
    assert 0.35 < calibrated(0.005, 1039) < 0.5
    assert calibrated(0.9, 24942) < 0.55
    assert calibrated(0.9, 24942) < calibrated(0.99, 24942) < 0.99


def test_the_bands_blend_in_log_age_and_are_flat_outside():
    (a0, _), (a1, _) = _CALIBRATION[0], _CALIBRATION[1]
    mid = math.sqrt(a0 * a1)
    for raw in (0.0005, 0.01, 0.3, 0.9):
        v0, v1 = calibrated(raw, a0), calibrated(raw, a1)
        assert calibrated(raw, mid) == pytest.approx((v0 + v1) / 2)
        assert calibrated(raw, 60) == calibrated(raw, a0)
        assert calibrated(raw, 10 * 86400) == calibrated(raw, _CALIBRATION[-1][0])


def test_a_knot_table_is_interpolated_and_one_sided_on_request():
    bands = ((3600.0, ((0.0, 0.0), (0.1, 0.3), (0.5, 0.4), (1.0, 1.0))),)
    assert calibrated(0.05, 3600, bands) == pytest.approx(0.15)
    assert calibrated(0.3, 99, bands) == pytest.approx(0.35)
    assert calibrated(0.05, 3600, bands, lift=False) == 0.05
    assert calibrated(0.75, 3600, bands, lift=False) == pytest.approx(0.7)
    assert calibrated(0.42, 3600, ()) == 0.42


def test_the_calibration_lifts_only_where_it_was_fitted():
    """Fitted on X/Twitter-prior forecasts from 10 min on: a forecast younger than that, or
    on a platform with another prior, is only ever lowered."""
    young = [(120, 3), (300, 8)]
    older = [(600, 3), (1200, 8)]
    for polls, source, lifted in [(young, "twitter", False), (older, "reddit", False),
                                  (older, "rss", False), (older, "twitter", True),
                                  (older, "bluesky", True)]:  # fmt: skip
        kw = dict(threshold=500, poster_followers=500, prior=platform_prior(source))
        raw = forecast_from_polls(polls, calibrate=False, **kw).probability
        cal = forecast_from_polls(polls, **kw).probability
        assert (cal > raw) is lifted, (polls, source, raw, cal)
    quiet = forecast_from_polls([], threshold=500, poster_followers=10_000)
    assert (
        quiet.probability
        <= forecast_from_polls(
            [], threshold=500, poster_followers=10_000, calibrate=False
        ).probability
    )


def test_calibration_keeps_the_order_of_forecasts_at_one_age():
    cases = [[(1800, n)] for n in (0, 10, 50, 150, 300, 450)] + [[(600, 20), (1800, 60)]]
    for source in ("twitter", "reddit"):
        kw = dict(threshold=500, poster_followers=500, prior=platform_prior(source))
        raw = [forecast_from_polls(c, calibrate=False, **kw).probability for c in cases]
        cal = [forecast_from_polls(c, **kw).probability for c in cases]
        for i in range(len(cases)):
            for j in range(len(cases)):
                if raw[i] < raw[j]:
                    assert cal[i] <= cal[j]


def _fresh_forecasts(n=400, threshold=500.0, age=3600.0, seed=2024):
    """Forecasts at ``age`` on fresh simulated cascades (not the fit's seed 12 nor the
    report's 13): (calibrated, raw, reached, expected/actual 7-day size or nan)."""
    rng = np.random.default_rng(seed)
    prior = platform_prior("twitter")
    out = []
    for _ in range(n):
        cascade = draw_cascade(rng)
        if age < cascade.poll_interval:
            continue
        seen = cascade_polls(cascade, age)
        if seen[-1][1] >= threshold:
            continue
        kw = dict(threshold=threshold, poster_followers=cascade.poster_followers, prior=prior)
        f = forecast_from_polls(seen, **kw)
        raw = forecast_from_polls(seen, calibrate=False, **kw).probability
        size = cascade.times.size
        ratio = f.expected_final / size if seen[-1][1] >= 5 and not cascade.truncated else math.nan
        out.append((f.probability, raw, float(cascade.count_at(HORIZON) >= threshold), ratio))
    return np.array(out)


@pytest.mark.parametrize("age", [1200.0, 3600.0])
def test_on_fresh_simulated_cascades_calibration_improves_brier_and_the_mean(age):
    """Fresh cascades (seed 2024): calibrated, the Brier score is lower, the mean forecast is
    nearer the observed rate (the raw forecast is underconfident while young), and of the
    forecasts at 0.5 or more, which raise alerts, as many come true (at 20 min: 7 of 8,
    raw 4 of 4; at 1 h: 6 of 12, raw 6 of 13)."""
    rows = _fresh_forecasts(age=age)
    cal, raw, y = rows[:, 0], rows[:, 1], rows[:, 2]
    assert 0 < y.sum() < len(y)
    assert np.mean((cal - y) ** 2) < np.mean((raw - y) ** 2)
    assert abs(cal.mean() - y.mean()) < abs(raw.mean() - y.mean()) + 0.01
    # Alerts (0.5 or more): at least as many that came true, hardly more false ones.
    assert y[cal >= 0.5].sum() >= y[raw >= 0.5].sum()
    assert (1 - y[cal >= 0.5]).sum() <= (1 - y[raw >= 0.5]).sum() + 2


def test_expected_final_does_not_overshoot_at_1_hour_on_simulated_cascades():
    """Median expected/actual 7-day size at 1 h, 5+ engagements seen, within 0.67-1.5 (the
    bench: about 1.3 on 3,000 cascades; the issue's real cascades overshot 2-3x)."""
    ratios = _fresh_forecasts()[:, 3]
    ratios = ratios[~np.isnan(ratios)]
    assert len(ratios) >= 40
    assert 0.67 <= float(np.median(ratios)) <= 1.5


# The SEISMIC example polled every 5 min: expected_final / 15,562 at 1, 2, 4 and 6 h,
# unshrunk and as shipped (later generations' branching damped x0.37, fitted on this
# cascade), from bench/virality_calibration.py. The forecaster projects with n_star = the
# engagers' assumed followers (250), so unshrunk it overshoots 2-6x; before that change
# (n_star 100, damping x0.9) the figures were 1.936/0.735/0.939/1.056 and 0.810/0.617/
# 0.868/1.008.
SEISMIC_UNSHRUNK = {1: 1.873, 2: 3.289, 4: 5.037, 6: 5.659}
SEISMIC_SHIPPED = {1: 0.751, 2: 0.623, 4: 0.877, 6: 1.013}


def _seismic_forecast(cascade, hours, **kw):
    times, followers = cascade
    polls = [(t, bisect_right(times, t) - 1) for t in range(300, hours * 3600 + 1, 300)]
    return forecast_from_polls(
        polls, threshold=10**6, poster_followers=followers[0], prior=platform_prior("x"), **kw
    )


def test_the_size_shrink_improves_the_seismic_example_overall(cascade):
    got = {}
    for hours, shrink in [(h, s) for h in SEISMIC_SHIPPED for s in (False, True)]:
        got[hours, shrink] = _seismic_forecast(cascade, hours, shrink=shrink).expected_final
        got[hours, shrink] /= 15_562
    for hours in SEISMIC_SHIPPED:
        assert got[hours, False] == pytest.approx(SEISMIC_UNSHRUNK[hours], abs=0.002)
        assert got[hours, True] == pytest.approx(SEISMIC_SHIPPED[hours], abs=0.002)

    def error(shrink):
        return sum(abs(math.log(got[h, shrink])) for h in SEISMIC_SHIPPED)

    assert error(True) < error(False)
    assert 0.5 < got[1, True] < 1.5  # no 2-3x overshoot at 1 h


def test_the_seismic_example_is_forecast_consistently(cascade):
    """The branching the forecast reports is measured and projected with the same 250
    followers per engager; SEISMIC's own estimator (n_star 100) is untouched."""
    f = _seismic_forecast(cascade, 1)
    prior = platform_prior("x")
    assert prior.projection_n_star == prior.engager_followers == 250
    assert f.branching > 1  # the example at 1 h, measured in those units, is supercritical
    times, followers = cascade
    est = infectiousness(times, followers, 3600)
    assert est.value == pytest.approx(REFERENCE[3600][0], rel=1e-6)


def test_calibration_lowers_the_seismic_examples_overconfident_top(cascade):
    """On the example (in the calibration's fit), with thresholds of 2,000 to 20,000, raw
    forecasts of 0.5 or more averaged about 0.9 and about half came true; calibrated, fewer
    are at 0.5 or more, their mean is lower and the Brier score too."""
    times, followers = cascade
    prior = platform_prior("x")
    by_day = bisect_right(times, HORIZON) - 1
    raw, cal, hit = [], [], []
    for threshold in (2000, 5000, 10000, 15000, 20000):
        for hours in (1, 2, 4):
            if bisect_right(times, hours * 3600) - 1 >= threshold:
                continue
            polls = [(t, bisect_right(times, t) - 1) for t in range(300, hours * 3600 + 1, 300)]
            kw = dict(threshold=threshold, poster_followers=followers[0], prior=prior)
            raw.append(forecast_from_polls(polls, calibrate=False, **kw).probability)
            cal.append(forecast_from_polls(polls, **kw).probability)
            hit.append(float(by_day >= threshold))
    raw_a, cal_a, hit_a = np.array(raw), np.array(cal), np.array(hit)
    assert (cal_a >= 0.5).sum() <= (raw_a >= 0.5).sum()
    assert np.mean((cal_a - hit_a) ** 2) < np.mean((raw_a - hit_a) ** 2)
    assert cal_a[cal_a >= 0.5].mean() < raw_a[raw_a >= 0.5].mean()


def test_a_quiet_new_post_is_not_likely_to_spread():
    for followers in (100, 1_000, 10_000):
        f = _forecast([], followers=followers)
        assert f.probability < 0.05
        assert f.expected_final < followers * 0.01
    f = _forecast([(1800, 0)], followers=900)
    assert f.probability < 0.01 and f.expected_final < 5
