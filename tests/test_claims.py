"""The claims audit: the paired bootstrap against hand-computed cases, a claim that must hold
and one that must be contradicted on constructed per-image records, the paper's ε crossing."""

import json

import numpy as np
import pytest

from robust_ssl.evaluation.result import write_records
from robust_ssl.report import bootstrap, claims
from robust_ssl.report.claims_output import write_claims
from robust_ssl.runs import grid


def test_an_accuracys_interval_is_the_resampled_means_quantiles():
    # three images, two right: a resampled accuracy is k/3, k ~ Binomial(3, 2/3), whose CDF is
    # 1/27, 7/27, 19/27, 1: its 10% quantile is 1/3 and its 90% quantile is 1
    found = bootstrap.interval([np.array([[True, True, False]])], lambda a: a, level=0.8,
                               draws=20000)
    assert found.estimate == pytest.approx(2 / 3)
    assert (found.low, found.high) == (pytest.approx(1 / 3), 1.0)
    # many images: the normal approximation, 1.96 standard errors either side
    half = np.arange(400) % 2 == 0
    wide = bootstrap.interval([half[None]], lambda a: a)
    assert wide.high - wide.low == pytest.approx(2 * 1.96 * 0.025, rel=0.1)


def test_paired_differences_of_the_same_images_have_no_spread():
    right = (np.arange(50) % 3 == 0)[None]
    same = bootstrap.interval([right, right], lambda a, b: a - b)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    shifted = bootstrap.interval([np.ones((1, 50), bool), right], lambda a, b: a - b)
    assert shifted.low > 0 and bootstrap.verdict(shifted) == "holds"
    assert bootstrap.verdict(bootstrap.Interval(-0.1, -0.2, -0.05, 0.95)) == "contradicted"
    assert bootstrap.verdict(bootstrap.Interval(0.0, -0.1, 0.1, 0.95)) == "inconclusive"


def write_tables(results, pretrained_right: float, supervised_right: float, images: int = 300,
                 seeds=(0,), shares=None):
    """Records for every Table 1 and 2 cell: pretrained cells survive FGSM/PGD on about
    `pretrained_right` of the images, the supervised baseline on its share (`shares`: seed ->
    (pretrained, supervised), for seeds that differ)."""
    rng = np.random.default_rng(0)
    cells = [c for c in grid.table1("cifar100", seeds) + grid.table2("cifar100", seeds)
             if c.evaluated]
    for cell in cells:
        pretrained, supervised = (shares or {}).get(cell.seed, (pretrained_right,
                                                                supervised_right))
        share = supervised if cell.row == "supervised" else pretrained
        right = rng.random(images) < share
        every = np.ones(images, bool)
        records = {"clean": (every, every), "fgsm@8/255": (every, right),
                   "pgd@8/255": (every, right & (rng.random(images) < 0.9))}
        (results / f"{cell.name}.json").write_text(json.dumps({"run": cell.name}))
        write_records(results / f"{cell.name}.json", records, np.arange(images) + 7)
    return cells


def verdict(found, claim, setting="fgsm@8/255"):
    return next(v for v in found["verdicts"] if v["claim"] == claim and v["setting"] == setting)


def test_a_claim_that_must_hold_and_one_that_must_be_contradicted(tmp_path):
    write_tables(tmp_path, pretrained_right=0.6, supervised_right=0.2)
    found = claims.audit(tmp_path, "cifar100", (0,))
    assert verdict(found, "C1")["verdict"] == "holds"
    assert verdict(found, "C2")["verdict"] == "holds"
    c1 = verdict(found, "C1")
    assert c1["level"] == pytest.approx(1 - 0.05 / 4)  # Bonferroni over its four fractions
    assert all(c["images"] == 300 for c in c1["comparisons"])
    assert verdict(found, "C3")["verdict"] == "holds"  # 60% is above "about 38%"
    assert verdict(found, "C7")["verdict"] == "missing"  # no training minutes on record

    write_tables(tmp_path, pretrained_right=0.2, supervised_right=0.6)
    found = claims.audit(tmp_path, "cifar100", (0,))
    assert verdict(found, "C1")["verdict"] == "contradicted"
    assert verdict(found, "C3")["verdict"] == "contradicted"  # 20% is far below 33%
    # equal shares of independent draws: C4's differences straddle zero
    assert verdict(found, "C4")["verdict"] == "inconclusive"
    worst = verdict(found, "C1", "worst@8/255")
    assert worst["convention"] == "pixel" and worst["verdict"] == "contradicted"


def test_the_report_names_missing_cells_and_writes_its_files(tmp_path):
    cells = write_tables(tmp_path, 0.5, 0.5)
    (tmp_path / f"{cells[0].name}.json").unlink()
    unread = next(c for c in cells if (c.row, c.column) == ("rotation", "linear"))
    (tmp_path / f"{unread.name}.json").unlink()  # no claim compares Table 2's linear probes
    text = write_claims(tmp_path, "smoke", "cifar100", (0,))
    assert f"{cells[0].name} (not run)" in text and unread.name not in text
    for name in ("claims.md", "claims.json", "claims.csv", "claims.png"):
        assert (tmp_path / name).stat().st_size > 100
    found = json.loads((tmp_path / "claims.json").read_text())
    assert {v["claim"] for v in found["verdicts"]} == {c.id for c in claims.CLAIMS}


def test_the_report_says_which_images_the_normalised_pgd_attacked(tmp_path):
    cells = write_tables(tmp_path, 0.5, 0.5)
    for cell, pgd_on in zip(cells[:2], ("survivors", None)):
        path = tmp_path / f"{cell.name}.json"
        every = np.ones(300, bool)
        write_records(path, {"clean": (every, every), "fgsm@8/255": (every, every),
                             "pgd@8/255": (every, every), "pgd-norm@8/255": (every, every)},
                      np.arange(300) + 7)
        evaluator = {} if pgd_on is None else {"normalized_pgd_on": pgd_on}  # None: before it
        path.write_text(json.dumps({"run": cell.name, "metrics": {}, "config": {"evaluator": evaluator}}))
    text = write_claims(tmp_path, "smoke", "cifar100", (0,))
    assert json.loads((tmp_path / "claims.json").read_text())["normalized_pgd_on"] == [
        "all", "survivors"]
    assert "attacked only the images that clean and the normalised FGSM left right" in text
    assert "attacked different images: run the tables again with RESTART=1" in text


def test_a_multi_seed_audit_shows_the_verdicts_one_seed_alone_reads_differently(tmp_path):
    # seed 0's pretrained cells beat the baseline, seed 1's lose to it: together, no verdict
    write_tables(tmp_path, 0, 0, seeds=(0, 1), shares={0: (0.6, 0.2), 1: (0.2, 0.6)})
    text = write_claims(tmp_path, "smoke", "cifar100", (0, 1))
    found = json.loads((tmp_path / "claims.json").read_text())
    c1 = verdict(found, "C1")
    assert (c1["verdict"], c1["each_seed"]) == ("inconclusive",
                                                {"0": "holds", "1": "contradicted"})
    # each seed's column is exactly that seed's own audit
    for seed in (0, 1):
        alone = claims.audit(tmp_path, "cifar100", (seed,))
        assert all("each_seed" not in v for v in alone["verdicts"])
        assert [v["each_seed"][str(seed)] for v in found["verdicts"]] == [
            v["verdict"] for v in alone["verdicts"]]
    section = text.split("## Each seed alone")[1].split("##")[0]
    assert "| C1 | pixel: FGSM @ 8/255 | all test images | inconclusive | holds | contradicted |" \
        in section
    same = sum(set(v["each_seed"].values()) == {v["verdict"]} for v in found["verdicts"])
    assert f"{same} of {len(found['verdicts'])} verdicts" in section
    header = (tmp_path / "claims.csv").read_text().splitlines()[0]
    assert header.endswith("verdict,seed 0 alone,seed 1 alone")


def test_a_one_seed_audit_has_no_seed_section(tmp_path):
    write_tables(tmp_path, 0.6, 0.2)
    assert "Each seed alone" not in write_claims(tmp_path, "smoke", "cifar100", (0,))


def test_the_paper_number_is_placed_on_the_eps_axis():
    curve = [(0.0, 0.8), (2 / 255, 0.6), (4 / 255, 0.4), (8 / 255, 0.1)]
    assert claims.crossing(curve, 0.5) == pytest.approx(3 / 255)
    assert claims.crossing(curve, 0.9) is None  # above clean accuracy: no ε gets there
