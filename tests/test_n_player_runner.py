"""The episode runner on N-player games: the same loop, records equal to the env's infos, seats that see their own
``[own_previous, others_cooperated]``, N-player strategy seats, counterfactual scoring, and the N-player labels
and metrics of :mod:`moralgym.agents.records`."""

from __future__ import annotations

import numpy as np
import pytest

from moralgym.agents.records import (
    N_PLAYER_FIELDS,
    StepRecord,
    behaviour_metrics,
    n_player_action_type_labels,
    n_player_action_types,
    n_player_outcome_labels,
    n_player_outcomes,
)
from moralgym.agents.runner import play_round, run_episodes
from moralgym.agents.seats import NPlayerStrategySeat, SeatStep, StrategySeat
from moralgym.agents.strategies.n_player import ConditionalCooperator
from moralgym.envs import MatrixGameEnv
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, NO_MOVE
from moralgym.envs.n_player import NPlayerGameEnv, NPlayerMoralRewardWrapper, SchellingGame, get_n_player_game
from moralgym.envs.openings import opening_options

#: The keys of a two-player record's ``to_dict()`` before N-player games existed, in that order.
TWO_PLAYER_KEYS = [
    "game",
    "env_index",
    "episode",
    "round",
    "seat",
    "player",
    "own_previous",
    "opponent_previous",
    "action",
    "opponent_action",
    "illegal",
    "game_payoff",
    "opponent_payoff",
    "moral_rewards",
    "reward",
    "reward_name",
    "text",
    "counterfactual",
]


def n_player_envs(n: int, game: str = "public_goods", players: int = 4, rounds: int = 3, **kwargs) -> list:
    return [NPlayerGameEnv(game, players, num_rounds=rounds, **kwargs) for _ in range(n)]


def agents(players: int) -> list[str]:
    return [f"player_{seat}" for seat in range(players)]


class Script:
    """A seat that plays ``moves[round]`` in every game and remembers what it was shown."""

    def __init__(self, moves: list[int], name: str = "script") -> None:
        self.moves, self.name, self.seen, self.round = moves, name, [], 0

    def reset(self, n: int, seed: int | None = None) -> None:
        self.round = 0

    def act(self, games, observations, seat):
        self.seen.append((seat, list(games), np.array(observations)))
        move = self.moves[self.round]
        self.round += 1
        return SeatStep(np.full(len(observations), move), [f"move {move}"] * len(observations))


def test_records_are_the_n_player_envs_infos():
    players = agents(4)
    seats = {
        "player_0": NPlayerStrategySeat("random"),
        "player_1": NPlayerStrategySeat("conditional_cooperator", threshold=1),
        "player_2": NPlayerStrategySeat("grim_trigger"),
        "player_3": NPlayerStrategySeat("win_stay_lose_shift"),
    }
    seeds = [3, 4, 5]
    records = run_episodes(n_player_envs(3), seats, seeds=seeds, seat_seeds=dict.fromkeys(players, 11))
    assert len(records) == 3 * 3 * 4 and {r.seat for r in records} == {0, 1, 2, 3}
    # Replaying the recorded moves through fresh envs gives the same infos, field by field.
    mirror = n_player_envs(3)
    observations = [env.reset(seed=s)[0] for env, s in zip(mirror, seeds, strict=True)]
    for round_ in (1, 2, 3):
        for i, env in enumerate(mirror):
            mine = {r.seat: r for r in records if r.round == round_ and r.env_index == i}
            seen = observations[i]
            observations[i], rewards, _, _, infos = env.step({a: mine[s].action for s, a in enumerate(players)})
            for seat, agent in enumerate(players):
                record, info = mine[seat], infos[agent]
                assert (record.own_previous, record.others_previous_cooperated) == tuple(seen[agent])
                assert record.others_cooperated == info["others_cooperated"]
                assert record.payoffs == tuple(info["payoffs"]) and record.total_payoff == info["total_payoff"]
                assert record.game_payoff == info["game_payoff"] and record.reward == rewards[agent]
                assert record.moral_rewards == info["moral_rewards"] and len(record.moral_rewards) == 8
                assert record.num_players == 4 and record.n_player
                assert (record.opponent_previous, record.opponent_action, record.opponent_payoff) == (None, None, None)
    assert {r.player for r in records} == {"random", "conditional_cooperator", "grim_trigger", "win_stay_lose_shift"}


def test_each_seat_sees_its_own_count_and_the_schelling_game():
    seats = {"player_0": Script([COOPERATE] * 3), "player_1": Script([DEFECT] * 3), "player_2": Script([COOPERATE] * 3)}
    records = run_episodes(n_player_envs(2, players=3, initial_state="none"), seats, seeds=[0, 1])
    game = get_n_player_game("public_goods", 3)
    for seat, script in enumerate(seats.values()):
        assert [s for s, _, _ in script.seen] == [seat] * 3
        assert all(games == [game, game] and isinstance(games[0], SchellingGame) for _, games, _ in script.seen)
        assert script.seen[0][2].tolist() == [[NO_MOVE, 3]] * 2  # round one: no move yet, N = 3 = none of the others
    # Round 2 from each seat: player_0 and player_2 see one other cooperator (each other), player_1 two.
    assert [script.seen[1][2].tolist()[0] for script in seats.values()] == [[0, 1], [1, 2], [0, 1]]
    first = [r for r in records if r.round == 1 and r.env_index == 0]
    assert [r.others_previous_cooperated for r in first] == [3, 3, 3]  # as shown: nobody had moved yet
    assert [r.others_cooperated for r in first] == [1, 2, 1] and [r.text for r in first] == [
        "move 0",
        "move 1",
        "move 0",
    ]
    # C pays r e (k + 1) / N, D pays e + r e k / N (e = 1, r = 1.6, N = 3).
    assert first[0].payoffs == pytest.approx((1.6 * 2 / 3, 1 + 1.6 * 2 / 3, 1.6 * 2 / 3))
    assert first[0].total_payoff == pytest.approx(1.6 * 4 / 3 + 1 + 3.2 / 3)


def test_only_count_observations_and_one_kind_of_game_per_call():
    seats = {agent: NPlayerStrategySeat("always_cooperate") for agent in agents(3)}
    with pytest.raises(ValueError, match="observation_type full; build the envs with observation_type='count'"):
        run_episodes(n_player_envs(1, players=3, observation_type="full"), seats, seeds=[0])
    two = MatrixGameEnv("ipd", num_rounds=2)
    mixed = [NPlayerGameEnv("n_player_ipd", 2, num_rounds=2), two]
    observations = [env.reset(seed=0)[0] for env in mixed]
    with pytest.raises(ValueError, match="two-player and N-player games together"):
        play_round(mixed, observations, {a: StrategySeat("tit_for_tat") for a in agents(2)})


def test_n_player_strategy_seat_reads_the_n_player_registry_and_one_uniform_per_game():
    assert isinstance(NPlayerStrategySeat("tit_for_tat").strategy, ConditionalCooperator)
    assert type(StrategySeat("tit_for_tat").strategy).__name__ == "TitForTat"
    game = get_n_player_game("public_goods", 4)
    seat = NPlayerStrategySeat("random", p=0.3)
    seat.reset(5, seed=9)
    actions = seat.act([game] * 5, np.zeros((5, 2), dtype=int)).actions
    assert actions.tolist() == (np.random.default_rng(9).random(5) >= 0.3).astype(int).tolist()
    assert seat.initial_move is None and NPlayerStrategySeat("always_defect").initial_move == DEFECT


def test_games_of_different_diagrams_are_decided_per_diagram():
    # Win-stay-lose-shift's default aspiration is the mean of the diagram: 1.3 in this public goods game, 2.125 in
    # this volunteer's dilemma. After C with all 3 others it earned 1.6 (stay: C) and 2 (shift: D); after D with
    # nobody, 1 and 0 (shift: C in both).
    public, volunteers = get_n_player_game("public_goods", 4), get_n_player_game("volunteers_dilemma", 4)
    games = [public, volunteers, public, volunteers]
    observations = np.array([[COOPERATE, 3], [COOPERATE, 3], [DEFECT, 0], [DEFECT, 0]])
    seat = NPlayerStrategySeat("win_stay_lose_shift")
    seat.reset(4, seed=0)
    assert seat.act(games, observations).actions.tolist() == [COOPERATE, DEFECT, COOPERATE, COOPERATE]
    grim = NPlayerStrategySeat("grim_trigger")
    grim.reset(4, seed=0)
    grim.act(games, np.array([[0, 3], [0, 2], [0, 3], [0, 3]]))  # game 1: one other defected -> triggered
    assert grim.memory[:, 0].tolist() == [0, 1, 0, 0]
    assert grim.act(games, np.array([[0, 3]] * 4)).actions.tolist() == [COOPERATE, DEFECT, COOPERATE, COOPERATE]


def test_shadows_and_alternatives_are_scored_on_copies_with_the_wrapped_n_player_reward():
    def envs():
        return [NPlayerMoralRewardWrapper(env, "deontological") for env in n_player_envs(3, players=3)]

    seats = {
        "player_0": NPlayerStrategySeat("always_cooperate", name="played"),
        "player_1": NPlayerStrategySeat("random"),
        "player_2": NPlayerStrategySeat("conditional_cooperator"),
    }
    seat_seeds = {agent: 5 + seat for seat, agent in enumerate(seats)}
    alone = run_episodes(envs(), seats, seeds=[1, 2, 3], seat_seeds=seat_seeds)
    reference = NPlayerStrategySeat("always_defect", name="reference")
    shadowed = run_episodes(envs(), seats, seeds=[1, 2, 3], seat_seeds=seat_seeds, shadows={"player_0": [reference]})
    played = [r for r in shadowed if not r.counterfactual]
    assert [r.to_dict() for r in played] == [r.to_dict() for r in alone]  # the trajectory is unchanged
    references = [r for r in shadowed if r.counterfactual]
    rows = [r for r in played if r.seat == 0]
    assert len(references) == len(rows) and {r.player for r in references} == {"reference"}
    for reference, actual in zip(references, rows, strict=True):
        assert (reference.env_index, reference.round) == (actual.env_index, actual.round)
        assert reference.others_cooperated == actual.others_cooperated and reference.action == DEFECT
        # Share norm: defecting after k of the 2 others cooperated costs 3 k / 2 (none had moved: k = 0 counted).
        k = actual.others_previous_cooperated
        assert reference.reward == pytest.approx(-3.0 * k / 2) and reference.reward_name == "deontological"


def test_alternatives_of_an_n_player_seat_do_not_move_the_game():
    class Grouped(Script):
        def act(self, games, observations, seat):
            n = len(observations)
            return SeatStep(
                np.full(n, COOPERATE),
                decisions=["played"] * n,
                alternatives=[[(DEFECT, "alt-D"), (ILLEGAL, "alt-illegal")] for _ in range(n)],
            )

    envs = n_player_envs(2, players=3, initial_state="none")
    observations = [env.reset(seed=s)[0] for env, s in zip(envs, [0, 1], strict=True)]
    seats = {"player_0": Grouped([]), "player_1": Script([COOPERATE]), "player_2": Script([COOPERATE])}
    _, records = play_round(envs, observations, seats, record=["player_0"])
    assert [r.decision for r in records] == ["played"] * 2 + ["alt-D", "alt-illegal"] * 2
    # The defection takes 1 + 1.6 * 2 / 3 from two cooperators; the illegal answer earns 0 and the others' 1.6 * 2 / 3.
    assert [r.game_payoff for r in records[2:4]] == pytest.approx([1 + 3.2 / 3, 0.0])
    assert records[3].reward == -6.0 and records[3].illegal and records[3].others_cooperated == 2
    assert [env.state().tolist() for env in envs] == [[COOPERATE] * 3 + [1]] * 2  # moved by the played C only


def test_declared_openings_of_co_players_are_shown_in_round_one():
    seats = {
        "player_0": Script([COOPERATE]),
        "player_1": NPlayerStrategySeat("always_defect"),
        "player_2": NPlayerStrategySeat("always_cooperate"),
    }
    options = opening_options({a: seats[a] for a in ("player_1", "player_2")}, "random")
    records = run_episodes(n_player_envs(16, players=3, rounds=1), seats, seeds=list(range(16)), options=options)
    first = [r for r in records if r.seat == 0]
    assert {r.others_previous_cooperated for r in first} == {1}  # always C shown C, always D shown D
    assert {r.own_previous for r in first} == {COOPERATE, DEFECT}  # the player's own stays drawn


def record(action, seen, others_now, players=3, payoffs=(1.0, 1.0, 1.0), reward=1.0):
    return StepRecord(
        game="public_goods",
        env_index=0,
        episode=0,
        round=1,
        seat=0,
        player="p",
        own_previous=0,
        opponent_previous=None,
        action=action,
        opponent_action=None,
        illegal=action == ILLEGAL,
        game_payoff=payoffs[0],
        opponent_payoff=None,
        moral_rewards={"game": reward},
        reward=reward,
        num_players=players,
        others_previous_cooperated=seen,
        others_cooperated=others_now,
        payoffs=payoffs,
        total_payoff=float(sum(payoffs)),
    )


def test_n_player_labels_by_hand():
    assert n_player_action_type_labels(2) == ("C|1", "C|0", "D|1", "D|0", "illegal|1", "illegal|0")
    assert n_player_action_type_labels(4)[:4] == ("C|3", "C|2", "C|1", "C|0")
    labels = n_player_action_types(np.array([0, 1, 1, ILLEGAL]), np.array([3, 0, 4, 2]), 4)
    assert labels.tolist() == ["C|3", "D|0", "D|-", "illegal|2"]
    assert n_player_outcome_labels(2) == ("cooperators_2", "cooperators_1", "cooperators_0", "illegal")
    assert n_player_outcomes(np.array([0, 1, ILLEGAL]), np.array([3, 0, 3])).tolist() == [
        "cooperators_4",
        "cooperators_0",
        "illegal",
    ]


def test_behaviour_metrics_of_n_player_records():
    rows = [
        record(COOPERATE, 2, 2, payoffs=(1.6, 1.6, 1.6)),
        record(DEFECT, 2, 1, payoffs=(1.0 + 1.6 / 3, 1.6 / 3, 1.0 + 1.6 / 3), reward=2.0),
        record(ILLEGAL, 0, 0, payoffs=(0.0, 1.0, 1.0), reward=-6.0),
    ]
    metrics = behaviour_metrics(rows)
    assert metrics["decisions"] == 3 and "opponent_cooperation_rate" not in metrics
    assert metrics["cooperation_rate"] == pytest.approx(1 / 3) and metrics["illegal_rate"] == pytest.approx(1 / 3)
    assert metrics["others_cooperation_rate"] == pytest.approx((2 / 2 + 1 / 2 + 0) / 3)
    assert metrics["mean_total_payoff"] == pytest.approx((4.8 + 3.6 + 2.0) / 3)
    assert metrics["reward"] == pytest.approx(-1.0) and metrics["reward_game"] == pytest.approx(-1.0)
    counts = {label: metrics[f"count_{label}"] for label in n_player_action_type_labels(3)}
    assert counts == {
        "C|2": 1,
        "C|1": 0,
        "C|0": 0,
        "D|2": 1,
        "D|1": 0,
        "D|0": 0,
        "illegal|2": 0,
        "illegal|1": 0,
        "illegal|0": 1,
    }
    two_player = StepRecord("ipd", 0, 0, 1, 0, "p", 0, 0, 0, 0, False, 3.0, 3.0, {"game": 3.0}, 3.0)
    with pytest.raises(ValueError, match="two-player and N-player games together"):
        behaviour_metrics([two_player, *rows])


def test_to_dict_keeps_two_player_rows_as_they_were_and_adds_the_n_player_fields():
    seats = {"player_0": StrategySeat("tit_for_tat"), "player_1": StrategySeat("random")}
    two = run_episodes([MatrixGameEnv("ipd", num_rounds=1)], seats, seeds=[0])
    assert [list(r.to_dict()) for r in two] == [TWO_PLAYER_KEYS] * 2
    seats = {agent: NPlayerStrategySeat("random") for agent in agents(3)}
    many = run_episodes(n_player_envs(1, players=3, rounds=1), seats, seeds=[0])
    row = many[0].to_dict()
    assert list(row) == TWO_PLAYER_KEYS + list(N_PLAYER_FIELDS)
    assert row["num_players"] == 3 and len(row["payoffs"]) == 3 and row["opponent_action"] is None
