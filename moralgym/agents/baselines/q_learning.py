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

from moralgym.envs.games import NO_MOVE, MatrixGame, get_game
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
    opponent: str = field(default="tit_for_tat", metadata={"help": "strategy name, or 'self' for two learners"})
    game: str = field(default="ipd", metadata={"help": "game to train on"})
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
        get_game(self.game)
        get_reward(self.reward)
        if self.opponent != "self":
            make_opponent(self.opponent)

    def env_kwargs(self) -> dict[str, object]:
        """The environment arguments every training backend passes on (one list, so backends cannot drift)."""
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
    strategy (``initial_memory``/``act_batch``)."""

    memory_width = 0
    stochastic = False

    def __init__(self, q_table: np.ndarray, name: str = "q_learning") -> None:
        q_table = np.asarray(q_table, dtype=np.float64)
        if q_table.shape != (N_STATES, N_ACTIONS):
            raise ValueError(f"q_table must have shape {(N_STATES, N_ACTIONS)}, got {q_table.shape}")
        self.q_table = q_table
        self.name = name

    def greedy_actions(self) -> np.ndarray:
        """The action in each of the 9 states (index ``own * 3 + opponent``); ties -> cooperate."""
        return np.argmax(self.q_table, axis=1)

    def policy(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, dtype=np.int64)
        return self.greedy_actions()[observations[:, 0] * 3 + observations[:, 1]]

    # seat protocol (moralgym.agents.seats): greedy, so nothing to reset or seed
    def reset(self, n: int, seed: int | None = None) -> None:
        pass

    def act(self, games: Sequence[MatrixGame], observations: np.ndarray, seat: int = 0) -> np.ndarray:
        return self.policy(observations)

    # opponent-strategy protocol
    def initial_memory(self, n: int) -> np.ndarray:
        return np.zeros((n, 0), dtype=np.int64)

    def act_batch(self, observations: np.ndarray, memory: np.ndarray, uniforms: np.ndarray):
        return self.policy(observations), memory

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"name": self.name, "q_table": self.q_table.tolist()}))
        return path

    @classmethod
    def load(cls, path: str | Path) -> QLearningAgent:
        data = json.loads(Path(path).read_text())
        return cls(np.array(data["q_table"]), name=data.get("name", "q_learning"))

    def __repr__(self) -> str:
        letters = "".join("CD"[a] for a in self.greedy_actions())
        return f"QLearningAgent(name={self.name!r}, greedy={letters})"


@dataclass
class QLearningResult:
    """Trained table(s), the metrics logged during training (one dict per ``log_every`` transitions) and speed."""

    config: QLearningConfig
    q_tables: list[np.ndarray]
    metrics: list[dict[str, Any]]
    steps_per_second: float

    def agent(self, index: int = 0, name: str | None = None) -> QLearningAgent:
        default = f"q_learning:{self.config.reward}" + ("" if index == 0 else f":{index}")
        return QLearningAgent(self.q_tables[index], name=name or default)


def _batch_update(q: np.ndarray, states: np.ndarray, actions: np.ndarray, targets: np.ndarray, lr: float) -> None:
    """``Q[s, a] += lr * mean TD error`` over the games that visited ``(s, a)`` (one update per visited pair)."""
    index = states * N_ACTIONS + actions
    td = targets - q.reshape(-1)[index]
    sums = np.bincount(index, weights=td, minlength=N_STATES * N_ACTIONS)
    counts = np.bincount(index, minlength=N_STATES * N_ACTIONS)
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
    from moralgym.envs.vector import MatrixGameVectorEnv

    env = MatrixGameVectorEnv(config.num_envs, moral_components=False, **config.env_kwargs())
    rng = np.random.default_rng(config.seed)
    q = np.zeros((N_STATES, N_ACTIONS))
    observations, _ = env.reset(seed=config.seed)
    resetting = np.zeros(config.num_envs, dtype=bool)  # NEXT_STEP autoreset: this step only resets these games
    logger, step, epsilon = _Logger(config), 0, config.epsilon_start
    while step < config.total_steps:
        epsilon = config.epsilon_at(step)
        states = observations[:, 0] * 3 + observations[:, 1]
        actions = _explore(q, states, epsilon, rng)
        next_observations, rewards, _, truncated, _ = env.step(actions)
        learning = ~resetting
        next_states = next_observations[:, 0] * 3 + next_observations[:, 1]
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

    env = gymnasium.make("moralgym/MatrixGame-v0", disable_env_checker=True, **config.env_kwargs())
    rng = np.random.default_rng(config.seed)
    q = np.zeros((N_STATES, N_ACTIONS))
    observation, _ = env.reset(seed=config.seed)
    logger, epsilon = _Logger(config), config.epsilon_start
    for step in range(1, config.total_steps + 1):
        epsilon = config.epsilon_at(step - 1)
        state = np.array([observation[0] * 3 + observation[1]])
        action = _explore(q, state, epsilon, rng)
        observation, reward, terminated, truncated, _ = env.step(int(action[0]))
        next_state = observation[0] * 3 + observation[1]
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
