"""Training rollouts show Always Cooperate's round-one "previous move" as C and Always Defect's as D in every
episode (docs/reproduction.md), as evaluation does; against Tit-for-Tat and Random both previous moves stay drawn, and the
learner's own first previous move is drawn against every opponent."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.envs import make_opponent  # noqa: E402
from moralgym.envs.games import COOPERATE as C  # noqa: E402
from moralgym.envs.games import DEFECT as D  # noqa: E402
from moralgym.training.config import TrainingConfig  # noqa: E402

FIXED = {"always_cooperate": C, "always_defect": D}
EPISODES = 4
NUM_ENVS = 8


def config_for(tmp_path, opponent, **overrides):
    values = dict(
        output_dir=str(tmp_path), opponent=opponent, num_envs=NUM_ENVS, num_rounds=2, answer_prefix="action", seed=3
    )
    values.update(overrides)
    return TrainingConfig(**values)


def first_round_previous_moves(tmp_path, opponent):
    """``(own, opponent)`` previous moves of round one, per game of every PPO rollout episode."""
    from moralgym.agents.llm.policy import LLMPolicy
    from moralgym.agents.llm.prompts import PromptBuilder
    from moralgym.training.rollout import make_envs, play_episode

    config = config_for(tmp_path, opponent)
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    policy = LLMPolicy(model, tokenizer, prompt=PromptBuilder(tokens="action12", answer_prefix="action"), seed=0)
    envs = make_envs(config, start_episode=0)
    moves = []
    for episode in range(EPISODES):
        rollout = play_episode(envs, {"player_0": policy}, make_opponent(opponent), seed=config.seed, episode=episode)
        moves += [(s.own_previous, s.opponent_previous) for s in rollout.samples["player_0"] if s.round == 1]
    assert len(moves) == EPISODES * NUM_ENVS
    return moves


@pytest.mark.parametrize("opponent", ["always_cooperate", "always_defect", "tit_for_tat", "random"])
def test_ppo_rollouts_fix_the_previous_move_of_always_cooperate_and_always_defect(tmp_path, opponent):
    moves = first_round_previous_moves(tmp_path, opponent)
    own = {m[0] for m in moves}
    theirs = {m[1] for m in moves}
    assert own == {C, D}  # 32 draws: the learner's previous move is drawn against every opponent
    assert theirs == ({FIXED[opponent]} if opponent in FIXED else {C, D})


@pytest.mark.parametrize("opponent", ["always_cooperate", "always_defect", "tit_for_tat"])
def test_grpo_rollouts_fix_it_too(tmp_path, opponent):
    from moralgym.agents.llm.testing import tiny_byte_tokenizer
    from moralgym.training.grpo import GroupRollout

    rollout = GroupRollout(config_for(tmp_path, opponent, algorithm="grpo"), tiny_byte_tokenizer())
    seen = set()
    for _ in range(EPISODES):
        for index in range(NUM_ENVS):
            rollout.observations[index] = None  # start a new episode in this env
            seen.add(int(rollout._observation(index)["player_0"][1]))
    assert seen == ({FIXED[opponent]} if opponent in FIXED else {C, D})


def test_opening_options_name_only_players_with_a_declared_opening():
    from moralgym.agents.seats import StrategySeat
    from moralgym.envs.openings import opening_options

    assert opening_options({"player_1": make_opponent("always_defect")}, "random") == {
        "previous_moves": {"player_1": D}
    }
    assert opening_options({"player_1": StrategySeat("always_cooperate")}, "random") == {
        "previous_moves": {"player_1": C}
    }
    assert opening_options({"player_1": make_opponent("tit_for_tat")}, "random") is None
    assert opening_options({"player_1": None}, "random") is None  # LLM vs LLM
    assert opening_options({"player_1": make_opponent("always_defect")}, "none") is None


def test_numpy_q_learning_applies_the_opening_rule():
    # Against Always Defect the learner only ever sees states where the opponent's previous move is D.
    from moralgym.agents.baselines.q_learning import QLearningConfig, train_q_learning

    table = train_q_learning(
        QLearningConfig(reward="game", opponent="always_defect", total_steps=2_000, seed=0, backend="numpy")
    ).q_tables[0]
    visited = {state for state in range(9) if table[state].any()}
    assert visited and all(state % 3 == D for state in visited)
