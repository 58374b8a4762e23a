"""`make claims`: the audit of report/claims.py as claims.md (verdicts, then the intervals they
rest on, then where the paper's FGSM numbers sit on this suite's ε axis), claims.json (all of
it), claims.csv (one row per claim and setting, for W&B) and claims.png (claims × ε, one mark per
verdict, a panel per ε convention)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from robust_ssl.evaluation.result import eps_value, parse_key
from robust_ssl.plumbing.files import write_text_atomically
from robust_ssl.report.claims import CLAIMS, audit

MARKS = {"holds": ("o", "tab:green"), "contradicted": ("X", "tab:red"),
         "inconclusive": ("o", "lightgrey"), "missing": ("s", "white")}
ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD-20", "worst": "worst case", "autoattack": "AutoAttack"}


NORMALIZED_PGD = {
    "survivors": "Normalised PGD-20 attacked only the images that clean and the normalised FGSM "
                 "left right (AutoAttack's order; `normalized_pgd_on: survivors`): its accuracy "
                 "is the per-image worst case of the three, so its column and the normalised "
                 "worst case's read the same records.",
    "all": "Normalised PGD-20 attacked every test image (`normalized_pgd_on: all`): PGD alone."}


def setting_name(setting: str) -> str:
    attack, budget = parse_key(setting)
    return f"{ATTACK_NAMES.get(attack.removesuffix('-norm'), attack)} @ {budget}"


def pct(value: float) -> str:
    return f"{100 * value:+.1f}"


def markdown(found: dict, profile: str) -> str:
    lines = [f"# The paper's claims, audited: profile `{profile}`, seeds "
             f"{', '.join(map(str, found['seeds']))}", ""]
    if found["missing"]:
        lines += ["Cells missing (their comparisons read `missing`): "
                  + "; ".join(found["missing"]), ""]
    lines += ["| claim | " + " | ".join(f"{v['convention']}: {setting_name(v['setting'])}"
                                         for v in found["verdicts"] if v["claim"] == "C1") + " |"]
    lines += ["| --- " * (1 + sum(v["claim"] == "C1" for v in found["verdicts"])) + "|"]
    for claim in CLAIMS:
        row = [v["verdict"] for v in found["verdicts"] if v["claim"] == claim.id]
        lines.append(f"| {claim.id} | " + " | ".join(row) + " |")
    lines += ["", "Claims:"] + [f"- **{c.id}**: {c.text}" for c in CLAIMS]
    lines += each_seed(found)
    lines += [""] + [NORMALIZED_PGD[on] for on in found["normalized_pgd_on"]]
    if len(found["normalized_pgd_on"]) > 1:
        lines.append("The cells' normalised PGD-20 attacked different images: run the tables "
                     "again with RESTART=1, which evaluates every cell the same way.")
    b = found["bootstrap"]
    lines += ["", f"Verdicts: holds = every comparison's interval entirely in the claimed "
              f"direction, contradicted = one entirely against, else inconclusive. Intervals: "
              f"paired bootstrap over test images ({b['draws']} draws; seeds resampled per "
              f"cell), at 1 - {b['family_error']}/k for a claim of k comparisons (Bonferroni "
              "within a claim; nothing corrected across claims, attacks or ε). Differences in "
              "accuracy points (C7: accuracy per training minute). To decide (inconclusive "
              "comparisons, report/power.py): the test images at the seeds it has, or the "
              "seeds at the images it has, at which its interval would leave the threshold if "
              "the effect and spread measured held (a normal approximation; a planning figure, "
              "not a promise).", "",
              "## The intervals (at the table's ε)", "",
              "| claim | setting | comparison | estimate | interval | verdict | to decide |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for v in found["verdicts"]:
        if v["images"] == "sweep subset":
            continue
        for c in v["comparisons"]:
            against = " − " + ", ".join(c["worse"]) if c["worse"] else ""
            span = (f"[{pct(c['low'])}, {pct(c['high'])}]" if "low" in c else "")
            estimate = pct(c["estimate"]) if "estimate" in c else ""
            lines.append(f"| {v['claim']} | {v['convention']}: {setting_name(v['setting'])} | "
                         f"{c['better']}{against} > {100 * c['threshold']:.0f} | {estimate} | "
                         f"{span} | {c['verdict']} | {c.get('to_decide', {}).get('text', '')} |")
    eps = found["paper_eps"]
    lines += ["", "## Where the paper's FGSM numbers sit", "",
              "The pixel ε at which this suite's FGSM accuracy (sweep subset, linear between the "
              "swept ε) equals the paper's number; a normalised-space 8/255 is a pixel budget of "
              + ", ".join(f"{255 * e:.2f}/255" for e in eps["normalized_8_255_in_pixels"])
              + " (R, G, B).", "", "| cell | paper FGSM % | pixel ε |", "| --- | --- | --- |"]
    for cell, entry in eps["cells"].items():
        at = entry["eps_pixel"]
        lines.append(f"| {cell} | {entry['paper_fgsm']} | "
                     + (f"{255 * at:.2f}/255 |" if at is not None else "not crossed |"))
    if eps["spread"]:
        low, high = eps["spread"]
        lines += ["", f"Spread of those ε across cells: {255 * low:.2f}/255 to {255 * high:.2f}/255"
                  " (one ε would explain the whole table if the spread were within the sweep's "
                  "resolution)."]
    return "\n".join(lines) + "\n"


def each_seed(found: dict) -> list[str]:
    """With several seeds: the verdicts that some seed's cells alone read differently from all
    seeds together (a one-seed audit of that seed would have given them)."""
    judged = [v for v in found["verdicts"] if "each_seed" in v]
    if not judged:
        return []
    seeds = list(judged[0]["each_seed"])
    order = [c.id for c in CLAIMS]
    differing = sorted((v for v in judged if set(v["each_seed"].values()) != {v["verdict"]}),
                       key=lambda v: order.index(v["claim"]))
    lines = ["", "## Each seed alone", "",
             f"The same audit on each seed's cells alone: {len(judged) - len(differing)} of "
             f"{len(judged)} verdicts (claim × setting, the sweep's ε included) read the same "
             f"from every seed alone as from seeds {', '.join(seeds)} together"
             + (": every one." if not differing else "; these do not:")]
    if differing:
        lines += ["", "| claim | setting | images | all seeds | "
                  + " | ".join(f"seed {s} alone" for s in seeds) + " |",
                  "| --- " * (4 + len(seeds)) + "|"]
        lines += [f"| {v['claim']} | {v['convention']}: {setting_name(v['setting'])} | "
                  f"{v['images']} | {v['verdict']} | " + " | ".join(v["each_seed"].values())
                  + " |" for v in differing]
    return lines


def write_csv(path: Path, found: dict) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        seeds = list(found["verdicts"][0].get("each_seed", {})) if found["verdicts"] else []
        writer.writerow(["claim", "convention", "setting", "images", "verdict"]
                        + [f"seed {seed} alone" for seed in seeds])
        for v in found["verdicts"]:
            writer.writerow([v["claim"], v["convention"], v["setting"], v["images"],
                             v["verdict"], *v.get("each_seed", {}).values()])


def chart(path: Path, found: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conventions = sorted({v["convention"] for v in found["verdicts"]}, reverse=True) or ["pixel"]
    figure, axes = plt.subplots(1, len(conventions), figsize=(6 * len(conventions), 4),
                                squeeze=False)
    attacks = list(ATTACK_NAMES)
    for axis, convention in zip(axes[0], conventions):
        for v in found["verdicts"]:
            if v["convention"] != convention:
                continue
            attack, budget = parse_key(v["setting"])
            offset = attacks.index(attack.removesuffix("-norm")) - 1.5
            x = 255 * eps_value(budget) * (1 + 0.04 * offset)
            y = [c.id for c in CLAIMS].index(v["claim"])
            marker, colour = MARKS[v["verdict"]]
            axis.scatter(x, y, marker=marker, c=colour, edgecolors="black", linewidths=0.5)
        axis.set_xscale("log")
        axis.set_yticks(range(len(CLAIMS)), [c.id for c in CLAIMS])
        axis.invert_yaxis()
        axis.set_xlabel("ε (×1/255); marks left to right: " + ", ".join(ATTACK_NAMES.values()))
        axis.set_title(f"ε in the {convention} convention")
    handles = [plt.Line2D([], [], marker=m, color=c, markeredgecolor="black", linestyle="")
               for m, c in MARKS.values()]
    figure.legend(handles, list(MARKS), loc="lower center", ncol=len(MARKS))
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_claims(results: Path, profile: str, pretrain: str, seeds: tuple[int, ...]) -> str:
    found = audit(results, pretrain, seeds)
    text = markdown(found, profile)
    write_text_atomically(results / "claims.md", text)
    write_text_atomically(results / "claims.json", json.dumps(found, indent=2) + "\n")
    write_csv(results / "claims.csv", found)
    chart(results / "claims.png", found)
    return text
