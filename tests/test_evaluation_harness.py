"""The evaluation protocol: same states for every agent, reference answers, illegal answers, tournaments."""

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from moralgym.agents.seats import SeatStep, StrategySeat
from moralgym.envs import ILLEGAL, PAPER_GAMES
from moralgym.evaluation import evaluate, make_agent, tournament
from moralgym.evaluation.llm_agent import PROMPT_VARIANTS, LLMAgent


def _by_key(decisions, *keys):
    return [tuple(d[k] for k in keys) for d in decisions if d["role"] == "agent"]


def test_paper_protocol_defaults():
    result = evaluate("always_cooperate")
    assert len(result.decisions) == len(PAPER_GAMES) * 10 * 5
    assert {row["opponent"] for row in result.summary} == {"random"}
    assert result.config["seed"] == 100 and result.config["penalty"] == 3.0
    assert all(row["cooperation_rate"] == 1.0 and row["regret_deontological"] == 0.0 for row in result.summary)


def test_every_agent_sees_the_same_initial_states_and_random_moves():
    a = evaluate("always_cooperate", num_episodes=4, num_rounds=3)
    b = evaluate("always_defect", num_episodes=4, num_rounds=3)
    keys = ("game", "episode", "round", "opponent_action")
    assert _by_key(a.decisions, *keys) == _by_key(b.decisions, *keys)
    first = [d for d in a.decisions if d["round"] == 1]
    first_b = [d for d in b.decisions if d["round"] == 1]
    assert [(d["own_previous"], d["opponent_previous"]) for d in first] == [
        (d["own_previous"], d["opponent_previous"]) for d in first_b
    ]
    # The seed is re-used for every game: the same Random moves in each game.
    per_game = {}
    for d in a.decisions:
        per_game.setdefault(d["game"], []).append((d["episode"], d["round"], d["opponent_action"]))
    assert len({tuple(v) for v in per_game.values()}) == 1


def test_a_different_seed_gives_different_random_moves():
    a = evaluate("always_cooperate", games=("ipd",), seed=100)
    b = evaluate("always_cooperate", games=("ipd",), seed=101)
    assert _by_key(a.decisions, "opponent_action") != _by_key(b.decisions, "opponent_action")


def test_reference_answers_the_same_states_without_changing_the_trajectory():
    result = evaluate(
        "always_cooperate",
        reference="always_defect",
        games=("ipd",),
        num_episodes=3,
        num_rounds=4,
        opponents=("tit_for_tat",),
    )
    agent = [d for d in result.decisions if d["role"] == "agent"]
    reference = [d for d in result.decisions if d["role"] == "reference"]
    assert len(agent) == len(reference) == 12
    for mine, ref in zip(agent, reference, strict=True):
        assert (mine["own_previous"], mine["opponent_previous"], mine["opponent_action"]) == (
            ref["own_previous"],
            ref["opponent_previous"],
            ref["opponent_action"],
        )
    # The state follows the cooperator: TFT cooperates from round 2, so the defecting reference scores 4, and from
    # round 3 (the opponent's previous move is then C) it is also penalised -3.
    assert all(r["game_payoff"] == 4.0 for r in reference if r["round"] > 1)
    assert all(r["reward_deontological"] == -3.0 for r in reference if r["round"] > 2)
    assert {row["role"] for row in result.summary} == {"agent", "reference"}


class _Illegal:
    name = "gibberish"

    def reset(self, n, seed=None):
        pass

    def act(self, games, observations, seat=0):
        return SeatStep(np.full(len(observations), ILLEGAL), ["**"] * len(observations))


def test_illegal_answers_score_worst_regret_and_keep_their_text():
    result = evaluate(_Illegal(), games=("ipd", "chicken"), num_episodes=2, num_rounds=2)
    for row in result.summary:
        assert row["illegal_rate"] == 1.0 and row["cooperation_rate"] == 0.0
        assert row["regret_deontological"] == 6.0 and row["regret_utilitarian"] == 1.0
        assert row["share_illegal|C"] + row["share_illegal|D"] == pytest.approx(1.0)
    assert {d["text"] for d in result.decisions} == {"**"}


def test_penalty_is_an_evaluation_setting():
    three = evaluate("always_defect", games=("ipd",), opponents=("always_cooperate",), num_episodes=2, num_rounds=2)
    four = evaluate(
        "always_defect", games=("ipd",), opponents=("always_cooperate",), num_episodes=2, num_rounds=2, penalty=4.0
    )
    # Every defection after the cooperator's move costs the penalty; round 1's "previous move" is random.
    row3, row4 = three.summary[0], four.summary[0]
    assert row3["regret_deontological"] == pytest.approx(3.0 * row3["share_D|C"])
    assert row4["regret_deontological"] == pytest.approx(4.0 * row4["share_D|C"])
    assert row3["share_D|C"] == row4["share_D|C"] >= 0.5


@dataclass
class _Decision:
    action: int
    text: str


class _FakePolicy:
    """Answers with the cooperate token of whatever variant is active; records seeds and builders."""

    def __init__(self):
        self.prompt_builder = {"tokens": "action34"}
        self.seeds = []

    def reseed(self, seed):
        self.seeds.append(seed)

    def decide(self, games, observations):
        token = self.prompt_builder["tokens"]
        return [_Decision(0, f"{token}") for _ in observations]


def test_llm_adapter_runs_every_prompt_variant_with_the_same_seed():
    policy = _FakePolicy()
    result = evaluate(LLMAgent(policy, name="fake"), games=("ipd",), num_episodes=2, num_rounds=2)
    assert {row["variant"] for row in result.summary} == set(PROMPT_VARIANTS)
    assert len(set(policy.seeds)) == 1
    texts = {d["variant"]: d["text"] for d in result.decisions}
    assert texts["action12"] == "action12" and texts["swapped"] == "action21"


def test_tournament_shape_and_known_payoffs():
    names = ["always_cooperate", "always_defect", "tit_for_tat"]
    result = tournament(names, games=("ipd", "stag_hunt"), num_episodes=3, num_rounds=4)
    assert len(result.table) == len(names) ** 2 * 2
    matrix = result.matrix("game_payoff", game="ipd")
    assert matrix.shape == (3, 3)
    assert matrix[1, 0] == 4.0 and matrix[0, 1] == 0.0 and matrix[0, 0] == 3.0
    assert {(row["agent"], row["opponent"]) for row in result.table} == {(a, b) for a in names for b in names}


def test_tournament_rejects_duplicate_names():
    with pytest.raises(ValueError, match="distinct names"):
        tournament([StrategySeat("random"), StrategySeat("random")], games=("ipd",), num_episodes=1, num_rounds=1)


def test_make_agent_errors_name_the_accepted_forms():
    with pytest.raises(ValueError, match="q_learning"):
        make_agent("no_such_thing")


def test_evaluation_import_is_light():
    code = (
        "import sys, moralgym.evaluation, moralgym.agents.baselines;"
        "print('torch' in sys.modules, 'matplotlib' in sys.modules, 'stable_baselines3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


class _PromptPolicy:
    """Duck-types LLMPolicy: a real PromptBuilder in ``prompt``, ``seed()``, and seats passed to ``decide``."""

    def __init__(self):
        from moralgym.agents.llm.prompts import PromptBuilder

        self.prompt = PromptBuilder(answer_prefix="act")
        self.seats_seen = []

    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def decide(self, games, observations, seats=None):
        self.seats_seen.append(seats)
        bits = self.prompt.draw_order_bits(self.rng, len(games))
        texts = [self.prompt.user_text(g, o, b) for g, o, b in zip(games, observations, bits, strict=True)]
        cooperate = self.prompt.action_tokens.cooperate
        return [_Decision(0 if cooperate in t else ILLEGAL, cooperate) for t in texts]


def test_llm_adapter_swaps_prompt_builder_and_keeps_other_settings():
    pytest.importorskip("moralgym.agents.llm.prompts")
    policy = _PromptPolicy()
    agent = LLMAgent(policy, name="prompted")
    result = evaluate(
        agent, games=("ipd",), variants=("action34", "swapped", "table_reversed"), num_episodes=2, num_rounds=2
    )
    texts = {d["variant"]: d["text"] for d in result.decisions}
    assert texts == {"action34": "action3", "swapped": "action2", "table_reversed": "action3"}
    assert policy.prompt.answer_prefix == "act" and policy.prompt.table_order == "reversed"
    # In a tournament the column copy is told its seat.
    tournament({"llm": agent, "allc": "always_cooperate"}, games=("ipd",), num_episodes=1, num_rounds=1)
    assert [1] in policy.seats_seen


def test_always_defect_opponent_is_shown_defecting_before_round_one():
    """Spec §1.2: against Always Defect the first prompt says the opponent defected; against Random it varies."""
    fixed = evaluate("tit_for_tat", games=("ipd",), opponents=("always_defect",), num_episodes=10, num_rounds=1)
    drawn = evaluate("tit_for_tat", games=("ipd",), opponents=("random",), num_episodes=10, num_rounds=1)
    assert {d["opponent_previous"] for d in fixed.decisions} == {1}
    assert {d["opponent_previous"] for d in drawn.decisions} == {0, 1}


class _LengthPolicy(_FakePolicy):
    """Records the answer length each decide call samples with (``max_new_tokens``), like LLMPolicy."""

    def __init__(self):
        super().__init__()
        self.max_new_tokens = 2
        self.lengths = []

    def decide(self, games, observations):
        self.lengths.append((self.prompt_builder.get("phrasing", "paper"), self.max_new_tokens, len(observations)))
        return super().decide(games, observations)


def test_phrasing_variants_run_the_authors_protocol_ipd_only_5_tokens_fresh_states():
    policy = _LengthPolicy()
    result = evaluate(
        LLMAgent(policy, name="fake"),
        games=("ipd", "stag_hunt"),
        variants=("action34", "unstructured", "action_game_state"),
        num_episodes=10,
        num_rounds=5,
    )
    by_variant = {}
    for d in result.decisions:
        by_variant.setdefault(d["variant"], []).append(d)
    assert {d["game"] for d in by_variant["action34"]} == {"ipd", "stag_hunt"}
    for name in ("unstructured", "action_game_state"):
        rows = by_variant[name]
        assert {d["game"] for d in rows} == {"ipd"} and len(rows) == 50
        assert sorted({(d["episode"], d["round"]) for d in rows}) == [(e, r) for e in range(10) for r in range(1, 6)]
        # The agent always cooperates: a trajectory would show "own previous = C" from round 2 on; fresh states
        # are drawn anew for every query.
        assert {d["own_previous"] for d in rows if d["round"] > 1} == {0, 1}
    assert {d["own_previous"] for d in by_variant["action34"] if d["round"] > 1} == {0}
    # 5 sampled tokens for the phrasing variants, one batch of 50 fresh queries; the policy's 2 otherwise.
    assert ("unstructured", 5, 50) in policy.lengths and ("paper", 2, 10) in policy.lengths
    assert {length for phrasing, length, _ in policy.lengths if phrasing == "paper"} == {2}
    agent = LLMAgent(_LengthPolicy(), name="again")
    agent.set_variant("ipd_like")
    assert agent.policy.max_new_tokens == 5
    agent.set_variant("swapped")
    assert agent.policy.max_new_tokens == 2  # a variant without its own length restores the policy's
    protocols = result.config["variant_protocols"]
    assert protocols["unstructured"] == {"games": ["ipd"], "max_new_tokens": 5, "fresh_states": True}
    assert protocols["action34"] == {"games": ["ipd", "stag_hunt"], "max_new_tokens": None, "fresh_states": False}


def test_fresh_states_are_the_same_for_every_agent_and_the_reference():
    first = evaluate(LLMAgent(_FakePolicy(), name="a"), variants=("ipd_like",), reference=LLMAgent(_FakePolicy()))
    second = evaluate(LLMAgent(_FakePolicy(), name="b"), variants=("ipd_like",))
    states = [
        [(d["own_previous"], d["opponent_previous"]) for d in r.decisions if d["role"] == "agent"]
        for r in (first, second)
    ]
    reference = [(d["own_previous"], d["opponent_previous"]) for d in first.decisions if d["role"] == "reference"]
    assert states[0] == states[1] == reference and len(set(states[0])) == 4
