"""LLMs playing through the env API: illegal answers end to end, forced moves, self-play, LLMEnvAgent, the CLI."""

import importlib
import json

import numpy as np
import pytest

from moralgym.agents.llm.env_agent import LLMEnvAgent
from moralgym.agents.llm.play import main, play
from moralgym.agents.llm.policy import LLMPolicy
from moralgym.agents.llm.prompts import PromptBuilder
from moralgym.agents.llm.testing import ForcedTokenLM, tiny_causal_lm
from moralgym.envs import MatrixGameEnv
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL


@pytest.fixture(scope="module")
def tokenizer(tiny_word_tokenizer):
    return tiny_word_tokenizer


def _forced(tokenizer, word, **kwargs):
    model = ForcedTokenLM.always(tiny_causal_lm(len(tokenizer)), tokenizer.convert_tokens_to_ids(word))
    return LLMPolicy(model, tokenizer, **kwargs)


def test_gibberish_is_illegal_end_to_end_through_the_env(tokenizer):
    policy = _forced(tokenizer, "banana")
    env = MatrixGameEnv("ipd", num_rounds=3)
    agent = LLMEnvAgent(policy, env.game, agents=["player_0"])
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
        assert record.opponent_action == record.own_previous  # TFT copies our previous move
        assert record.game_payoff == (4.0 if record.opponent_action == COOPERATE else 1.0)
    assert result.summary["mean_prompt_tokens"] > 50


def test_swapped_token_meanings_flip_the_move(tokenizer):
    policy = _forced(tokenizer, "action2", max_new_tokens=1, prompt=PromptBuilder(tokens="action21"))
    result = play(policy, "random", "stag_hunt", num_episodes=2)
    assert result.summary["cooperation_rate"] == 1.0


def test_self_play_batches_both_seats_in_one_decide_call(tokenizer, monkeypatch):
    import moralgym.agents.llm.seat as seat_module

    policy = LLMPolicy(tiny_causal_lm(len(tokenizer), seed=2), tokenizer)
    calls = []
    original = seat_module.decide_jointly

    def spy(requests):
        calls.append([(request[0] is policy, len(request[1]), list(request[3])) for request in requests])
        return original(requests)

    monkeypatch.setattr(seat_module, "decide_jointly", spy)
    result = play(policy, "llm", "bach_or_stravinsky", num_episodes=3, num_rounds=2)
    # One call per round, one request: the policy's rows for both seats, seat 0's three games then seat 1's.
    assert calls == [[(True, 6, [0, 0, 0, 1, 1, 1])]] * 2
    assert sorted({r.seat for r in result.records}) == [0, 1] and len(result.records) == 12


def test_two_policies_play_each_other(tokenizer):
    me = _forced(tokenizer, "action1", max_new_tokens=1)
    other = _forced(tokenizer, "action2", max_new_tokens=1)
    result = play(me, other, "ipd", num_episodes=2)
    assert all(r.action == COOPERATE and r.opponent_action == DEFECT and r.game_payoff == 0 for r in result.records)


def test_play_is_reproducible_for_a_seed(tokenizer):
    model = tiny_causal_lm(len(tokenizer), seed=5)
    runs = [play(LLMPolicy(model, tokenizer, seed=9), "random", "ipd", 4, seed=9).records for _ in range(2)]
    assert [(r.text, r.opponent_action, r.own_previous, r.opponent_previous) for r in runs[0]] == [
        (r.text, r.opponent_action, r.own_previous, r.opponent_previous) for r in runs[1]
    ]
    other = play(LLMPolicy(model, tokenizer, seed=10), "random", "ipd", 4, seed=10).records
    assert [(r.text, r.opponent_action) for r in other] != [(r.text, r.opponent_action) for r in runs[0]]  # seed used


class _RecordingForcedLM(ForcedTokenLM):
    """:class:`ForcedTokenLM` that also remembers every input token id it was run on (prompts, prefix-cached or not)."""

    def forward(self, **kwargs):
        self.seen_ids.update(kwargs["input_ids"].flatten().tolist())
        return super().forward(**kwargs)


@pytest.mark.parametrize(("answer", "move"), [("action3", COOPERATE), ("action4", DEFECT)])
def test_cli_plays_a_saved_model_and_writes_records(tokenizer, tmp_path, capsys, monkeypatch, answer, move):
    """``--tokens action3,action4`` reach the prompt, and the saved model's answers parse with them: action3 is
    cooperate and action4 defect (with the default action12 both answers would be illegal)."""
    import moralgym.agents.llm.loading as loading

    play_module = importlib.import_module("moralgym.agents.llm.play")  # the package exports play()

    model = tiny_causal_lm(len(tokenizer), seed=0)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    real_load, forced = loading.load_causal_lm, []

    def load_and_force(*args, **kwargs):  # the CLI loads the saved model by path; it then always answers `answer`
        loaded, loaded_tokenizer = real_load(*args, **kwargs)
        recording = _RecordingForcedLM.always(loaded, loaded_tokenizer.convert_tokens_to_ids(answer))
        recording.seen_ids = set()
        forced.append(recording)
        return recording, loaded_tokenizer

    monkeypatch.setattr(loading, "load_causal_lm", load_and_force)
    monkeypatch.setattr(play_module, "load_causal_lm", load_and_force, raising=False)  # if play imports it at the top
    out = tmp_path / "records.jsonl"
    argv = ["--model", str(tmp_path / "model"), "--game", "ipd,chicken", "--episodes", "2", "--rounds", "2"]
    argv += ["--tokens", "action3,action4", "--opponent", "tit_for_tat", "--output", str(out), "--seed", "1"]
    assert main([*argv, "--max_new_tokens", "1"]) == 0
    printed = capsys.readouterr().out
    assert "cooperation" in printed and "illegal" in printed and "chicken" in printed
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 * 2 * 2 and {line["game"] for line in lines} == {"ipd", "chicken"}
    assert len(forced) == 1
    seen = {tokenizer.convert_ids_to_tokens(i) for i in forced[0].seen_ids}
    assert {"action3", "action4"} <= seen and not {"action1", "action2"} & seen  # the prompts name the given tokens
    assert all(line["text"] == answer and not line["illegal"] and line["action"] == move for line in lines)


def test_cli_rejects_an_unknown_model(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "missing"), "--episodes", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("moralgym play: error:") and "missing" in error and "\n" not in error


def test_llm_agent_maps_agents_to_seats(tokenizer):
    policy = _forced(tokenizer, "action1", max_new_tokens=1)
    agent = LLMEnvAgent(policy, "bach_or_stravinsky")
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
