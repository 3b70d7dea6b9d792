"""The episode runner: one loop for any mix of seats, records equal to the env's infos, joint LLM decisions,
counterfactual scoring (reference models, GRPO groups) that never moves the game."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from moralgym.agents.baselines.q_learning import QLearningAgent
from moralgym.agents.records import ACTION_TYPES, StepRecord, action_types, behaviour_metrics
from moralgym.agents.runner import play_round, run_episodes
from moralgym.agents.seats import SeatStep, StrategySeat
from moralgym.envs import MatrixGameEnv, MoralRewardWrapper
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL
from moralgym.envs.openings import opening_options


def envs(n: int, game: str = "ipd", rounds: int = 3, **kwargs) -> list[MatrixGameEnv]:
    return [MatrixGameEnv(game, num_rounds=rounds, **kwargs) for _ in range(n)]


class Fixed:
    """A seat that always answers ``action`` (and remembers every observation it was shown)."""

    def __init__(self, action: int, name: str = "fixed") -> None:
        self.action, self.name, self.seen = action, name, []

    def reset(self, n: int, seed: int | None = None) -> None:
        pass

    def act(self, games, observations, seat):
        self.seen.append((seat, np.array(observations)))
        return SeatStep(np.full(len(observations), self.action), [f"a{self.action}"] * len(observations))


def test_records_are_the_envs_infos_for_any_mix_of_seats():
    table = np.zeros((9, 2))
    table[:, 1] = 1.0  # greedy: always defect
    seats = {"player_0": QLearningAgent(table), "player_1": StrategySeat("tit_for_tat")}
    played = envs(4)
    mirror = envs(4)
    records = run_episodes(played, seats, seeds=[7, 8, 9, 10])
    assert len(records) == 4 * 3 * 2 and {r.seat for r in records} == {0, 1}
    # Replaying the same moves by hand through fresh envs gives the same infos, field by field.
    observations = [env.reset(seed=s)[0] for env, s in zip(mirror, [7, 8, 9, 10], strict=True)]
    by_round = [[r for r in records if r.round == k] for k in (1, 2, 3)]
    for round_records in by_round:
        for i, env in enumerate(mirror):
            mine = next(r for r in round_records if r.env_index == i and r.seat == 0)
            theirs = next(r for r in round_records if r.env_index == i and r.seat == 1)
            assert mine.own_previous == observations[i]["player_0"][0]
            observations[i], rewards, _, _, infos = env.step({"player_0": mine.action, "player_1": theirs.action})
            info = infos["player_0"]
            assert (mine.action, mine.opponent_action, mine.opponent_previous) == (
                info["action"],
                info["opponent_action"],
                info["opponent_previous"],
            )
            assert mine.moral_rewards == info["moral_rewards"] and mine.reward == rewards["player_0"]
            assert mine.player == "q_learning" and theirs.player == "tit_for_tat"
    assert all(r.action == DEFECT for r in records if r.seat == 0)
    # Tit-for-Tat's move in a round is the learner's previous move: the seats saw the right observations.
    assert all(r.action == r.opponent_previous for r in records if r.seat == 1)


def test_each_seat_is_told_its_seat_index_and_sees_its_own_side():
    row, col = Fixed(COOPERATE, "row"), Fixed(DEFECT, "col")
    run_episodes(envs(2, initial_state="none"), {"player_0": row, "player_1": col}, seeds=[0, 1])
    assert [seat for seat, _ in row.seen] == [0, 0, 0] and [seat for seat, _ in col.seen] == [1, 1, 1]
    # Round 2: the row player sees [own C, other D]; the column player sees [own D, other C].
    assert row.seen[1][1].tolist() == [[COOPERATE, DEFECT]] * 2
    assert col.seen[1][1].tolist() == [[DEFECT, COOPERATE]] * 2


def test_record_selects_agents_and_a_missing_seat_is_an_error():
    seats = {"player_0": Fixed(COOPERATE), "player_1": Fixed(DEFECT)}
    records = run_episodes(envs(2), seats, seeds=[0, 1], record=["player_1"])
    assert {r.seat for r in records} == {1}
    with pytest.raises(ValueError, match="no seat for agents \\['player_1'\\]"):
        run_episodes(envs(1), {"player_0": Fixed(0)}, seeds=[0])
    with pytest.raises(ValueError, match="2 seeds for 1 envs"):
        run_episodes(envs(1), seats, seeds=[0, 1])
    with pytest.raises(ValueError, match="observation_type='multi_discrete'"):
        run_episodes(envs(1, observation_type="one_hot"), seats, seeds=[0])


def test_shadows_are_scored_on_copies_and_never_move_the_game():
    seats = {"player_0": Fixed(COOPERATE, "played"), "player_1": StrategySeat("tit_for_tat")}
    alone = run_episodes(envs(3), seats, seeds=[1, 2, 3])
    shadowed = run_episodes(envs(3), seats, seeds=[1, 2, 3], shadows={"player_0": [Fixed(DEFECT, "reference")]})
    played = [r for r in shadowed if not r.counterfactual]
    assert [r.to_dict() for r in played] == [r.to_dict() for r in alone]  # the trajectory is unchanged
    references = [r for r in shadowed if r.counterfactual]
    rows = [r for r in played if r.seat == 0]
    assert len(references) == len(rows) and {r.player for r in references} == {"reference"}
    for reference, actual in zip(references, rows, strict=True):
        # Same state and opponent move; the reference's defection against a cooperator costs the Deontological xi.
        assert (reference.env_index, reference.round, reference.own_previous) == (
            actual.env_index,
            actual.round,
            actual.own_previous,
        )
        assert reference.opponent_action == actual.opponent_action and reference.action == DEFECT
        penalty = -3.0 if actual.opponent_previous == COOPERATE else 0.0
        assert reference.moral_rewards["deontological"] == penalty


class Grouped(Fixed):
    """A GRPO-like seat: plays its action and offers the other answers of its group as alternatives."""

    def act(self, games, observations, seat):
        n = len(observations)
        return SeatStep(
            np.full(n, self.action),
            decisions=[f"played-{i}" for i in range(n)],
            alternatives=[[(DEFECT, "alt-D"), (ILLEGAL, "alt-illegal")] for _ in range(n)],
        )


def test_alternatives_get_counterfactual_records_from_the_wrapped_envs_reward():
    wrapped = [MoralRewardWrapper(env, "deontological") for env in envs(2, initial_state="none")]
    observations = [env.reset(seed=s)[0] for env, s in zip(wrapped, [0, 1], strict=True)]
    seats = {"player_0": Grouped(COOPERATE), "player_1": Fixed(COOPERATE)}
    _, first = play_round(wrapped, observations, seats, record=["player_0"])
    assert [r.decision for r in first] == ["played-0", "played-1", "alt-D", "alt-illegal", "alt-D", "alt-illegal"]
    assert [r.counterfactual for r in first] == [False] * 2 + [True] * 4
    assert [r.reward for r in first[2:4]] == [0.0, -6.0]  # no previous move yet: defecting is not penalised
    assert all(r.reward_name == "deontological" for r in first)
    assert [env.unwrapped.state().tolist() for env in wrapped] == [[COOPERATE, COOPERATE, 1]] * 2  # moved by C only


class Counting:
    """Counts ``act_together`` calls: a stand-in for LLM seats that decide jointly."""

    calls: list[int] = []

    def __init__(self, action: int) -> None:
        self.action, self.name = action, f"joint{action}"

    def reset(self, n, seed=None):
        pass

    @staticmethod
    def act_together(requests):
        Counting.calls.append(len(requests))
        return [SeatStep(np.full(len(games), seat.action)) for seat, games, _, _ in requests]


def test_seats_that_decide_together_are_asked_in_one_call():
    Counting.calls = []
    seats = {"player_0": Counting(COOPERATE), "player_1": Counting(DEFECT)}
    records = run_episodes(envs(2), seats, seeds=[0, 1])
    assert Counting.calls == [2, 2, 2]  # one joint call per round for both seats
    assert {(r.seat, r.action) for r in records} == {(0, COOPERATE), (1, DEFECT)}


def test_opening_options_show_a_declared_opening_in_every_game():
    seats = {"player_0": Fixed(COOPERATE), "player_1": StrategySeat("always_defect")}
    records = run_episodes(
        envs(16), seats, seeds=list(range(16)), options=opening_options({"player_1": seats["player_1"]}, "random")
    )
    first = [r for r in records if r.round == 1 and r.seat == 0]
    assert {r.opponent_previous for r in first} == {DEFECT}
    assert {r.own_previous for r in first} == {COOPERATE, DEFECT}  # the player's own stays drawn


def test_a_copied_env_plays_on_independently_and_shares_only_read_only_parts():
    env = MatrixGameEnv("chicken", num_rounds=2)
    env.reset(seed=3)
    clone = copy.deepcopy(env)
    assert clone.game is env.game and clone._table is env._table
    clone.step({"player_0": DEFECT, "player_1": DEFECT})
    assert env.state().tolist()[2] == 0 and clone.state().tolist()[2] == 1
    assert env.agents == ["player_0", "player_1"]


def test_behaviour_metrics_and_action_types_from_records():
    def record(action, opponent_previous, opponent_action=COOPERATE, reward=1.0):
        return StepRecord(
            game="ipd",
            env_index=0,
            episode=0,
            round=1,
            seat=0,
            player="p",
            own_previous=0,
            opponent_previous=opponent_previous,
            action=action,
            opponent_action=opponent_action,
            illegal=action == ILLEGAL,
            game_payoff=reward,
            opponent_payoff=0.0,
            moral_rewards={"game": reward},
            reward=reward,
            decision=object(),
        )

    rows = [record(COOPERATE, COOPERATE), record(DEFECT, COOPERATE, DEFECT, 3.0), record(ILLEGAL, DEFECT, reward=-6.0)]
    metrics = behaviour_metrics(rows)
    assert metrics["decisions"] == 3
    assert metrics["cooperation_rate"] == pytest.approx(1 / 3) and metrics["illegal_rate"] == pytest.approx(1 / 3)
    assert metrics["opponent_cooperation_rate"] == pytest.approx(2 / 3)
    assert metrics["reward"] == pytest.approx(-2 / 3) and metrics["reward_game"] == pytest.approx(-2 / 3)
    assert [metrics[f"count_{label}"] for label in ACTION_TYPES] == [1, 0, 1, 0, 0, 1]
    assert action_types(np.array([COOPERATE]), np.array([2])).tolist() == ["C|-"]
    assert "decision" not in rows[0].to_dict() and rows[0].to_dict()["player"] == "p"
