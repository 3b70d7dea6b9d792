"""Classical baselines under the paper's evaluation protocol, and Q-learning training speed.

Run: ``python benchmarks/baselines.py [--steps 200000] [--out benchmarks/results]``.

1. Evaluates fixed strategies and tabular Q-learners trained (vs Tit-for-Tat on the IPD, discount 0.95, seed 0;
   plus a myopic Game learner, discount 0)
   with each moral reward on all five games vs a Random opponent (10 episodes x 5 rounds, seed 100), prints the
   summary and writes ``baselines_summary.json``.
2. Times Q-learning training (transitions per second) on the native vector env and on the plain-numpy loop that
   implements the same rules without an environment, in the same run, and writes ``baselines_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import moralgym  # noqa: F401
from moralgym.agents.baselines import train_q_learning
from moralgym.evaluation import evaluate
from moralgym.evaluation.cli import console_summary

STRATEGIES = ("always_cooperate", "always_defect", "random", "tit_for_tat", "grim_trigger", "win_stay_lose_shift")
REWARDS = ("game", "deontological", "utilitarian", "game_deontological")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="transitions per timed training run")
    parser.add_argument("--num-envs", type=int, default=256, help="parallel games in the timed runs")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per backend (best is kept)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    agents: list = list(STRATEGIES)
    for reward in REWARDS:
        agents.append(train_q_learning(reward=reward, discount=0.95, total_steps=50_000, seed=0).agent())
    # The myopic selfish learner (discount 0) defects: the contrast the patient one (0.95) does not show vs TFT.
    agents.append(
        train_q_learning(reward="game", discount=0.0, total_steps=50_000, seed=0).agent(name="q_learning:game:g0")
    )
    summary = []
    for agent in agents:
        summary += evaluate(agent).summary
    print(console_summary(summary))
    (out / "baselines_summary.json").write_text(json.dumps(summary, indent=1))

    speed = {}
    for backend in ("vector", "numpy"):
        best = 0.0
        for repeat in range(args.repeats):
            started = time.perf_counter()
            result = train_q_learning(
                reward="game",
                backend=backend,
                total_steps=args.steps,
                num_envs=args.num_envs,
                seed=repeat,
                log_every=args.steps,
            )
            best = max(best, args.steps / (time.perf_counter() - started))
            del result
        speed[backend] = best
    record = {
        "transitions": args.steps,
        "num_envs": args.num_envs,
        "vector_env_steps_per_s": round(speed["vector"]),
        "plain_numpy_steps_per_s": round(speed["numpy"]),
        "vector_over_numpy": round(speed["vector"] / speed["numpy"], 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(record, indent=1))
    (out / "baselines_speed.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
