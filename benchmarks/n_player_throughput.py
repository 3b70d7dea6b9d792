"""N-player vector env throughput, as a ratio against a plain-numpy loop of the same game measured in the same run.

Prints agent-steps per second (one player choosing one action = one agent-step, so a game-step of 8 players is 8)
for:
- our ``NPlayerGameVectorEnv``: public goods, 8 players x 4096 games, a learner against 7 conditional cooperators
  (the registered ``conditional_cooperator``), Deontological reward, every moral reward component in ``info``
  (and, for reference, the same with ``moral_components=False``);
- a plain-numpy loop of the same game at the same size: the conditional cooperators' moves, every player's payoff
  and the learner's next observation, written the way a numpy user would (``sum(axis=1)`` for counts, one gather
  for the payoffs; no env API, no illegal moves, no moral rewards, no infos): the reference of the target;
- the same loop written with the env's own tricks (counts as matrix products with a vector of ones, kept from one
  step to the next; payoffs by number of cooperators), to show how far the reference is from a tuned one.

Targets (issue 17): the vector env at >= 0.25x the numpy loop and >= 10M agent-steps/s.

Usage: ``python benchmarks/n_player_throughput.py [--games 4096] [--players 8] [--seconds 2]
[--json benchmarks/results/n_player_throughput.json]``. Both are pinned to one thread
(OMP/MKL/OPENBLAS_NUM_THREADS=1 before numpy loads), as in ``benchmarks/env_throughput.py``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import moralgym  # noqa: E402, F401 - registers the envs and the N-player strategies
from moralgym.envs.n_player import NPlayerGameVectorEnv, get_n_player_game  # noqa: E402


def timed(run_for: float, step: Callable[[], int]) -> float:
    """Call ``step`` (returns agent-steps done) until ``run_for`` seconds pass; return agent-steps per second."""
    for _ in range(5):  # warm-up: first-call allocations and table building
        step()
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < run_for:
        done += step()
    return done / elapsed


def vector_env_rate(num_games: int, num_players: int, seconds: float, moral_components: bool) -> float:
    env = NPlayerGameVectorEnv(
        num_games,
        "public_goods",
        num_players=num_players,
        co_players="conditional_cooperator",
        reward="deontological",
        moral_components=moral_components,
    )
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_games))
    counter = {"i": 0}

    def step() -> int:
        env.step(actions[counter["i"] % 64])
        counter["i"] += 1
        return num_players * num_games

    return timed(seconds, step)


def numpy_loop_rate(num_games: int, num_players: int, seconds: float) -> float:
    game = get_n_player_game("public_goods", num_players)
    payoffs = np.concatenate([game.cooperate_payoffs, game.defect_payoffs])  # [move * N + others cooperating]
    previous = np.random.default_rng(1).integers(0, 2, size=(num_games, num_players))
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_games))
    counter = {"i": 0}

    def step() -> int:
        # What a hand-written loop needs per step: co-players' moves, every payoff, the learner's next observation.
        nonlocal previous
        learner = actions[counter["i"] % 64]
        cooperated = previous == 0
        others_before = cooperated.sum(axis=1, keepdims=True) - cooperated
        co_players = (others_before[:, 1:] < num_players - 1).astype(np.int64)  # C iff every other cooperated
        joint = np.concatenate([learner[:, None], co_players], axis=1)
        cooperates = joint == 0
        others = cooperates.sum(axis=1, keepdims=True) - cooperates
        _payoffs = np.take(payoffs, joint * num_players + others)
        _observation = np.stack([joint[:, 0], others[:, 0]], axis=1)
        previous = joint
        counter["i"] += 1
        return num_players * num_games

    return timed(seconds, step)


def tuned_numpy_loop_rate(num_games: int, num_players: int, seconds: float) -> float:
    game = get_n_player_game("public_goods", num_players)
    # [move * (N + 1) + cooperators among all N]: C pays cooperate_payoffs[K - 1], D defect_payoffs[K].
    by_cooperators = np.concatenate([[0.0], game.cooperate_payoffs, game.defect_payoffs, [0.0]])
    ones = np.ones(num_players)
    previous = np.random.default_rng(1).integers(0, 2, size=(num_games, num_players))
    state = {"previous": previous, "cooperators": (previous == 0) @ ones, "i": 0}
    actions = np.random.default_rng(0).integers(0, 2, size=(64, num_games))

    def step() -> int:
        learner = actions[state["i"] % 64]
        others_before = state["cooperators"][:, None] - (state["previous"][:, 1:] == 0)
        joint = np.empty((num_games, num_players), dtype=np.int64)
        joint[:, 0] = learner
        joint[:, 1:] = others_before < num_players - 1
        cooperators = (joint == 0) @ ones
        count = cooperators.astype(np.int64)
        _payoffs = np.take(by_cooperators, joint * (num_players + 1) + count[:, None])
        _observation = np.stack([learner, count - (learner == 0)], axis=1)
        state.update(previous=joint, cooperators=cooperators, i=state["i"] + 1)
        return num_players * num_games

    return timed(seconds, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=4096)
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", default="benchmarks/results/n_player_throughput.json")
    args = parser.parse_args()

    results = {
        "moralgym_n_player_vector": vector_env_rate(args.games, args.players, args.seconds, True),
        "moralgym_n_player_vector_no_components": vector_env_rate(args.games, args.players, args.seconds, False),
        "numpy_loop": numpy_loop_rate(args.games, args.players, args.seconds),
        "numpy_loop_tuned": tuned_numpy_loop_rate(args.games, args.players, args.seconds),
    }
    ratios = {
        "vector_vs_numpy_loop": results["moralgym_n_player_vector"] / results["numpy_loop"],
        "vector_no_components_vs_numpy_loop": results["moralgym_n_player_vector_no_components"] / results["numpy_loop"],
        "vector_vs_numpy_loop_tuned": results["moralgym_n_player_vector"] / results["numpy_loop_tuned"],
    }
    print(f"{args.players} players x {args.games} games (public goods, learner vs conditional cooperators)")
    print(f"{'env':<42}{'agent-steps/s':>16}")
    for name, rate in results.items():
        print(f"{name:<42}{rate:>16,.0f}")
    print(f"vector env / numpy loop: {ratios['vector_vs_numpy_loop']:.2f} (target >= 0.25)")
    print(f"vector env / tuned numpy loop: {ratios['vector_vs_numpy_loop_tuned']:.2f}")
    print(f"vector env: {results['moralgym_n_player_vector'] / 1e6:.1f} M agent-steps/s (target >= 10 M)")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(
            {
                "games": args.games,
                "players": args.players,
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
