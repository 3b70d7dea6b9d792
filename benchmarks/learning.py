"""Does each reward variant learn what the paper says it should? A small fixed budget per variant vs Tit-for-Tat.

Trains the embedded default model (quick-start settings, ``configs/quickstart.yaml``) once per variant and prints
the final training-time cooperation and illegal rates (mean of the last ``--tail`` episodes) next to the paper's
qualitative expectation (paper §4: selfish Game reward -> defection against TFT; Deontological and
Utilitarian -> cooperation; Game+Deontological -> reciprocity, i.e. cooperate after C and defect after D; the
"Game, then moral" schedules unlearn defection after the switch). Writes JSON.

    python benchmarks/learning.py --episodes 12 --out learning.json
    python benchmarks/learning.py --variants game deontological --episodes 6
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {
    "game": ("defect", "selfish payoff: defecting against TFT pays 4 then 1, so the agent learns to defect"),
    "deontological": ("cooperate", "penalty for defecting after the opponent cooperated: cooperation costs nothing"),
    "utilitarian": ("cooperate", "mutual cooperation (3+3) maximises the collective payoff against TFT"),
    "game_deontological": (
        "reciprocate",
        "after C, cooperating (3) beats defecting (4 - 3 = 1); after D, defecting (1) beats cooperating (0)",
    ),
    "game_then_deontological": ("cooperate", "defection learned first, unlearned after the switch"),
    "game_then_utilitarian": ("cooperate", "defection learned first, unlearned after the switch"),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(EXPECTED), choices=list(EXPECTED))
    parser.add_argument("--episodes", type=int, default=12, help="PPO updates per variant")
    parser.add_argument("--tail", type=int, default=3, help="final episodes averaged")
    parser.add_argument("--num_envs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--config", default=str(REPO / "configs" / "quickstart.yaml"))
    parser.add_argument("--out", default="learning.json")
    args = parser.parse_args(argv)

    from moralgym.training.cli import parse_config, run
    from moralgym.training.tracking import read_metrics

    results = {}
    for variant in args.variants:
        with tempfile.TemporaryDirectory() as output_dir:
            overrides = [
                "--config",
                args.config,
                "--output_dir",
                output_dir,
                "--reward",
                variant,
                "--num_episodes",
                str(args.episodes),
                "--num_envs",
                str(args.num_envs),
                "--switch_episode",
                str(args.episodes // 2),
                "--evaluate",
                "false",
                "--plot",
                "false",
                "--progress_bar",
                "false",
                "--save_every",
                "0",
            ]
            if args.threads:
                overrides += ["--torch_num_threads", str(args.threads)]
            started = time.perf_counter()
            run(parse_config(overrides))
            records = read_metrics(output_dir)
        tail = records[-args.tail :]
        cooperation = sum(r["env/cooperation_rate"] for r in tail) / len(tail)
        illegal = sum(r["env/illegal_rate"] for r in tail) / len(tail)
        counts = {label: sum(r[f"env/count_{label}"] for r in tail) for label in ("C|C", "D|C", "C|D", "D|D")}
        after_c = counts["C|C"] / max(1, counts["C|C"] + counts["D|C"])  # P(C | opponent played C)
        after_d = counts["D|D"] / max(1, counts["C|D"] + counts["D|D"])  # P(D | opponent played D)
        expected, why = EXPECTED[variant]
        if expected == "reciprocate":
            observed = "reciprocate" if after_c >= 0.5 and after_d >= 0.5 else "other"
        else:
            observed = "cooperate" if cooperation >= 0.5 else "defect"
        results[variant] = {
            "final_cooperation_rate": round(cooperation, 3),
            "final_illegal_rate": round(illegal, 3),
            "first_cooperation_rate": round(records[0]["env/cooperation_rate"], 3),
            "cooperate_after_cooperation": round(after_c, 3),
            "defect_after_defection": round(after_d, 3),
            "cooperation_by_episode": [round(r["env/cooperation_rate"], 3) for r in records],
            "expected": expected,
            "matches_expectation": observed == expected and illegal < 0.5,
            "why": why,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(
            f"{variant:<26} cooperation {cooperation:5.2f} (start {results[variant]['first_cooperation_rate']:.2f}, "
            f"C|C {after_c:.2f}, D|D {after_d:.2f}), "
            f"illegal {illegal:4.2f}, expected: {expected:<11} -> {'OK' if results[variant]['matches_expectation'] else 'DIFFERS'}"
            f"  [{results[variant]['seconds']} s]",
            flush=True,
        )
    summary = {"episodes": args.episodes, "num_envs": args.num_envs, "opponent": "tit_for_tat", "results": results}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
