"""Environment throughput, as ratios against references measured in the same run.

Prints agent-steps per second (one agent choosing one action = one agent-step) for:
- PettingZoo's own ``rps`` parallel env (classic/rps-v2): the reference for our parallel env;
- our ``MatrixGameEnv`` (PettingZoo parallel API, one game);
- our ``MatrixGameVectorEnv`` at 4096 games (learner + Tit-for-Tat opponent = 2 agent-steps per game-step);
- a plain-numpy batched IPD loop at 4096 games (TFT move, both payoffs, next observations; no env API): the ceiling.

Usage: ``python benchmarks/env_throughput.py [--games 4096] [--seconds 2] [--json benchmarks/results/env_throughput.json]``
The vector env and the numpy ceiling are pinned to one thread (OMP/MKL/OPENBLAS_NUM_THREADS=1 before numpy loads).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pettingzoo  # noqa: E402

import moralgym  # noqa: E402, F401 - registers the envs
from moralgym.envs import MatrixGameEnv  # noqa: E402
from moralgym.envs.vector import MatrixGameVectorEnv  # noqa: E402


def timed(run_for: float, step: Callable[[], int]) -> float:
    """Call ``step`` (returns agent-steps done) until ``run_for`` seconds pass; return agent-steps per second."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < run_for:
        done += step()
    return done / elapsed


def parallel_env_rate(env, seconds: float) -> float:
    rng = np.random.default_rng(0)
    actions_pool = rng.integers(0, 2, size=(1024, 2))
    counter = {"i": 0}
    env.reset(seed=0)

    def step() -> int:
        if not env.agents:
            env.reset()
        a = actions_pool[counter["i"] % 1024]
        counter["i"] += 1
        env.step({agent: int(a[k]) for k, agent in enumerate(env.agents)})
        return 2

    return timed(seconds, step)


def vector_env_rate(num_games: int, seconds: float) -> float:
    env = MatrixGameVectorEnv(num_games, "ipd", opponent="tit_for_tat", reward="deontological")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_games))
    counter = {"i": 0}

    def step() -> int:
        env.step(actions[counter["i"] % 64])
        counter["i"] += 1
        return 2 * num_games

    return timed(seconds, step)


def numpy_ceiling_rate(num_games: int, seconds: float) -> float:
    payoffs = np.array([[(3, 3), (0, 4)], [(4, 0), (1, 1)]], dtype=np.float64)
    payoff_0, payoff_1 = payoffs[..., 0].ravel(), payoffs[..., 1].ravel()
    previous_learner = np.zeros(num_games, dtype=np.int64)
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_games))
    counter = {"i": 0}

    def step() -> int:
        # What a hand-written RL loop needs per step: opponent move, both payoffs, next observations.
        nonlocal previous_learner
        learner = actions[counter["i"] % 64]
        opponent = previous_learner  # Tit-for-Tat
        joint = learner * 2 + opponent
        _rewards = (np.take(payoff_0, joint), np.take(payoff_1, joint))
        _observations = np.stack([learner, opponent], axis=1)
        previous_learner = learner
        counter["i"] += 1
        return 2 * num_games

    return timed(seconds, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", default="benchmarks/results/env_throughput.json")
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rps = pettingzoo.make("parallel", "classic/rps-v2", max_cycles=10**9)
    results = {
        "pettingzoo_rps_parallel": parallel_env_rate(rps, args.seconds),
        "moralgym_parallel": parallel_env_rate(MatrixGameEnv("ipd", num_rounds=5), args.seconds),
        "moralgym_vector": vector_env_rate(args.games, args.seconds),
        "numpy_ceiling": numpy_ceiling_rate(args.games, args.seconds),
    }
    ratios = {
        "parallel_vs_rps": results["moralgym_parallel"] / results["pettingzoo_rps_parallel"],
        "vector_vs_numpy_ceiling": results["moralgym_vector"] / results["numpy_ceiling"],
    }
    print(f"{'env':<28}{'agent-steps/s':>16}")
    for name, rate in results.items():
        print(f"{name:<28}{rate:>16,.0f}")
    print(f"parallel env / PettingZoo rps: {ratios['parallel_vs_rps']:.2f}x (target >= 1)")
    print(f"vector env ({args.games} games) / numpy ceiling: {ratios['vector_vs_numpy_ceiling']:.2f} (target >= 0.25)")
    print(f"vector env: {results['moralgym_vector'] / 1e6:.1f} M agent-steps/s (target > 10 M)")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(
            {
                "games": args.games,
                "agent_steps_per_s": results,
                "ratios": ratios,
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
            },
            f,
            indent=2,
        )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
