"""How a legal player is paid when its partner answered illegally: the env's ``partner_illegal`` option.

Hand-worked IPD numbers (row payoffs CC 3, CD 0, DC 4, DD 1; xi = 3; illegal -6). The partner's illegal answer
leaves its last legal move standing; the legal player's rewards are

=========================  ===================================  ==============  =================
case (partner last legal)   rule                                  game, de        ut, game_de
=========================  ===================================  ==============  =================
D after the partner's C     last_legal (default)                  4, -3           4, 1
D after the partner's C     authors                               4, -3           0, -6
C after the partner's C     last_legal / authors                  3, 0            3, 3 / 0, -6
D after the partner's D     last_legal / authors                  1, 0            1, 1 / 0, -6
=========================  ===================================  ==============  =================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moralgym.envs import ILLEGAL, MatrixGameEnv, MoralRewardWrapper, RewardInputs, reward_components
from moralgym.envs.games import COOPERATE as C
from moralgym.envs.games import DEFECT as D
from moralgym.envs.rewards import PARTNER_ILLEGAL_RULES
from moralgym.envs.single_agent import SingleAgentMatrixGameEnv
from moralgym.envs.vector import MatrixGameVectorEnv

REPO = Path(__file__).resolve().parents[1]
ALL_ILLEGAL = {"game": -6.0, "deontological": -6.0, "utilitarian": -6.0, "game_deontological": -6.0}

# (partner's last legal move, legal player's move, rule) -> the legal player's four rewards
EXPECTED = {
    (C, D, "last_legal"): {"game": 4.0, "deontological": -3.0, "utilitarian": 4.0, "game_deontological": 1.0},
    (C, D, "authors"): {"game": 4.0, "deontological": -3.0, "utilitarian": 0.0, "game_deontological": -6.0},
    (C, C, "last_legal"): {"game": 3.0, "deontological": 0.0, "utilitarian": 3.0, "game_deontological": 3.0},
    (C, C, "authors"): {"game": 3.0, "deontological": 0.0, "utilitarian": 0.0, "game_deontological": -6.0},
    (D, D, "last_legal"): {"game": 1.0, "deontological": 0.0, "utilitarian": 1.0, "game_deontological": 1.0},
    (D, D, "authors"): {"game": 1.0, "deontological": 0.0, "utilitarian": 0.0, "game_deontological": -6.0},
}


def play_partner_illegal(partner_last: int, move: int, legal_seat: str, **env_kwargs):
    """Round 1 sets the partner's last legal move, round 2 the partner answers illegally."""
    env = MatrixGameEnv(initial_state="none", num_rounds=2, **env_kwargs)
    env.reset(seed=0)
    illegal_seat = "player_1" if legal_seat == "player_0" else "player_0"
    env.step({legal_seat: C, illegal_seat: partner_last})
    _, rewards, _, _, infos = env.step({legal_seat: move, illegal_seat: ILLEGAL})
    return rewards, infos, legal_seat, illegal_seat


@pytest.mark.parametrize("legal_seat", ["player_0", "player_1"])
@pytest.mark.parametrize("case", sorted(EXPECTED, key=str))
def test_each_reward_under_each_rule_when_the_partner_is_illegal(case, legal_seat):
    partner_last, move, rule = case
    rewards, infos, me, other = play_partner_illegal(partner_last, move, legal_seat, partner_illegal=rule)
    assert infos[me]["moral_rewards"] == EXPECTED[case]
    assert rewards[me] == EXPECTED[case]["game"]
    assert infos[me]["partner_illegal"] == rule
    # the illegal player itself and the game payoffs do not depend on the rule
    assert infos[other]["moral_rewards"] == ALL_ILLEGAL and rewards[other] == -6.0
    assert infos[me]["game_payoff"] == EXPECTED[case]["game"] and infos[other]["game_payoff"] == 0.0


def test_default_is_last_legal_and_unchanged():
    env = MatrixGameEnv()
    assert env.partner_illegal == "last_legal"
    rewards, infos, me, _ = play_partner_illegal(C, D, "player_0")
    assert infos[me]["moral_rewards"] == EXPECTED[(C, D, "last_legal")]
    # RewardInputs built without a rule (as the wrapper and the evaluation do) pays as before
    inputs = RewardInputs(
        own_action=D, opponent_action=ILLEGAL, opponent_previous=C, own_payoff=4.0, opponent_payoff=0.0
    )
    assert {k: float(v) for k, v in reward_components(inputs).items()} == EXPECTED[(C, D, "last_legal")]
    wrapped = MoralRewardWrapper(MatrixGameEnv(initial_state="none", num_rounds=2), "utilitarian")
    wrapped.reset(seed=0)
    wrapped.step({"player_0": C, "player_1": C})
    _, wrapped_rewards, *_ = wrapped.step({"player_0": D, "player_1": ILLEGAL})
    assert wrapped_rewards["player_0"] == 4.0


def test_both_illegal_pay_the_illegal_reward_under_both_rules():
    for rule in PARTNER_ILLEGAL_RULES:
        env = MatrixGameEnv(initial_state="none", num_rounds=2, partner_illegal=rule)
        env.reset(seed=0)
        env.step({"player_0": C, "player_1": C})
        _, rewards, _, _, infos = env.step({"player_0": ILLEGAL, "player_1": ILLEGAL})
        assert rewards == {"player_0": -6.0, "player_1": -6.0}
        assert infos["player_0"]["moral_rewards"] == infos["player_1"]["moral_rewards"] == ALL_ILLEGAL


def test_partner_legal_rounds_do_not_depend_on_the_rule():
    rounds = [{"player_0": a, "player_1": b} for a in (C, D, ILLEGAL) for b in (C, D)]
    results = {}
    for rule in PARTNER_ILLEGAL_RULES:
        env = MatrixGameEnv(num_rounds=len(rounds), partner_illegal=rule)
        env.reset(seed=3)
        results[rule] = [env.step(actions)[4]["player_0"]["moral_rewards"] for actions in rounds]
    assert results["authors"] == results["last_legal"]


def test_reward_objects_follow_the_rule_on_their_inputs():
    from moralgym.envs import get_reward

    inputs = RewardInputs(D, ILLEGAL, C, 4.0, 0.0, partner_illegal="authors")
    assert float(get_reward("utilitarian")(inputs)) == 0.0
    assert float(get_reward("game_deontological", illegal_reward=-15)(inputs)) == -15.0  # the configured value
    assert float(get_reward("game")(inputs)) == 4.0
    assert float(get_reward("deontological")(inputs)) == -3.0
    schedule = get_reward("game_then_utilitarian", switch_episode=2)
    assert float(schedule.at(0)(inputs)) == 4.0 and float(schedule.at(2)(inputs)) == 0.0


class IllegalOpponent:
    """A fixed strategy that always answers illegally, shown as having cooperated before round one."""

    name = "always_illegal"
    stochastic = False
    initial_move = C

    def initial_memory(self, n):
        return np.zeros((n, 0), dtype=np.int64)

    def act_batch(self, observations, memory, uniforms):
        return np.full(len(observations), ILLEGAL, dtype=np.int64), memory


@pytest.mark.parametrize("rule", PARTNER_ILLEGAL_RULES)
def test_vector_and_single_agent_envs_apply_the_rule(rule):
    expected = EXPECTED[(C, D, rule)]
    vector = MatrixGameVectorEnv(3, opponent=IllegalOpponent(), reward="utilitarian", partner_illegal=rule)
    vector.reset(seed=0)
    _, rewards, _, _, info = vector.step(np.array([D, D, D]))
    assert rewards.tolist() == [expected["utilitarian"]] * 3
    assert {k: v.tolist() for k, v in info["moral_rewards"].items()} == {k: [v] * 3 for k, v in expected.items()}
    single = SingleAgentMatrixGameEnv(opponent=IllegalOpponent(), reward="game_deontological", partner_illegal=rule)
    single.reset(seed=0)
    _, reward, _, _, step_info = single.step(D)
    assert reward == expected["game_deontological"] and step_info["moral_rewards"] == expected


def test_bad_rule_is_rejected_naming_the_value_and_the_accepted_ones():
    for build in (
        lambda: MatrixGameEnv(partner_illegal="paper"),
        lambda: MatrixGameVectorEnv(2, partner_illegal="paper"),
        lambda: RewardInputs(D, ILLEGAL, C, 4.0, 0.0, partner_illegal="paper"),
    ):
        with pytest.raises(ValueError, match=r"partner_illegal must be one of 'last_legal', 'authors', got 'paper'"):
            build()


def test_training_config_option_reaches_the_trained_rewards(tmp_path):
    pytest.importorskip("torch")
    from moralgym.training.config import TrainingConfig
    from moralgym.training.rollout import make_envs

    assert TrainingConfig().partner_illegal == "last_legal"
    with pytest.raises(ValueError, match=r"partner_illegal must be one of last_legal, authors, got 'paper'"):
        TrainingConfig(partner_illegal="paper")
    paid = {}
    for rule in PARTNER_ILLEGAL_RULES:
        for reward in ("game", "deontological", "utilitarian", "game_deontological", "game_then_utilitarian"):
            config = TrainingConfig(
                output_dir=str(tmp_path), opponent="llm", reward=reward, switch_episode=1, partner_illegal=rule
            )
            (env,) = make_envs(config, start_episode=1)  # episode 1: game_then_utilitarian pays Utilitarian
            env.reset(seed=0)
            env.step({"player_0": C, "player_1": C})
            _, rewards, _, _, infos = env.step({"player_0": D, "player_1": ILLEGAL})  # reward of player_0: D after C
            assert rewards["player_1"] == -6.0 and infos["player_0"]["partner_illegal"] == rule
            paid[rule, reward] = rewards["player_0"]
    assert paid == {
        ("last_legal", "game"): 4.0,
        ("last_legal", "deontological"): -3.0,
        ("last_legal", "utilitarian"): 4.0,
        ("last_legal", "game_deontological"): 1.0,
        ("last_legal", "game_then_utilitarian"): 4.0,
        ("authors", "game"): 4.0,
        ("authors", "deontological"): -3.0,
        ("authors", "utilitarian"): 0.0,
        ("authors", "game_deontological"): -6.0,
        ("authors", "game_then_utilitarian"): 0.0,
    }


def test_llm_vs_llm_paper_configs_use_the_authors_rule():
    yaml = pytest.importorskip("yaml")
    configs = sorted((REPO / "configs" / "paper").glob("*.yaml"))
    assert configs
    for path in configs:
        rule = yaml.safe_load(path.read_text()).get("partner_illegal", "last_legal")
        assert rule == ("authors" if path.stem.endswith("_vs_llm") else "last_legal"), path.name


@pytest.mark.parametrize("rule", PARTNER_ILLEGAL_RULES)
def test_the_reward_wrapper_pays_under_the_envs_rule(rule):
    """MoralRewardWrapper rebuilds each round's inputs from the step infos: it must carry the env's rule."""
    rewards = {"player_0": "utilitarian", "player_1": "game_deontological"}
    env = MoralRewardWrapper(MatrixGameEnv(initial_state="none", num_rounds=2, partner_illegal=rule), rewards)
    env.reset(seed=0)
    env.step({"player_0": C, "player_1": C})
    _, paid, _, _, infos = env.step({"player_0": D, "player_1": ILLEGAL})
    assert (
        paid["player_0"] == EXPECTED[(C, D, rule)]["utilitarian"] == infos["player_0"]["moral_rewards"]["utilitarian"]
    )
    assert paid["player_1"] == -6.0
