"""The lesson's summary (lesson.json): means and paired changes over seeds, and the verdict in words."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Iterable

import numpy as np

from latentlab.runs import folder as runs
from latentlab.sweeps.lesson_design import Design, LessonError
from latentlab.tradeoff import COLLAPSE_KL_NATS

SUMMARY_FILE = "lesson.json"
SPLIT_KEYS = ("mutual_info", "marginal_kl", "rate_split_se", "mutual_info_bound", "hole_fraction")


def _spread(values: Iterable[float]) -> float:
    """Half the range of a figure over the seeds (0 with one seed)."""
    v = np.asarray(values, np.float64)
    return float((v.max() - v.min()) / 2) if v.size > 1 else 0.0


def _paired(by: dict, seeds: Iterable[int], lo: float, hi: float) -> tuple[list, list]:
    """Per seed that has both: the change of rate and of distortion from β ``lo`` to β ``hi``."""
    both = [s for s in seeds if (s, lo) in by and (s, hi) in by]
    return ([by[(s, hi)]["rate"] - by[(s, lo)]["rate"] for s in both],
            [by[(s, hi)]["distortion"] - by[(s, lo)]["distortion"] for s in both])


def summarise(results: list[dict], design: Design, seconds: float, extra: dict | None = None) -> dict:
    """The lesson's summary from one result per (seed, β) run: ``{"beta", "seed", "rate", "distortion",
    "active_units", "run_dir", "last_epoch": {...}}``. One object per β in ``runs``: means over seeds, with
    several seeds ``spread`` (half the range over seeds) and ``vs_first`` (the paired change from the smallest
    β: mean and half the range over seeds); ``steps``: the paired changes between neighbouring β; and the
    verdict in words. Seeds differ in validation images and start, so paired changes are what they agree on."""
    betas = sorted({r["beta"] for r in results})
    seeds = sorted({r["seed"] for r in results})
    multi = len(seeds) > 1
    by = {(r["seed"], r["beta"]): r for r in results}
    out_runs = []
    for b in betas:
        rows = [by[(s, b)] for s in seeds if (s, b) in by]
        rate = [r["rate"] for r in rows]
        dist = [r["distortion"] for r in rows]
        entry = {"beta": b, "rate": float(np.mean(rate)), "distortion": float(np.mean(dist)),
                 "neg_elbo": float(np.mean(rate) + np.mean(dist)),
                 "code_spread": float(np.mean([r.get("code_spread", math.nan) for r in rows])),
                 "active_units": int(min(r["active_units"] for r in rows)),
                 "collapsed": bool(any(r["active_units"] == 0 or r["rate"] < COLLAPSE_KL_NATS for r in rows)),
                 "run_dirs": [r["run_dir"] for r in rows], "seeds": [r["seed"] for r in rows],
                 "per_seed": [{k: r[k] for k in ("seed", "rate", "distortion", "active_units", "last_epoch")}
                              for r in rows]}
        if all("marginal_kl" in r for r in rows):
            # ELBO surgery: the rate = I(x; z) + KL(q(z) ‖ p(z)), means over seeds (latentlab.surgery)
            entry.update({k: float(np.mean([r[k] for r in rows])) for k in SPLIT_KEYS})
            for r, p in zip(rows, entry["per_seed"]):
                p.update({k: r[k] for k in ("mutual_info", "marginal_kl")})
        if rows and rows[0].get("sample_quality"):
            entry["sample_quality"] = rows[0]["sample_quality"]
        if rows and rows[0].get("prior_samples"):
            entry["prior_samples"] = rows[0]["prior_samples"]
            entry["prior_in_hole"] = rows[0]["prior_in_hole"]
        if multi:
            entry["spread"] = {"rate": _spread(rate), "distortion": _spread(dist)}
            d_rate, d_dist = _paired(by, seeds, betas[0], b)
            entry["vs_first"] = {"rate": float(np.mean(d_rate)), "rate_spread": _spread(d_rate),
                                 "distortion": float(np.mean(d_dist)), "distortion_spread": _spread(d_dist)}
        out_runs.append(entry)
    steps = []
    for lo, hi in itertools.pairwise(betas):
        d_rate, d_dist = _paired(by, seeds, lo, hi)
        if not d_rate:
            continue
        steps.append({"from": lo, "to": hi, "rate_change": float(np.mean(d_rate)),
                      "distortion_change": float(np.mean(d_dist)),
                      "rate_spread": _spread(d_rate), "distortion_spread": _spread(d_dist),
                      # the sign held in every seed and the mean is larger than the seeds' spread
                      "rate_clear": bool(all(v < 0 for v in d_rate) and -np.mean(d_rate) > _spread(d_rate)),
                      "distortion_clear": bool(all(v > 0 for v in d_dist) and np.mean(d_dist) > _spread(d_dist))})
    rates = [r["rate"] for r in out_runs]
    dists = [r["distortion"] for r in out_runs]
    mismatch = [r["marginal_kl"] for r in out_runs if "marginal_kl" in r]
    summary = {"seconds": float(seconds), "design": design.to_dict(), "seeds": seeds, "runs": out_runs,
               "steps": steps,
               "rate_falls": bool(len(rates) > 1 and all(a > b for a, b in itertools.pairwise(rates))),
               "distortion_rises": bool(len(dists) > 1 and all(a < b for a, b in itertools.pairwise(dists))),
               "marginal_kl_falls": bool(len(mismatch) == len(out_runs) > 1
                                         and all(a > b for a, b in itertools.pairwise(mismatch))),
               "prior_samples": [{"beta": r["beta"], "png": r["prior_samples"],
                                  "in_hole": int(sum(r["prior_in_hole"]))} for r in out_runs if "prior_samples" in r],
               **(extra or {})}
    summary["verdict"] = verdict_lines(summary)
    return summary


def _n(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"

def _places(x: float) -> int:
    """Decimals that keep a small difference readable: +0.4 ± 0.03, not ± 0.0."""
    return 1 if abs(x) >= 0.1 or x == 0 else 2


def verdict_lines(summary: dict) -> list[str]:
    """What the lesson found, in plain words: the headline, one line per β, and what to read from them."""
    runs_ = summary["runs"]
    if not runs_:
        return ["No run finished, so there is nothing to compare yet."]
    first, last = runs_[0], runs_[-1]
    multi = len(summary.get("seeds", [])) > 1
    lines = []
    if len(runs_) > 1:
        rate_word = "fell at every step" if summary["rate_falls"] else "did not fall at every step"
        dist_word = "rose at every step" if summary["distortion_rises"] else "did not rise at every step"
        lines.append(f"Raising β from {first['beta']:g} to {last['beta']:g} cut the rate from {_n(first['rate'])} to "
                     f"{_n(last['rate'])} nats (the code keeps less about each image) and changed the distortion by "
                     f"{last['distortion'] - first['distortion']:+.1f} nats (worse reconstructions): the rate "
                     f"{rate_word} and the distortion {dist_word}.")
    for r in runs_:
        text = f"β {r['beta']:g}: rate {_n(r['rate'])} nats, distortion "
        seeds = f"over {len(r['seeds'])} seeds"
        if r is first:
            text += f"{_n(r['distortion'])} nats"
            if multi:
                text += (f" (± {_n(r['spread']['distortion'])} {seeds}, which differ in validation images and "
                         f"start)")
        elif multi:
            v = r["vs_first"]
            d, spread = v["distortion"], v["distortion_spread"]
            text += f"{d:+.{_places(d)}f} ± {spread:.{_places(spread)}f} nats vs β {first['beta']:g} ({seeds})"
        else:
            text += f"{r['distortion'] - first['distortion']:+.1f} nats vs β {first['beta']:g}"
        text += f"; {r['active_units']} active unit{'s' if r['active_units'] != 1 else ''}"
        if r["collapsed"] and first["collapsed"]:
            # collapsed at the smallest β too: not β's doing but the start's (a seed's start can collapse)
            text += (" (a seed's run collapsed" + (": its shared start carried nothing already, at the smallest β; "
                     "another --seed or more images usually avoids that" if r is first else "") + ")")
        elif r["collapsed"]:
            text += (" — posterior collapse: the code carries nothing and the decoder draws the average image. "
                     "That is the other half of the lesson: too large a β switches the latent space off")
        lines.append(text + ".")
    spreads = [r["code_spread"] for r in (first, last) if math.isfinite(r.get("code_spread", math.nan))]
    if len(runs_) > 1 and len(spreads) == 2:
        lines.append(f"The codes of the validation images spread over ±{spreads[0]:.2f} at β {first['beta']:g} "
                     f"and ±{spreads[1]:.2f} at β {last['beta']:g} (standard deviation of z; the prior's is 1): a "
                     f"larger β pulls them towards the prior, and the latent maps shrink.")
    if multi:
        weak = [s for s in summary["steps"] if not (s["rate_clear"] and s["distortion_clear"])]
        if weak:
            names = ", ".join(f"β {s['from']:g} → {s['to']:g} (distortion {s['distortion_change']:+.2f} ± "
                              f"{s['distortion_spread']:.2f})" for s in weak)
            lines.append(f"Below the seed spread (not a measured difference): {names}.")
        else:
            lines.append("Every step between neighbouring β is larger than the spread over the seeds, with the same "
                         "sign in each seed.")
    return lines + _split_lines(summary)


def _split_lines(summary: dict) -> list[str]:
    """The lesson's other half in words: what the rate buys (ELBO surgery, latentlab.surgery)."""
    runs_ = [r for r in summary["runs"] if "marginal_kl" in r]
    if not runs_:
        return []
    lines = ["What the rate buys: each β's rate splits into what the code says about its image, I(x; z), and codes "
             "the prior never draws, KL(q(z) ‖ p(z)) — where a sample from the prior decodes to nothing like the "
             "data."]
    for r in runs_:
        bound = r.get("mutual_info_bound", math.nan)
        near = (f", near its ceiling log N = {bound:.1f} for {round(math.exp(bound))} validation images"
                if math.isfinite(bound) and r["mutual_info"] > 0.9 * bound else "")
        holes = r.get("hole_fraction", math.nan)
        hole_text = f"; {holes:.0%} of the prior's mass lies in holes" if math.isfinite(holes) else ""
        lines.append(f"β {r['beta']:g}: of {_n(r['rate'])} nats, {_n(r['marginal_kl'])} are codes the prior never "
                     f"draws and {_n(r['mutual_info'])} say which image it is{near}{hole_text}.")
    quality = [r for r in summary["runs"] if "sample_quality" in r]
    if len(quality) > 1:
        cov = ", ".join(f"{r['sample_quality']['coverage']:.2f}" for r in quality)
        betas = ", ".join(f"{r['beta']:g}" for r in quality)
        lines.append(f"Prior samples against the validation images, in the codes of the β {quality[0]['beta']:g} "
                     f"encoder: coverage (the share of images with a sample near them) {cov} at β {betas}.")
    if len(runs_) > 1:
        word = ("fell at every step" if summary.get("marginal_kl_falls") else "did not fall at every step")
        lines.append(f"The mismatch with the prior {word} as β rose ({_n(runs_[0]['marginal_kl'])} → "
                     f"{_n(runs_[-1]['marginal_kl'])} nats): that is what a larger β buys — prior samples that "
                     f"look like the data — for the reconstructions it costs.")
    return lines


def write_summary(path: str | Path, summary: dict) -> None:
    import json

    runs.atomic_write_text(path, json.dumps(summary, indent=2, allow_nan=True) + "\n")


def read_summary(path: str | Path) -> dict:
    """A lesson.json (the folder holding it, or the file itself); LessonError with one line otherwise."""
    import json

    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LessonError(f"{path}: not a lesson summary ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise LessonError(f"{path}: not a lesson summary (no runs)")
    return data
