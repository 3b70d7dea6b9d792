"""LLM seats in N-player games: beside fixed strategies and each other through the runner, one batched call per
round, the N-player prompts, the prefix cache's prefetched states, and the evaluation (harness and CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moralgym.agents.runner import run_episodes
from moralgym.agents.seats import NPlayerStrategySeat
from moralgym.envs.n_player import NPlayerGameEnv

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")

from moralgym.agents.llm.n_player_prompts import NPlayerPromptBuilder, NPlayerState  # noqa: E402
from moralgym.agents.llm.policy import LLMPolicy  # noqa: E402
from moralgym.agents.llm.prefix_cache import CacheKey  # noqa: E402
from moralgym.agents.llm.prompts import PromptBuilder  # noqa: E402
from moralgym.agents.llm.seat import LLMSeat  # noqa: E402

NUM_ENVS, NUM_ROUNDS, SEED = 3, 3, 11


def _policy(model, tokenizer, **kwargs):
    return LLMPolicy(model, tokenizer, prompt=PromptBuilder(tokens="action34", answer_prefix="action"), **kwargs)


def _play(seats, num_players, game="public_goods", seed=SEED):
    envs = [NPlayerGameEnv(game, num_players=num_players, num_rounds=NUM_ROUNDS) for _ in range(NUM_ENVS)]
    seat_seeds = {agent: seed + j for j, agent in enumerate(seats)}
    return run_episodes(envs, seats, seeds=[seed * 100 + i for i in range(NUM_ENVS)], seat_seeds=seat_seeds)


def _seats(llm_seats, num_players):
    """``llm_seats``: {seat index: LLMSeat}; every other seat a fixed N-player strategy."""
    strategies = ["conditional_cooperator", "random", "always_defect"]
    seats = {}
    for j in range(num_players):
        seats[f"player_{j}"] = llm_seats.get(j) or NPlayerStrategySeat(strategies[j % 3], name=f"fixed_{j}")
    return seats


@pytest.mark.parametrize("num_players", [3, 4])
def test_an_llm_seat_plays_against_fixed_strategies_with_the_n_player_prompt(tiny_lm, num_players):
    model, tokenizer = tiny_lm
    seat = LLMSeat(_policy(model, tokenizer), name="llm")
    records = _play(_seats({0: seat}, num_players), num_players)
    mine = [r for r in records if r.player == "llm"]
    assert len(mine) == NUM_ENVS * NUM_ROUNDS and all(r.num_players == num_players for r in mine)
    assert all(r.text.startswith("action") and r.decision is not None for r in mine)
    assert all(len(r.decision.response_ids) == 2 and len(r.decision.logprobs) == 2 for r in mine)
    # The prompt each decision rendered is the hand-built N-player prompt of its state, with the order bits the
    # policy's numpy stream drew (seeded by the runner with the seat's seed, NUM_ENVS pairs per round).
    game = NPlayerGameEnv("public_goods", num_players=num_players).game
    builder = NPlayerPromptBuilder(tokens="action34", answer_prefix="action")
    rng = np.random.default_rng(SEED)
    bits = {r: rng.integers(0, 2, size=(NUM_ENVS, 2)) for r in range(1, NUM_ROUNDS + 1)}
    for record in mine:
        k = record.others_previous_cooperated
        state = NPlayerState(game, record.own_previous, k, num_players - 1 - k)  # random initial states: all moved
        expected = builder.render(tokenizer, game, state, bits[record.round][record.env_index])
        assert record.decision.prompt == expected
    assert f"You are playing a game with {num_players - 1} other agents." in mine[0].decision.prompt


def test_llm_seats_beside_each_other_decide_in_one_batched_call_per_round(tiny_lm, monkeypatch):
    """Two seats sharing one policy (parameter sharing) and two fixed strategies: one decide call per round, with
    both seats' rows."""
    import moralgym.agents.llm.seat as seat_module

    model, tokenizer = tiny_lm
    policy = _policy(model, tokenizer)
    calls = []
    original = seat_module.decide_jointly

    def spy(requests):
        calls.append([(request[0] is policy, len(request[1]), list(request[3])) for request in requests])
        return original(requests)

    monkeypatch.setattr(seat_module, "decide_jointly", spy)
    seats = _seats({0: LLMSeat(policy, name="llm_a"), 2: LLMSeat(policy, name="llm_b")}, 4)
    records = _play(seats, 4)
    assert calls == [[(True, 2 * NUM_ENVS, [0] * NUM_ENVS + [2] * NUM_ENVS)]] * NUM_ROUNDS
    assert {r.player for r in records if r.decision is not None} == {"llm_a", "llm_b"}


def test_one_adapter_per_seat_on_one_model_shares_every_round_in_one_joint_call(monkeypatch):
    peft = pytest.importorskip("peft")
    import moralgym.agents.llm.seat as seat_module
    from moralgym.agents.llm.testing import tiny_model_and_tokenizer

    base, tokenizer = tiny_model_and_tokenizer(seed=4)
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "init_lora_weights": False}
    model = peft.get_peft_model(base, peft.LoraConfig(**lora), adapter_name="player_0")
    model.add_adapter("player_1", peft.LoraConfig(**lora))
    policies = [_policy(model, tokenizer, adapter_name=f"player_{k}", seed=k) for k in (0, 1)]
    calls, forwards = [], []
    original = seat_module.decide_jointly

    def spy(requests):
        calls.append([(request[0].adapter_name, len(request[1])) for request in requests])
        before = policies[0].stats["forwards"]
        result = original(requests)
        forwards.append(policies[0].stats["forwards"] - before)
        return result

    monkeypatch.setattr(seat_module, "decide_jointly", spy)
    seats = _seats({0: LLMSeat(policies[0], name="a"), 1: LLMSeat(policies[1], name="b")}, 3)
    records = _play(seats, 3)
    assert calls == [[("player_0", NUM_ENVS), ("player_1", NUM_ENVS)]] * NUM_ROUNDS
    assert policies[1].stats["forwards"] == 0  # the lead policy's engine forwarded both adapters' rows
    assert forwards[0] > 0 and sum(forwards) == policies[0].stats["forwards"]
    assert {r.player for r in records if r.decision is not None} == {"a", "b"}


def _decisions(records):
    return [(r.player, r.episode, r.round, r.text, r.action) for r in records if r.decision is not None]


@pytest.mark.parametrize("num_players", [3, 4])
def test_decisions_are_the_same_with_and_without_the_prefix_cache(tiny_lm, num_players):
    model, tokenizer = tiny_lm
    runs = []
    for options in ({}, {"prefix_cache": False}, {"prefix_cache": False, "share_prefixes": False}):
        policy = _policy(model, tokenizer, **options)
        seats = _seats({0: LLMSeat(policy, name="a"), 2: LLMSeat(policy, name="b")}, num_players)
        runs.append(_play(seats, num_players))
    assert _decisions(runs[0]) == _decisions(runs[1]) == _decisions(runs[2])
    logprobs = [[r.decision.logprobs for r in run if r.decision is not None] for run in runs]
    np.testing.assert_allclose(logprobs[0], logprobs[2], atol=1e-4)
    other_seed = _play(
        _seats({0: LLMSeat(_policy(model, tokenizer), name="a")}, num_players), num_players, seed=SEED + 1
    )
    assert _decisions(other_seed) != [d for d in _decisions(runs[0]) if d[0] == "a"]  # the seed is used


@pytest.mark.parametrize("num_players", [3, 4])
def test_the_first_miss_prefetches_every_state_and_token_order_of_the_game(tiny_lm, num_players):
    """After round one every prompt a later round can show (own move x others cooperating x token orders) is cached,
    so the later rounds' first tokens are all cache hits."""
    model, tokenizer = tiny_lm
    policy = _policy(model, tokenizer)
    envs = [NPlayerGameEnv("public_goods", num_players=num_players, num_rounds=1) for _ in range(2)]
    run_episodes(envs, _seats({0: LLMSeat(policy)}, num_players), seeds=[0, 1])
    game = envs[0].game
    builder = NPlayerPromptBuilder(tokens="action34", answer_prefix="action")
    for own in (0, 1):
        for k in range(num_players):
            for bits in ((0, 0), (0, 1), (1, 0), (1, 1)):
                prompt = builder.render(tokenizer, game, NPlayerState(game, own, k, num_players - 1 - k), bits)
                assert CacheKey(None, policy.encode(prompt)) in policy.cache, (own, k, bits)
    hits, misses = policy.stats["cache_hits"], policy.stats["cache_misses"]
    envs = [NPlayerGameEnv("public_goods", num_players=num_players, num_rounds=NUM_ROUNDS) for _ in range(NUM_ENVS)]
    forwards = policy.stats["forwards"]
    run_episodes(envs, _seats({0: LLMSeat(policy)}, num_players), seeds=range(7, 7 + NUM_ENVS))
    decisions = NUM_ENVS * NUM_ROUNDS
    assert policy.stats["cache_hits"] - hits >= decisions  # every first token: the prompt's distribution was cached
    assert policy.stats["cache_misses"] - misses <= decisions  # only second tokens after new first tokens
    assert policy.stats["forwards"] - forwards <= NUM_ROUNDS  # at most one one-token step per round


# ----------------------------------------------------------------------------------------------- evaluation
def _agent(model, tokenizer, name="tiny"):
    from moralgym.evaluation.llm_agent import LLMAgent

    return LLMAgent(_policy(model, tokenizer, seed=0), name=name)


def test_the_harness_evaluates_an_llm_agent_on_public_goods_with_one_seed_for_every_agent(tiny_lm):
    from moralgym.evaluation import evaluate

    model, tokenizer = tiny_lm
    settings = dict(games=("public_goods",), num_players=4, num_episodes=2, num_rounds=2, variants=("action34",))
    result = evaluate(_agent(model, tokenizer), **settings, reference=_agent(model, tokenizer, "twin"))
    mine = [row for row in result.decisions if row["role"] == "agent"]
    twin = [row for row in result.decisions if row["role"] == "reference"]
    assert len(mine) == len(twin) == 2 * 2 and all(row["num_players"] == 4 for row in mine)
    assert [row["text"] for row in mine] == [row["text"] for row in twin]  # same weights, same seed: same answers
    (summary,) = [row for row in result.summary if row["role"] == "agent"]
    assert summary["num_players"] == 4 and "regret_game" in summary and summary["opponent"] == "random"
    again = evaluate(_agent(model, tokenizer), **settings)
    assert [r["text"] for r in again.decisions] == [r["text"] for r in mine]  # the evaluation seed alone decides
    assert [r["others_cooperated"] for r in again.decisions] == [r["others_cooperated"] for r in mine]


def test_the_cli_evaluates_a_two_player_trained_adapter_on_a_4_player_public_goods_game(tmp_path, capsys):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from moralgym.agents.llm.testing import tiny_model_and_tokenizer
    from moralgym.evaluation import main_evaluate

    base_dir, run_dir = tmp_path / "base", tmp_path / "ipd_run"
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    lora = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    base = AutoModelForCausalLM.from_pretrained(base_dir)  # so adapter_config.json records base_dir as its base
    peft.get_peft_model(base, lora).save_pretrained(run_dir / "adapter")
    config = {"answer_prefix": "action", "phrasing": "paper", "max_new_tokens": 2, "eval_action_tokens": "action34"}
    (run_dir / "config.json").write_text(json.dumps({**config, "model_name_or_path": str(base_dir), "game": "ipd"}))
    out = tmp_path / "eval"
    argv = [str(run_dir / "adapter"), "--games", "public_goods", "--num_players", "4", "--episodes", "2"]
    code = main_evaluate([*argv, "--rounds", "2", "--no-report", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    meta = json.loads((out / "evaluation.json").read_text())
    assert (meta["games"], meta["num_players"], meta["reference"]) == (["public_goods"], 4, "base_model")
    rows = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert {(row["role"], row["num_players"]) for row in rows} == {("agent", 4), ("reference", 4)}
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 2 * 2 * 2 and all(d["game"] == "public_goods" for d in decisions)


def test_the_docs_example_of_llm_seats_in_an_n_player_game_runs(tiny_lm, monkeypatch, capsys):
    """docs/llm.md's "Playing N-player games" example, with the tiny model standing in for the default one."""
    import re
    from pathlib import Path

    import moralgym.agents.llm as llm

    docs = (Path(__file__).parents[1] / "docs" / "llm.md").read_text()
    section = docs.split("### Playing N-player games", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setattr(llm, "load_causal_lm", lambda *args, **kwargs: tiny_lm)
    exec(compile(code, "docs/llm.md", "exec"), {})
    assert "You are playing a game with 3 other agents." in capsys.readouterr().out
