"""Tabular Q-learning: the classical baseline a moral reward is expected to shape (no LLM, no torch).

State = the previous joint move ``[own_previous, opponent_previous]`` coded ``own * 3 + opponent`` (3 x 3 states,
2 = no move yet); actions 0 (C) / 1 (D); epsilon-greedy with epsilon decaying linearly from ``epsilon_start`` to
``epsilon`` over the first ``exploration_fraction`` of training; greedy ties go to cooperation (lowest index).

One Q-table is shared by ``num_envs`` parallel games; each step applies one update per visited (state, action):
``Q += learning_rate * mean(TD errors of the games that visited it)``. Episodes are *truncated* after
``num_rounds`` (the repeated game is cut, not over), so the target always bootstraps:
``r + discount * max_a Q(s', a)``, also on the last round.

Backends (``QLearningConfig.backend``): ``"vector"`` steps :class:`~moralgym.envs.vector.MatrixGameVectorEnv`,
``"single"`` the Gymnasium single-agent env (one game), ``"numpy"`` a plain numpy loop over the envs' own outcome
tables, without the env's bookkeeping (the speed reference of ``benchmarks/baselines.py``, and the self-play
backend).
``opponent="self"`` trains two learners against each other (each with its own table, same reward).

**N-player games.** With an N-player game name (``game="public_goods"``, any of
:func:`~moralgym.envs.n_player.list_n_player_games`; ``num_players`` players, default 4) the learner is seat 0 and
every other seat plays ``opponent``, an N-player strategy name (:mod:`moralgym.agents.strategies.n_player`). The
state is the N-player envs' ``[own_previous, others_cooperated]`` coded ``own * (N + 1) + others`` (``3 (N + 1)``
states; ``others = N`` is "none of them has moved yet"), the reward an N-player moral reward
(:func:`~moralgym.envs.n_player.get_n_player_reward`), the update the same. ``"vector"`` steps
:class:`~moralgym.envs.n_player.NPlayerGameVectorEnv`, ``"single"`` the N-player Gymnasium env and ``"numpy"`` the
numpy core of both (:class:`~moralgym.envs.n_player.batch.NPlayerGameBatch`, the same rules, rewards and
co-players) without the Gymnasium wrapper: finished games are reset by mask, so no step is spent on an autoreset.
Self-play is two-player only.

>>> result = train_q_learning(QLearningConfig(reward="utilitarian", total_steps=2_000, seed=0))
>>> result.agent().greedy_actions().tolist()  # cooperate in every state
[0, 0, 0, 0, 0, 0, 0, 0, 0]
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moralgym.envs.games import GAMES, NO_MOVE, MatrixGame, get_game, list_games
from moralgym.envs.n_player.games import N_PLAYER_GAMES, SchellingGame, get_n_player_game, list_n_player_games
from moralgym.envs.n_player.opponents import make_n_player_opponent
from moralgym.envs.n_player.rewards import get_n_player_reward
from moralgym.envs.openings import opening_move
from moralgym.envs.opponents import make_opponent
from moralgym.envs.outcomes import STATE_TO_SWAPPED_OBSERVATION, OutcomeTable, round_code, state_code
from moralgym.envs.rewards import DEFAULT_ILLEGAL_REWARD, DEFAULT_PENALTY, get_reward

N_STATES = 9
N_ACTIONS = 2
#: State code seen from the other seat: ``own * 3 + other`` -> ``other * 3 + own``.
SWAPPED_STATE = state_code(STATE_TO_SWAPPED_OBSERVATION[:, 0], STATE_TO_SWAPPED_OBSERVATION[:, 1])
BACKENDS = ("auto", "vector", "single", "numpy")


@dataclass
class QLearningConfig:
    """Tabular Q-learning settings; ``total_steps`` counts transitions (decisions) summed over parallel games."""

    reward: str = field(default="game", metadata={"help": "moral reward name (game, deontological, utilitarian, ...)"})
    opponent: str = field(
        default="tit_for_tat",
        metadata={"help": "strategy name (in an N-player game: every co-player's), or 'self' for two learners"},
    )
    game: str = field(default="ipd", metadata={"help": "game to train on: a two-player or an N-player game name"})
    num_players: int | None = field(
        default=None, metadata={"help": "players of an N-player game (default 4); unset for a two-player game"}
    )
    discount: float = field(default=0.95, metadata={"help": "discount factor gamma in [0, 1)"})
    learning_rate: float = field(default=0.2, metadata={"help": "step size alpha in (0, 1]"})
    epsilon: float = field(default=0.05, metadata={"help": "final exploration rate"})
    epsilon_start: float = field(default=1.0, metadata={"help": "initial exploration rate"})
    exploration_fraction: float = field(default=0.5, metadata={"help": "share of training over which epsilon decays"})
    total_steps: int = field(default=20_000, metadata={"help": "transitions to train on, all parallel games together"})
    num_envs: int = field(default=32, metadata={"help": "parallel games sharing the table"})
    num_rounds: int = field(default=5, metadata={"help": "rounds per episode (truncation)"})
    initial_state: str = field(default="random", metadata={"help": "'random' (paper) or 'none'"})
    penalty: float = field(default=DEFAULT_PENALTY, metadata={"help": "Deontological penalty xi"})
    illegal_reward: float = field(default=DEFAULT_ILLEGAL_REWARD, metadata={"help": "reward of an illegal move"})
    seed: int = field(default=0, metadata={"help": "seeds the environments and the exploration"})
    backend: str = field(default="auto", metadata={"help": "auto (vector, else single), vector, single or numpy"})
    log_every: int = field(default=1_000, metadata={"help": "transitions between two rows of training metrics"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount must be in [0, 1), got {self.discount!r}")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        for name in ("epsilon", "epsilon_start", "exploration_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("total_steps", "num_envs", "num_rounds", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.n_player:
            self._check_n_player()
            return
        if isinstance(self.game, str) and self.game not in GAMES:
            raise KeyError(
                f"unknown game {self.game!r}; known two-player games: {', '.join(list_games())}; N-player games: "
                f"{', '.join(list_n_player_games())}"
            )
        if self.num_players not in (None, 2):
            raise ValueError(
                f"game {self.game!r} has two players, got num_players={self.num_players!r}; leave num_players unset "
                f"or train on an N-player game ({', '.join(list_n_player_games())})"
            )
        get_game(self.game)
        get_reward(self.reward)
        if self.opponent != "self":
            make_opponent(self.opponent)

    @property
    def n_player(self) -> bool:
        """Whether :attr:`game` names an N-player game (:mod:`moralgym.envs.n_player`) rather than a two-player one."""
        return isinstance(self.game, str) and self.game in N_PLAYER_GAMES

    def _check_n_player(self) -> None:
        """Validate an N-player game's settings and record its number of players (default 4) in ``num_players``."""
        self.num_players = get_n_player_game(self.game, self.num_players).num_players
        get_n_player_reward(self.reward)
        if self.opponent == "self":
            raise ValueError(
                f"opponent='self' trains two learners against each other in a two-player game; for the N-player "
                f"game {self.game!r} name the co-players' strategy, e.g. opponent='conditional_cooperator'"
            )
        make_n_player_opponent(self.opponent)

    @property
    def num_states(self) -> int:
        """Rows of the Q-table: 3 x 3 previous joint moves, or ``3 (N + 1)`` N-player views."""
        return 3 * (self.num_players + 1) if self.n_player else N_STATES

    def state_codes(self, observations: np.ndarray) -> np.ndarray:
        """The state code of each observation ``[own, other]`` (``own * 3 + other``) or, in an N-player game,
        ``[own, others_cooperated]`` (``own * (N + 1) + others``)."""
        base = self.num_players + 1 if self.n_player else 3
        return observations[..., 0] * base + observations[..., 1]

    def env_kwargs(self) -> dict[str, object]:
        """The environment arguments every training backend passes on (one list, so backends cannot drift)."""
        if self.n_player:
            return {
                "game": self.game,
                "num_players": self.num_players,
                "co_players": self.opponent,
                "reward": self.reward,
                "num_rounds": self.num_rounds,
                "initial_state": self.initial_state,
                "penalty": self.penalty,
                "illegal_reward": self.illegal_reward,
            }
        return {
            "game": self.game,
            "opponent": self.opponent,
            "reward": self.reward,
            "num_rounds": self.num_rounds,
            "initial_state": self.initial_state,
            "penalty": self.penalty,
            "illegal_reward": self.illegal_reward,
        }

    def epsilon_at(self, step: int) -> float:
        horizon = max(1.0, self.exploration_fraction * self.total_steps)
        progress = min(1.0, step / horizon)
        return self.epsilon_start + progress * (self.epsilon - self.epsilon_start)


class QLearningAgent:
    """A greedy policy from a Q-table, usable as an evaluation agent (``reset``/``act``) and as an opponent
    strategy (``initial_memory``/``act_batch``).

    ``num_players``: ``None`` for a table over two-player states (9 rows), ``N`` for one over the views of an
    N-player game of ``N`` players (``3 (N + 1)`` rows). The two are told apart explicitly because at ``N = 2``
    both have 9 rows but read different observations (the other's move vs. how many others cooperated); a table
    shown a game of the other kind, or of another ``N``, is a ``ValueError`` rather than a silent misreading.
    """

    memory_width = 0
    stochastic = False

    def __init__(self, q_table: np.ndarray, name: str = "q_learning", num_players: int | None = None) -> None:
        q_table = np.asarray(q_table, dtype=np.float64)
        if num_players is not None and (
            isinstance(num_players, bool) or not isinstance(num_players, (int, np.integer)) or num_players < 2
        ):
            raise ValueError(f"num_players must be an integer >= 2 (or None for two-player games), got {num_players!r}")
        states = N_STATES if num_players is None else 3 * (int(num_players) + 1)
        if q_table.shape != (states, N_ACTIONS):
            which = "" if num_players is None else f" (3 (N + 1) states for N = {num_players} players)"
            raise ValueError(f"q_table must have shape {(states, N_ACTIONS)}{which}, got {q_table.shape}")
        self.q_table = q_table
        self.name = name
        self.num_players = None if num_players is None else int(num_players)

    def greedy_actions(self) -> np.ndarray:
        """The action in each state (index ``own * 3 + opponent``, or ``own * (N + 1) + others`` in an N-player
        game); ties -> cooperate."""
        return np.argmax(self.q_table, axis=1)

    def policy(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, dtype=np.int64)
        base = 3 if self.num_players is None else self.num_players + 1
        return self.greedy_actions()[observations[:, 0] * base + observations[:, 1]]

    def check_game(self, game: MatrixGame | SchellingGame) -> None:
        """Raise ``ValueError`` unless the table was trained for ``game``'s kind and number of players."""
        players = game.num_players if isinstance(game, SchellingGame) else None
        if players == self.num_players:
            return
        trained = "a two-player game" if self.num_players is None else f"{self.num_players}-player games"
        shown = "a two-player game" if players is None else f"a {players}-player game"
        raise ValueError(
            f"Q-learner {self.name!r} was trained on {trained} and cannot read the states of {shown} "
            f"({game.name!r}); train one on it, e.g. train_q_learning(game={game.name!r}"
            + ("" if players is None else f", num_players={players}")
            + ")"
        )

    # seat protocol (moralgym.agents.seats): greedy, so nothing to reset or seed
    def reset(self, n: int, seed: int | None = None) -> None:
        pass

    def act(self, games: Sequence[MatrixGame | SchellingGame], observations: np.ndarray, seat: int = 0) -> np.ndarray:
        if games:
            self.check_game(games[0])
        return self.policy(observations)

    # opponent-strategy protocol (two-player; with ``game``, the N-player one)
    def initial_memory(self, n: int) -> np.ndarray:
        return np.zeros((n, 0), dtype=np.int64)

    def act_batch(
        self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray, game: SchellingGame | None = None
    ):
        if game is not None:
            self.check_game(game)
        return self.policy(observations), memory

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        data: dict[str, Any] = {"name": self.name, "q_table": self.q_table.tolist()}
        if self.num_players is not None:
            data["num_players"] = self.num_players
        path.write_text(json.dumps(data))
        return path

    @classmethod
    def load(cls, path: str | Path) -> QLearningAgent:
        data = json.loads(Path(path).read_text())
        return cls(np.array(data["q_table"]), name=data.get("name", "q_learning"), num_players=data.get("num_players"))

    def __repr__(self) -> str:
        letters = "".join("CD"[a] for a in self.greedy_actions())
        players = "" if self.num_players is None else f", num_players={self.num_players}"
        return f"QLearningAgent(name={self.name!r}, greedy={letters}{players})"


@dataclass
class QLearningResult:
    """Trained table(s), the metrics logged during training (one dict per ``log_every`` transitions) and speed."""

    config: QLearningConfig
    q_tables: list[np.ndarray]
    metrics: list[dict[str, Any]]
    steps_per_second: float

    def agent(self, index: int = 0, name: str | None = None) -> QLearningAgent:
        default = f"q_learning:{self.config.reward}" + ("" if index == 0 else f":{index}")
        players = self.config.num_players if self.config.n_player else None
        return QLearningAgent(self.q_tables[index], name=name or default, num_players=players)


def _batch_update(q: np.ndarray, states: np.ndarray, actions: np.ndarray, targets: np.ndarray, lr: float) -> None:
    """``Q[s, a] += lr * mean TD error`` over the games that visited ``(s, a)`` (one update per visited pair)."""
    index = states * N_ACTIONS + actions
    td = targets - q.reshape(-1)[index]
    sums = np.bincount(index, weights=td, minlength=q.size)
    counts = np.bincount(index, minlength=q.size)
    visited = counts > 0
    flat = q.reshape(-1)
    flat[visited] += lr * sums[visited] / counts[visited]


def _explore(q: np.ndarray, states: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    greedy = np.argmax(q[states], axis=1)
    random_actions = rng.integers(0, N_ACTIONS, size=states.shape[0])
    return np.where(rng.random(states.shape[0]) < epsilon, random_actions, greedy)


class _Logger:
    def __init__(self, config: QLearningConfig) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []
        self.rewards: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.next_log = config.log_every

    def add(self, step: int, rewards: np.ndarray, actions: np.ndarray, epsilon: float) -> None:
        self.rewards.append(np.asarray(rewards, dtype=float))
        self.actions.append(np.asarray(actions))
        if step >= self.next_log:
            self.flush(step, epsilon)
            self.next_log += self.config.log_every

    def flush(self, step: int, epsilon: float) -> None:
        if not self.rewards:
            return
        rewards, actions = np.concatenate(self.rewards), np.concatenate(self.actions)
        self.rows.append(
            {
                "step": step,
                "reward": float(rewards.mean()),
                "cooperation_rate": float((actions == 0).mean()),
                "epsilon": float(epsilon),
            }
        )
        self.rewards, self.actions = [], []


def train_q_learning(config: QLearningConfig | None = None, **overrides: Any) -> QLearningResult:
    """Train tabular Q-learner(s) as ``config`` says (keyword ``overrides`` replace its fields)."""
    config = QLearningConfig(**{**(asdict(config) if config else {}), **overrides})
    backend = config.backend
    if config.opponent == "self":
        backend = "numpy"
    elif backend == "auto":
        try:
            import moralgym.envs.vector  # noqa: F401

            backend = "vector"
        except ImportError:
            backend = "single"
    trainer = {"vector": _train_vector, "single": _train_single, "numpy": _train_numpy}[backend]
    started = time.perf_counter()
    q_tables, metrics = trainer(config)
    elapsed = time.perf_counter() - started
    return QLearningResult(config, q_tables, metrics, config.total_steps / max(elapsed, 1e-9))


def _train_vector(config: QLearningConfig) -> tuple[list[np.ndarray], list[dict]]:
    if config.n_player:
        from moralgym.envs.n_player.vector import NPlayerGameVectorEnv as VectorEnv
    else:
        from moralgym.envs.vector import MatrixGameVectorEnv as VectorEnv

    env = VectorEnv(config.num_envs, moral_components=False, **config.env_kwargs())
    rng = np.random.default_rng(config.seed)
    q = np.zeros((config.num_states, N_ACTIONS))
    observations, _ = env.reset(seed=config.seed)
    resetting = np.zeros(config.num_envs, dtype=bool)  # NEXT_STEP autoreset: this step only resets these games
    logger, step, epsilon = _Logger(config), 0, config.epsilon_start
    while step < config.total_steps:
        epsilon = config.epsilon_at(step)
        states = config.state_codes(observations)
        actions = _explore(q, states, epsilon, rng)
        next_observations, rewards, _, truncated, _ = env.step(actions)
        learning = ~resetting
        next_states = config.state_codes(next_observations)
        # Truncation is not termination: bootstrap from the final observation (returned on the truncating step).
        targets = rewards + config.discount * q[next_states].max(axis=1)
        _batch_update(q, states[learning], actions[learning], targets[learning], config.learning_rate)
        step += int(learning.sum())
        logger.add(step, rewards[learning], actions[learning], epsilon)
        observations, resetting = next_observations, truncated
    logger.flush(step, epsilon)
    env.close()
    return [q], logger.rows


def _train_single(config: QLearningConfig) -> tuple[list[np.ndarray], list[dict]]:
    import gymnasium

    import moralgym  # noqa: F401 - registers the ids

    env_id = "moralgym/NPlayerGame-v0" if config.n_player else "moralgym/MatrixGame-v0"
    env = gymnasium.make(env_id, disable_env_checker=True, **config.env_kwargs())
    rng = np.random.default_rng(config.seed)
    q = np.zeros((config.num_states, N_ACTIONS))
    observation, _ = env.reset(seed=config.seed)
    logger, epsilon = _Logger(config), config.epsilon_start
    for step in range(1, config.total_steps + 1):
        epsilon = config.epsilon_at(step - 1)
        state = np.array([config.state_codes(observation)])
        action = _explore(q, state, epsilon, rng)
        observation, reward, terminated, truncated, _ = env.step(int(action[0]))
        next_state = config.state_codes(observation)
        target = reward + (0.0 if terminated else config.discount * q[next_state].max())
        _batch_update(q, state, action, np.array([target]), config.learning_rate)
        logger.add(step, np.array([reward]), action, epsilon)
        if terminated or truncated:
            observation, _ = env.reset()
    logger.flush(config.total_steps, epsilon)
    env.close()
    return [q], logger.rows


def _train_numpy(config: QLearningConfig) -> tuple[list[np.ndarray], list[dict]]:
    """Parallel games stepped with the env's own :class:`~moralgym.envs.outcomes.OutcomeTable` (the rules and
    rewards of every moralgym env, precomputed) and opening rule, without the env's bookkeeping; no illegal moves
    (tabular agents never make them). The self-play backend, and the speed reference of benchmarks/baselines.py."""
    if config.n_player:
        return _train_numpy_n_player(config)
    game = get_game(config.game)
    reward = get_reward(config.reward, penalty=config.penalty, illegal_reward=config.illegal_reward)
    table = OutcomeTable(game, config.penalty, config.illegal_reward)
    rewards_of = (table.reward_table(reward, 0), table.reward_table(reward, 1))
    n, rng = config.num_envs, np.random.default_rng(config.seed)
    self_play = config.opponent == "self"
    opponent = None if self_play else make_opponent(config.opponent)
    fixed_opening = opening_move(opponent) if config.initial_state == "random" else None
    tables = [np.zeros((N_STATES, N_ACTIONS)) for _ in range(2 if self_play else 1)]
    random_start = config.initial_state == "random"

    def new_states(k: int) -> np.ndarray:
        previous = rng.integers(0, 2, size=(k, 2)) if random_start else np.full((k, 2), NO_MOVE)
        if fixed_opening is not None:  # e.g. Always Defect is shown having defected (moralgym.envs.openings)
            previous[:, 1] = fixed_opening
        return state_code(previous[:, 0], previous[:, 1])

    states = new_states(n)  # the env's state code: learner's (player 0) previous move * 3 + opponent's
    memory = opponent.initial_memory(n) if opponent is not None else None
    rounds = np.zeros(n, dtype=np.int64)
    logger, step, epsilon = _Logger(config), 0, config.epsilon_start
    while step < config.total_steps:
        epsilon = config.epsilon_at(step)
        states_1 = SWAPPED_STATE[states]
        actions_0 = _explore(tables[0], states, epsilon, rng)
        if self_play:
            actions_1 = _explore(tables[1], states_1, epsilon, rng)
        else:
            actions_1, memory = opponent.act_batch(STATE_TO_SWAPPED_OBSERVATION[states], memory, rng.random(n))
        codes = round_code(actions_0, np.asarray(actions_1, dtype=np.int64), states)
        next_states = table.next_state[codes]
        rewards_0 = rewards_of[0][codes]
        targets = rewards_0 + config.discount * tables[0][next_states].max(axis=1)
        _batch_update(tables[0], states, actions_0, targets, config.learning_rate)
        if self_play:
            targets_1 = rewards_of[1][codes] + config.discount * tables[1][SWAPPED_STATE[next_states]].max(axis=1)
            _batch_update(tables[1], states_1, actions_1, targets_1, config.learning_rate)
        step += n
        logger.add(step, rewards_0, actions_0, epsilon)
        rounds += 1
        done = rounds >= config.num_rounds
        states = next_states
        if done.any():
            states[done] = new_states(int(done.sum()))
            rounds[done] = 0
            if memory is not None and memory.shape[1]:
                memory[done] = opponent.initial_memory(int(done.sum()))
    logger.flush(step, epsilon)
    return tables, logger.rows


def _train_numpy_n_player(config: QLearningConfig) -> tuple[list[np.ndarray], list[dict]]:
    """The numpy backend of an N-player game: the numpy core of the N-player Gymnasium and vector envs
    (:class:`~moralgym.envs.n_player.batch.NPlayerGameBatch`: their rules, rewards, co-players and opening rule)
    stepped directly. Finished games are reset by mask instead of by an autoreset step, so every step learns."""
    from moralgym.envs.n_player.batch import NPlayerGameBatch

    batch = NPlayerGameBatch(config.num_envs, **config.env_kwargs())
    batch.seed(config.seed)  # game i seeded seed + i, as the vector env's sub-env i
    rng = np.random.default_rng(config.seed)
    q = np.zeros((config.num_states, N_ACTIONS))
    observations = batch.reset()
    logger, step, epsilon = _Logger(config), 0, config.epsilon_start
    while step < config.total_steps:
        epsilon = config.epsilon_at(step)
        states = config.state_codes(observations)
        actions = _explore(q, states, epsilon, rng)
        observations, rewards, truncated, _ = batch.step(actions, with_components=False)
        # Truncation is not termination: bootstrap from the observation after the last round, then reset.
        targets = rewards + config.discount * q[config.state_codes(observations)].max(axis=1)
        _batch_update(q, states, actions, targets, config.learning_rate)
        step += config.num_envs
        logger.add(step, rewards, actions, epsilon)
        if truncated.any():
            observations = batch.reset(mask=truncated)
    logger.flush(step, epsilon)
    return [q], logger.rows
