"""Decisions per second of an LLM playing moralgym games, next to a forward-pass-only ceiling measured in the same run.

Three measurements with the default SmolLM2-135M-Instruct (or ``--model``) on this machine:

1. *No prefix cache*, batch 1 / 8 / 32: ``play`` against Random with ``B`` games in parallel (every decision does a
   batched prefill and one KV-cached decode step, plus prompt building, sampling and env steps).
2. *Ceiling*, same batches: one prefill forward of the same ``B`` prompts and nothing else; decisions/s = B / time.
   Play and ceiling are measured alternately and the fastest repetition of each is kept, so load from other
   processes (this machine is shared) distorts neither. With ``share_prefixes`` (the default) play forwards the
   prompts' common prefix once per batch and can beat this ceiling; both figures are reported.
3. *Prefix cache on the paper's evaluation protocol*: five games x 10 episodes x 5 rounds vs Random, tokens
   action3/action4, seed 100, with prefix trees and prefetched game states; cold (every repetition starts from an
   empty cache) and warm (the protocol run again on unchanged weights, e.g. the "no fine-tuning" baseline or a
   second evaluation seed). As for the other series, the fastest of ``--reps`` repetitions is reported (the first
   one in a process also pays for the allocator's first touch of its memory) and every repetition is listed.
4. *N-player* (``--mode n_player``, or ``all``): the cold evaluation protocol of a 4-player linear public goods game
   (``evaluate`` of an LLM agent: 10 episodes x 5 rounds in seat 0 against Random co-players, tokens
   action3/action4, seed 100, an empty prefix cache each repetition), and, in the same run, a plain batched forward
   (no prefix tree, no cache, batches of 64) of exactly the prompts the protocol showed: the ratio is the plain
   forward's time over the protocol's, whole decisions (prompts, sampling, parsing, envs) against one prefill of the
   same prompts. Beside it the same game with the LLM in all four seats (one policy, parameter sharing: every
   seat's decisions of a round in one call, 200 decisions).

Usage::

    python benchmarks/llm_decisions.py [--model default] [--reps 3] [--mode all|two_player|n_player]
        [--out benchmarks/results/llm_decisions.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from moralgym.agents import run_episodes
from moralgym.agents.llm import LLMPolicy, PromptBuilder, load_causal_lm, play
from moralgym.agents.llm.seat import LLMSeat
from moralgym.envs.games import PAPER_GAMES
from moralgym.envs.n_player import NPlayerGameEnv
from moralgym.evaluation import evaluate
from moralgym.evaluation.llm_agent import LLMAgent


def ceiling_seconds(policy: LLMPolicy, batch: int, seed: int) -> float:
    """One prefill forward of ``batch`` paper prompts (the same kind of prompts play builds)."""
    rng = np.random.default_rng(seed)
    games = ["ipd"] * batch
    queries = [policy.encode(p) for p in policy.render_prompts(games, rng.integers(0, 2, size=(batch, 2)))]
    start = time.perf_counter()
    policy.next_token_logprobs(queries)
    return time.perf_counter() - start


def play_seconds(policy: LLMPolicy, batch: int, rounds: int, seed: int) -> float:
    result = play(policy, "random", "ipd", num_episodes=batch, num_parallel=batch, num_rounds=rounds, seed=seed)
    return result.summary["seconds"] / rounds  # seconds per round of `batch` decisions


@contextmanager
def shown_prompts(policy: LLMPolicy) -> Iterator[list[tuple[int, ...]]]:
    """The token ids of every prompt ``policy`` decides on inside the block (what the plain forward then repeats)."""
    shown: list[tuple[int, ...]] = []
    prepare = policy.prepare

    def recording(*args: object) -> object:
        request = prepare(*args)
        shown.extend(request.queries)
        return request

    policy.prepare = recording  # type: ignore[method-assign]
    try:
        yield shown
    finally:
        del policy.prepare


def plain_forward_seconds(policy: LLMPolicy, queries: list[tuple[int, ...]], reps: int) -> list[float]:
    """One plain batched prefill (no tree, no cache) of ``queries``, ``reps`` times."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        policy.next_token_logprobs(queries)
        times.append(time.perf_counter() - start)
    return times


def n_player_protocol(model: object, tokenizer: object, reps: int, num_players: int = 4) -> dict:
    """The cold evaluation protocol of a ``num_players`` public goods game, and every seat an LLM, each as a ratio
    to a plain batched forward of the same prompts (see the module docstring)."""
    prompt = PromptBuilder(tokens="action34", answer_prefix="action")
    plain = LLMPolicy(model, tokenizer, prompt=prompt, prefix_cache=False, share_prefixes=False, batch_size=64)
    results: dict = {}
    for label in ("evaluation_vs_random", "llm_in_every_seat"):
        policy = LLMPolicy(model, tokenizer, prompt=prompt, seed=100)
        runs = []
        for _ in range(reps):
            policy.invalidate_cache()  # cold: every repetition starts from an empty prefix cache
            before = {k: policy.stats[k] for k in ("forwards", "rows", "tokens", "cache_hits", "cache_misses")}
            with shown_prompts(policy) as queries:
                start = time.perf_counter()
                if label == "evaluation_vs_random":
                    result = evaluate(
                        LLMAgent(policy, name="llm"),
                        games=("public_goods",),
                        num_players=num_players,
                        variants=("action34",),
                    )
                    decisions = len(result.decisions)
                else:
                    envs = [NPlayerGameEnv("public_goods", num_players=num_players, num_rounds=5) for _ in range(10)]
                    seat = LLMSeat(policy)
                    seats = {agent: seat for agent in envs[0].possible_agents}
                    decisions = len(run_episodes(envs, seats, seeds=range(100, 110), seat_seeds={"player_0": 100}))
                seconds = time.perf_counter() - start
            runs.append((seconds, decisions, list(queries), {k: policy.stats[k] - v for k, v in before.items()}))
        seconds, decisions, queries, counts = min(runs, key=lambda run: run[0])
        plain_times = plain_forward_seconds(plain, queries, reps)
        entry = {
            "num_players": num_players,
            "decisions": decisions,
            "seconds": seconds,
            "raw_seconds": [run[0] for run in runs],
            "decisions_per_s": decisions / seconds,
            "plain_forward_seconds": min(plain_times),
            "raw_plain_forward_seconds": plain_times,
            "over_plain_forward": min(plain_times) / seconds,
            "distinct_prompts": len(set(queries)),
            "prompt_tokens": float(np.mean([len(q) for q in queries])),
            "forward_passes": counts["forwards"],
            "rows_forwarded": counts["rows"],
            "tokens_forwarded": counts["tokens"],
            "tokens_of_the_plain_forward": sum(len(q) for q in queries),
            "cache_hits": counts["cache_hits"],
            "cache_misses": counts["cache_misses"],
        }
        results[label] = entry
        print(
            f"{num_players}-player public goods, {label}, cold: {decisions} decisions in {seconds:.2f} s = "
            f"{entry['decisions_per_s']:.1f}/s; a plain batched forward of the same prompts takes "
            f"{entry['plain_forward_seconds']:.2f} s: {entry['over_plain_forward']:.1f}x "
            f"({entry['tokens_forwarded']} tokens forwarded vs {entry['tokens_of_the_plain_forward']}; "
            f"{entry['distinct_prompts']} distinct prompts)",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="rounds per play measurement (no-cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--mode", choices=("all", "two_player", "n_player"), default="all")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON output (default benchmarks/results/llm_decisions.json; llm_decisions_n_player.json with --mode n_player)",
    )
    args = parser.parse_args()
    if args.out is None:
        name = "llm_decisions_n_player.json" if args.mode == "n_player" else "llm_decisions.json"
        args.out = str(Path(__file__).parent / "results" / name)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_causal_lm(args.model, verbose=True)
    results: dict = {
        "model": args.model,
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}",
        "load_average_at_start": os.getloadavg(),
        "no_cache": {},
    }
    if args.mode in ("all", "n_player"):
        results["n_player_public_goods"] = n_player_protocol(model, tokenizer, args.reps)
    if args.mode == "n_player":
        results["load_average_at_end"] = os.getloadavg()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
        return
    uncached = LLMPolicy(model, tokenizer, prefix_cache=False, share_prefixes=False, batch_size=64, seed=0)
    shared = LLMPolicy(model, tokenizer, prefix_cache=False, share_prefixes=True, batch_size=64, seed=0)
    ceiling_policy = LLMPolicy(model, tokenizer, prefix_cache=False, share_prefixes=False, batch_size=64, seed=0)
    ceiling_policy.next_token_logprobs([ceiling_policy.encode("warm up")])
    for batch in [int(b) for b in args.batches.split(",")]:
        ceilings, plays, shared_plays = [], [], []
        for rep in range(args.reps):
            ceilings.append(ceiling_seconds(ceiling_policy, batch, seed=rep))
            plays.append(play_seconds(uncached, batch, args.rounds, seed=rep))
            shared_plays.append(play_seconds(shared, batch, args.rounds, seed=rep))
        # Other processes share this machine: the fastest repetition is the least disturbed one, for every series.
        ceiling, per_round, shared_round = min(ceilings), min(plays), min(shared_plays)
        entry = {
            "ceiling_decisions_per_s": batch / ceiling,
            "play_decisions_per_s": batch / per_round,
            "play_over_ceiling": ceiling / per_round,
            "play_shared_prefixes_decisions_per_s": batch / shared_round,
            "play_shared_prefixes_over_ceiling": ceiling / shared_round,
            "median_play_over_median_ceiling": statistics.median(ceilings) / statistics.median(plays),
            "prompt_tokens": float(np.mean(uncached.prompt_lengths)),
            "raw_seconds": {"ceiling": ceilings, "play_per_round": plays, "play_shared_per_round": shared_plays},
        }
        results["no_cache"][str(batch)] = entry
        print(
            f"batch {batch:>3}: ceiling {entry['ceiling_decisions_per_s']:7.2f} decisions/s | play (no cache) "
            f"{entry['play_decisions_per_s']:7.2f}/s = {entry['play_over_ceiling']:.0%} of ceiling | play (no cache, "
            f"shared prefixes) {entry['play_shared_prefixes_decisions_per_s']:7.2f}/s = "
            f"{entry['play_shared_prefixes_over_ceiling']:.0%}",
            flush=True,
        )

    games = [g.name for g in PAPER_GAMES]
    cached = LLMPolicy(model, tokenizer, prompt=PromptBuilder(tokens="action34"), prefix_cache=True, seed=100)
    reference = results["no_cache"].get("32") or list(results["no_cache"].values())[-1]
    for label in ("cold", "warm"):
        # cold: every repetition starts from an empty prefix cache; warm: the cache the cold runs left behind.
        runs = []
        for _ in range(args.reps):
            if label == "cold":
                cached.invalidate_cache()
                cached.seed(100)  # every cold repetition makes the same decisions
            before = {k: cached.stats[k] for k in ("rows", "kv_reused", "tokens")}
            summary = play(cached, "random", games, num_episodes=10, num_rounds=5, seed=100).summary
            runs.append((summary, {k: cached.stats[k] - before[k] for k in before}))
        summary, counts = min(runs, key=lambda run: run[0]["seconds"])  # the least disturbed repetition, as above
        entry = {
            "decisions": summary["decisions"],
            "seconds": summary["seconds"],
            "raw_seconds": [run[0]["seconds"] for run in runs],
            "decisions_per_s": summary["decisions_per_second"],
            "over_batch32_ceiling": summary["decisions_per_second"] / reference["ceiling_decisions_per_s"],
            "rows_forwarded": counts["rows"],
            "one_token_steps_from_kept_kv": counts["kv_reused"],
            "tokens_forwarded": counts["tokens"],
            "tokens_without_sharing": summary["decisions"] * (float(np.mean(cached.prompt_lengths)) + 1),
            "illegal_rate": summary["illegal_rate"],
        }
        results[f"paper_protocol_cached_{label}"] = entry
        print(
            f"paper protocol, prefix cache, {label}: {entry['decisions']} decisions in {entry['seconds']:.2f} s = "
            f"{entry['decisions_per_s']:.1f}/s = {entry['over_batch32_ceiling']:.1f}x the batch-32 ceiling "
            f"({entry['tokens_forwarded']} tokens forwarded; {entry['tokens_without_sharing']:.0f} without any reuse; "
            f"all repetitions: {', '.join(f'{t:.2f}' for t in entry['raw_seconds'])} s)",
            flush=True,
        )
    results["load_average_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
