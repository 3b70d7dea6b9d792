"""LLMs playing through the env API: illegal answers end to end, forced moves, self-play, LLMAgent, the CLI."""

import json

import numpy as np
import pytest

from moralgym.agents.llm.play import main, play
from moralgym.agents.llm.policy import LLMAgent, LLMPolicy
from moralgym.agents.llm.prompts import PromptBuilder
from moralgym.agents.llm.testing import ForcedTokenLM, tiny_causal_lm, tiny_tokenizer
from moralgym.envs import MatrixGameEnv
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def _forced(tokenizer, word, **kwargs):
    model = ForcedTokenLM.always(tiny_causal_lm(len(tokenizer)), tokenizer.convert_tokens_to_ids(word))
    return LLMPolicy(model, tokenizer, **kwargs)


def test_gibberish_is_illegal_end_to_end_through_the_env(tokenizer):
    policy = _forced(tokenizer, "banana")
    env = MatrixGameEnv("ipd", num_rounds=3)
    agent = LLMAgent(policy, env.game, agents=["player_0"])
    observations, _ = env.reset(seed=0)
    start = observations["player_0"].copy()
    while env.agents:
        actions = agent.act(observations) | {"player_1": COOPERATE}
        assert agent.last_decisions["player_0"].text == "banana banana"
        observations, rewards, _, _, infos = env.step(actions)
        assert actions["player_0"] == ILLEGAL and infos["player_0"]["illegal"]
        assert rewards["player_0"] == env.illegal_reward == -6
        assert set(infos["player_0"]["moral_rewards"].values()) == {-6}
        assert observations["player_0"][0] == start[0]  # an illegal move keeps the last legal one


def test_play_counts_illegal_moves(tokenizer):
    result = play(_forced(tokenizer, "banana"), "tit_for_tat", ["ipd", "chicken"], num_episodes=3, num_parallel=4)
    assert result.summary["decisions"] == 2 * 3 * 5 == len(result.records)
    assert result.summary["illegal_rate"] == 1.0 and result.summary["cooperation_rate"] == 0.0
    assert all(r.illegal and r.game_payoff == 0 and r.moral_rewards["utilitarian"] == -6 for r in result.records)
    assert set(result.summary["per_game"]) == {"ipd", "chicken"}


def test_a_forced_legal_answer_plays_that_move_against_tit_for_tat(tokenizer):
    policy = _forced(tokenizer, "action2", max_new_tokens=1)
    result = play(policy, "tit_for_tat", "ipd", num_episodes=4, seed=3)
    assert result.summary["defection_rate"] == 1.0 and result.summary["illegal_rate"] == 0.0
    for record in result.records:
        assert record.text == "action2" and record.action == DEFECT
        assert record.opponent_action == record.observation[0]  # TFT copies our previous move
        assert record.game_payoff == (4.0 if record.opponent_action == COOPERATE else 1.0)
    assert result.summary["mean_prompt_tokens"] > 50


def test_swapped_token_meanings_flip_the_move(tokenizer):
    policy = _forced(tokenizer, "action2", max_new_tokens=1, prompt=PromptBuilder(tokens="action21"))
    result = play(policy, "random", "stag_hunt", num_episodes=2)
    assert result.summary["cooperation_rate"] == 1.0


def test_self_play_batches_both_seats_in_one_decide_call(tokenizer):
    policy = LLMPolicy(tiny_causal_lm(len(tokenizer), seed=2), tokenizer)
    calls = []
    original = policy.decide
    policy.decide = lambda *a, **k: calls.append(len(a[0])) or original(*a, **k)
    result = play(policy, "llm", "bach_or_stravinsky", num_episodes=3, num_rounds=2)
    assert calls == [6, 6]
    assert sorted({r.seat for r in result.records}) == [0, 1] and len(result.records) == 12


def test_two_policies_play_each_other(tokenizer):
    me = _forced(tokenizer, "action1", max_new_tokens=1)
    other = _forced(tokenizer, "action2", max_new_tokens=1)
    result = play(me, other, "ipd", num_episodes=2)
    assert all(r.action == COOPERATE and r.opponent_action == DEFECT and r.game_payoff == 0 for r in result.records)


def test_play_is_reproducible_for_a_seed(tokenizer):
    model = tiny_causal_lm(len(tokenizer), seed=5)
    runs = [play(LLMPolicy(model, tokenizer, seed=9), "random", "ipd", 4, seed=9).records for _ in range(2)]
    assert [(r.text, r.opponent_action, r.observation) for r in runs[0]] == [
        (r.text, r.opponent_action, r.observation) for r in runs[1]
    ]


def test_cli_plays_a_saved_model_and_writes_records(tokenizer, tmp_path, capsys):
    model = tiny_causal_lm(len(tokenizer), seed=0)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "records.jsonl"
    argv = ["--model", str(tmp_path / "model"), "--game", "ipd,chicken", "--episodes", "2", "--rounds", "2"]
    argv += ["--tokens", "action3,action4", "--opponent", "tit_for_tat", "--output", str(out), "--seed", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cooperation" in printed and "illegal" in printed and "chicken" in printed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 * 2 * 2 and {line["game"] for line in lines} == {"ipd", "chicken"}
    assert all("action3" in json.dumps(line) or line["illegal"] for line in lines)


def test_cli_rejects_an_unknown_model(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "missing"), "--episodes", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("moralgym play: error:") and "missing" in error and "\n" not in error


def test_llm_agent_maps_agents_to_seats(tokenizer):
    policy = _forced(tokenizer, "action1", max_new_tokens=1)
    agent = LLMAgent(policy, "bach_or_stravinsky")
    actions = agent.act({"player_0": np.array([0, 1]), "player_1": np.array([1, 0])})
    assert actions == {"player_0": COOPERATE, "player_1": COOPERATE}
    assert "| action1 |  3, 2     |" in agent.last_decisions["player_0"].prompt
    assert "| action1 |  2, 3     |" in agent.last_decisions["player_1"].prompt  # seat 1 sees its own payoffs first


def test_readme_section_example_runs(tokenizer, monkeypatch, capsys):
    """The README's env-API example for LLM agents, with a tiny model standing in for the default one."""
    import re
    from pathlib import Path

    import moralgym.agents.llm as llm

    text = (Path(__file__).parents[1] / "README.md").read_text()
    example = re.search(r"```py\n(from moralgym.agents.llm import .*?)```", text, re.S).group(1)
    tiny = tiny_causal_lm(len(tokenizer), seed=0)
    monkeypatch.setattr(llm, "load_causal_lm", lambda *a, **k: (tiny, tokenizer))
    exec(compile(example, "README.md", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all("deontological" in line for line in lines)
