"""# Iterated matrix games (PettingZoo parallel API)

One environment class serves every 2x2 game: two agents move simultaneously for ``num_rounds`` rounds and each sees
both players' previous moves.

| Property | Value |
|---|---|
| Import | ``pettingzoo.make("parallel", "moralgym/ipd-v0")`` or ``moralgym.envs.ipd_v0.parallel_env()`` |
| Agents | ``["player_0", "player_1"]`` (player 0 is the row player) |
| Action space | ``Discrete(2)``: 0 = cooperate, 1 = defect; ``ILLEGAL`` (-1) is also accepted, see below |
| Observation space | ``MultiDiscrete([3, 3])``: ``[own previous move, other's previous move]``, 2 = no move yet (default; see ``observation_type``) |
| State space | ``MultiDiscrete([3, 3, num_rounds + 1])``: ``[player_0 previous, player_1 previous, rounds played]`` |

## Arguments

``MatrixGameEnv(game="ipd", num_rounds=5, initial_state="random", penalty=3.0, illegal_reward=-6.0,
render_mode=None, partner_illegal="last_legal", observation_type="multi_discrete")``

- ``game``: a registered name (``ipd``, ``stag_hunt``, ``chicken``, ``bach_or_stravinsky``,
  ``defective_coordination``), a :class:`~moralgym.envs.games.MatrixGame`, or a payoff table.
- ``num_rounds``: rounds per episode (the paper's default is 5 against a fixed opponent, 3 between two LLMs).
- ``initial_state``: ``"random"`` draws both "previous moves" of round one uniformly from the env's seeded stream
  (the paper's setting: the prompt states them as if the round had happened); ``"none"`` starts from ``NO_MOVE``.
  ``reset(options={"previous_moves": {"player_1": 1}})`` fixes a seat's round-one previous move instead (the paper
  does so for Always Cooperate / Always Defect opponents; the evaluation harness passes it for them).
- ``penalty`` / ``illegal_reward``: the Deontological ``xi`` and the illegal-move reward used in ``infos`` (finite
  numbers; NaN or infinity raises ``ValueError``).
- ``partner_illegal``: how a legal player is paid when its partner's move was illegal, ``"last_legal"`` (default)
  or ``"authors"`` (the paper code's rule); see *Illegal moves*. Any other value raises ``ValueError``.
- ``render_mode``: ``None``, ``"ansi"`` (``render()`` returns a line of text), ``"human"`` (prints it every step)
  or ``"rgb_array"`` (``render()`` returns a small ``(32, width, 3)`` uint8 image of the moves so far; see
  :mod:`moralgym.envs.rendering`).
- ``observation_type``: how each seat's two previous moves are encoded (the same in every moralgym env):

| ``observation_type`` | Observation space | Value |
|---|---|---|
| ``"multi_discrete"`` (default) | ``MultiDiscrete([3, 3])`` | ``[own, other]`` (int64) |
| ``"discrete"`` | ``Discrete(9)`` | ``own * 3 + other`` (int64), e.g. for RLlib without a flattening connector |
| ``"one_hot"`` | ``Box(0, 1, (6,), float32)`` | one-hot of ``own`` (3) then of ``other`` (3) |

## Actions

``step`` takes ``{agent: action}`` with an action ``0``, ``1`` or ``ILLEGAL`` as a Python ``int``, a numpy integer
or a size-1 integer array (what a batched policy returns, e.g. ``np.array([1])``). Anything else (a float, a
string, a bigger array, an out-of-range number) raises ``ValueError`` naming the agent and the value. ``step``
before ``reset`` or after the episode ended raises ``moralgym.envs.ResetNeeded`` (Gymnasium's
``gymnasium.error.ResetNeeded``, also a ``RuntimeError``).

## Rewards and infos

``rewards[agent]`` is the Game reward (own payoff, or ``illegal_reward`` after an illegal move). Moral rewards are
given per agent by :class:`~moralgym.envs.wrappers.MoralRewardWrapper`; ``infos[agent]`` always carries what they
need and all four components: ``round``, ``action``, ``opponent_action``, ``opponent_previous``, ``illegal``,
``game_payoff``, ``opponent_payoff``, ``cumulative_payoff`` / ``opponent_cumulative_payoff`` (each seat's game
payoffs summed over the episode, this round included: the equality virtue reads them), ``partner_illegal`` (the
env's rule) and ``moral_rewards`` (``game``, ``deontological``, ``utilitarian``, ``game_deontological``). ``reset``
returns the same keys (learners such as Tianshou stack infos, and a missing key becomes NaN): ``round`` 0,
``action`` / ``opponent_action`` the round-one previous moves the observations show (2 = none),
``opponent_previous`` 2, ``illegal`` false, payoffs and ``moral_rewards`` 0.

## Illegal moves

An LLM that answers something that is not a move plays ``ILLEGAL``. That player gets ``illegal_reward`` for every
reward type and a game payoff of 0; its observed previous move stays its last legal move (so Tit-for-Tat copies its
last legal move, as in the paper). Its partner's payoff is computed as if the illegal player had repeated its last
legal move (0 if it has none). Any other value outside ``{0, 1, ILLEGAL}`` raises ``ValueError``.

What the *legal* partner of an illegal player is paid is the ``partner_illegal`` option (it matters only where
both seats can answer illegally, i.e. LLM vs LLM; a fixed strategy never does). ``xi`` is ``penalty``:

| Legal player's reward, partner illegal | ``"last_legal"`` (default) | ``"authors"`` |
|---|---|---|
| Game | own payoff against the partner's last legal move | same |
| Deontological | ``-xi`` if it defects and the partner's last legal move was C, else 0 | same |
| Utilitarian | own payoff (as for Game) + the illegal partner's payoff 0 | ``0`` |
| Game+Deontological | own payoff, minus ``xi`` if it defects after the partner's (last legal) C | ``illegal_reward`` |

``"authors"`` is what the paper's two-learner code paid (its Game reward scores against the partner's last legal
move, its Utilitarian and Game+Deontological rewards see the illegal answer itself); the LLM-vs-LLM paper configs
set it. IPD example (``xi`` = 3), the partner's last legal move C, the partner now illegal, the player defects:
``"last_legal"`` pays Game 4, Deontological -3, Utilitarian 4, Game+Deontological 1; ``"authors"`` pays 4, -3, 0
and -6. The illegal player itself gets ``illegal_reward`` under both rules, and the game payoffs (``game_payoff``,
``opponent_payoff``) do not depend on the rule.

## AEC form: when rewards arrive

In the AEC form (``pettingzoo.make("aec", ...)``, ``<game>_v0.env()``) the agents move in turn, ``player_0`` then
``player_1``, and a round is resolved when ``player_1`` moves. Its rewards are then set for *both* agents
(``env.rewards``), so right after ``player_0``'s move ``env.rewards`` is all zero: a client that reads
``env.rewards`` after each ``step`` and credits the agent that just moved (Tianshou's ``PettingZooEnv`` does)
credits ``player_0`` nothing. The PettingZoo way is to read an agent's reward with ``env.last()`` on its own turn
(the ``agent_iter`` loop): ``last()`` gives each agent the reward of the round it last played, once, on its next
turn (and on its final, truncated turn). ``aec_env(..., reward_timing="own_turn")`` (also
``pettingzoo.make("aec", id, reward_timing="own_turn")`` and ``<game>_v0.env(reward_timing=...)``) makes
``env.rewards`` follow the same rule: after every ``step`` it holds the reward of the agent whose turn it now is
(earned since its previous move) and 0 for the other, so the agent selected by ``last()`` and ``env.rewards`` agree
and every round's reward of each agent is reported exactly once. See :mod:`moralgym.envs.aec`.

## Episode end

After ``num_rounds`` rounds every agent is *truncated* (``truncations`` true, ``terminations`` false): the
repeated game is cut, not won, so value-based learners may bootstrap as in the infinite-horizon IPD.

## Version history

- v0: initial release.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from moralgym.envs._rng import CounterRNG, entropy_seed
from moralgym.envs._validation import ResetNeeded, check_finite, check_render_mode
from moralgym.envs.games import COOPERATE, DEFECT, ILLEGAL, MOVE_LETTERS, NO_MOVE, MatrixGame, get_game
from moralgym.envs.observations import (
    DEFAULT_OBSERVATION_TYPE,
    check_observation_type,
    observation_space,
    observation_table,
)
from moralgym.envs.outcomes import OutcomeTable, round_code, state_code
from moralgym.envs.rendering import render_rgb
from moralgym.envs.rewards import (
    DEFAULT_ILLEGAL_REWARD,
    DEFAULT_PARTNER_ILLEGAL,
    DEFAULT_PENALTY,
    check_partner_illegal,
)

AGENTS = ("player_0", "player_1")
INITIAL_STATES = ("random", "none")
RENDER_MODES = ["ansi", "human", "rgb_array"]
_MOVES = (ILLEGAL, COOPERATE, DEFECT)


def validate_env_arguments(num_rounds: int, initial_state: str) -> None:
    """Shared argument checks for every moralgym environment."""
    if isinstance(num_rounds, bool) or not isinstance(num_rounds, (int, np.integer)) or num_rounds < 1:
        raise ValueError(f"num_rounds must be a positive integer, got {num_rounds!r}")
    if initial_state not in INITIAL_STATES:
        raise ValueError(f"initial_state must be one of {INITIAL_STATES}, got {initial_state!r}")


def check_actions(actions: np.ndarray, where: str) -> np.ndarray:
    """Return ``actions`` as int64, or raise ``ValueError`` naming the bad value and the accepted ones."""
    array = np.asarray(actions)
    if array.dtype.kind not in "iu":
        integral = (
            array.dtype.kind == "f" and bool(np.all(np.isfinite(array))) and bool(np.all(array == np.round(array)))
        )
        if not integral:
            raise ValueError(
                f"{where}: actions must be integers 0 (cooperate), 1 (defect) or {ILLEGAL} (illegal), got {actions!r}"
            )
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < ILLEGAL or array.max() > DEFECT):
        bad = array[(array < ILLEGAL) | (array > DEFECT)].flat[0]
        raise ValueError(
            f"{where}: action {bad!r} is out of range; use 0 (cooperate), 1 (defect) or "
            f"moralgym.envs.ILLEGAL ({ILLEGAL}) for an answer that is not a move"
        )
    return array


def agent_action(action: Any, agent: str, where: str) -> int:
    """One agent's action as an int (0, 1 or ``ILLEGAL``), from an int, a numpy integer or a size-1 integer array
    (a batched policy's output); anything else is a ``ValueError`` naming the agent and the value."""
    value = action
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iu":
        value = value.reshape(()).item()
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if int(value) in _MOVES:
            return int(value)
        raise ValueError(
            f"{where}: action {action!r} for {agent!r} is out of range; use 0 (cooperate), 1 (defect) or "
            f"moralgym.envs.ILLEGAL ({ILLEGAL}) for an answer that is not a move"
        )
    raise ValueError(
        f"{where}: the action for {agent!r} must be 0 (cooperate), 1 (defect) or moralgym.envs.ILLEGAL ({ILLEGAL}) "
        f"as an int, a numpy integer or a size-1 integer array; got {action!r}"
    )


def fixed_previous_moves(options: dict | None, agents: list[str]) -> dict[str, int]:
    """``options["previous_moves"]``: ``{agent: 0 or 1}``, round-one "previous moves" to show instead of drawn ones
    (e.g. a seat played by Always Defect, whose paper prompt says it defected; docs/reproduction.md); the N-player
    env reads the same option."""
    fixed = (options or {}).get("previous_moves") or {}
    if not isinstance(fixed, dict):
        raise ValueError(f"options['previous_moves'] must be a dict {{agent: 0 or 1}}, got {fixed!r}")
    for agent, move in fixed.items():
        if agent not in agents:
            raise ValueError(f"options['previous_moves'] names unknown agent {agent!r}; agents: {agents}")
        if isinstance(move, bool) or move not in (COOPERATE, DEFECT):
            raise ValueError(f"options['previous_moves'][{agent!r}] must be 0 (C) or 1 (D), got {move!r}")
    return fixed


class MatrixGameEnv(ParallelEnv):
    """A two-player iterated matrix game as a PettingZoo ``ParallelEnv``; see the module docstring."""

    metadata = {
        "name": "moralgym_matrix_game_v0",
        "render_modes": RENDER_MODES,
        "is_parallelizable": True,
        "render_fps": 1,
    }

    def __init__(
        self,
        game: str | MatrixGame | Any = "ipd",
        num_rounds: int = 5,
        initial_state: str = "random",
        penalty: float = DEFAULT_PENALTY,
        illegal_reward: float = DEFAULT_ILLEGAL_REWARD,
        render_mode: str | None = None,
        partner_illegal: str = DEFAULT_PARTNER_ILLEGAL,
        observation_type: str = DEFAULT_OBSERVATION_TYPE,
    ) -> None:
        validate_env_arguments(num_rounds, initial_state)
        self.partner_illegal = check_partner_illegal(partner_illegal)
        self.observation_type = check_observation_type(observation_type)
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.game = get_game(game)
        self.num_rounds = int(num_rounds)
        self.initial_state = initial_state
        self.penalty = check_finite("penalty", penalty)
        self.illegal_reward = check_finite("illegal_reward", illegal_reward)
        self.render_mode = render_mode
        self._table = OutcomeTable(self.game, self.penalty, self.illegal_reward, self.partner_illegal)
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        # Built once: PettingZoo expects the same space object on every call.
        self._observation_spaces = {a: observation_space(self.observation_type) for a in AGENTS}
        self._action_spaces = {a: spaces.Discrete(2) for a in AGENTS}
        self._encode = observation_table(self.observation_type)
        self.metadata = {**self.metadata, "name": f"moralgym_{self.game.name}_v0"}
        # Seeded on the first reset (never here), so copies of an unreset env (cloudpickle, SuperSuit) differ.
        self._rng: CounterRNG | None = None
        self._previous = np.full(2, NO_MOVE, dtype=np.int64)
        self._start = self._previous.copy()
        self._cumulative = np.zeros(2)
        self._round = 0
        self._history: list[tuple[int, int]] = []
        self._needs_reset = True

    #: Attributes a copy shares with its original: read-only after construction.
    _SHARED_ON_COPY = ("game", "_table", "_encode")

    def __deepcopy__(self, memo: dict) -> MatrixGameEnv:
        """An independent copy that shares the game and its outcome table (read-only, and most of the cost of a
        full copy): the episode runner scores counterfactual answers on such copies."""
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in vars(self).items():
            setattr(clone, key, value if key in self._SHARED_ON_COPY else copy.deepcopy(value, memo))
        return clone

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    @property
    def state_space(self) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete([3, 3, self.num_rounds + 1], dtype=np.int64)

    def _observations(self) -> dict[str, np.ndarray]:
        p0, p1 = int(self._previous[0]), int(self._previous[1])
        encode = self._encode
        return {"player_0": np.take(encode, p0 * 3 + p1, axis=0), "player_1": np.take(encode, p1 * 3 + p0, axis=0)}

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._rng = CounterRNG.from_seed(seed)
        elif self._rng is None:  # first reset without a seed: fresh entropy (drawn now, not in __init__)
            self._rng = CounterRNG.from_seed(entropy_seed())
        # Two uniforms are always drawn, so the stream stays aligned with the vector env whatever initial_state is.
        draws = self._rng.bits(2)[0]
        if self.initial_state == "random":
            self._previous = (draws < 0.5).astype(np.int64)  # u < 0.5 -> DEFECT (1), else COOPERATE (0)
        else:
            self._previous = np.full(2, NO_MOVE, dtype=np.int64)
        for agent, move in self._fixed_previous_moves(options).items():
            self._previous[self.possible_agents.index(agent)] = move
        self.agents = list(self.possible_agents)
        self._round = 0
        self._cumulative = np.zeros(2)
        self._history = []
        self._start = self._previous.copy()
        self._needs_reset = False
        return self._observations(), self._reset_infos()

    def _reset_infos(self) -> dict[str, dict]:
        """The step infos' keys (see the module docstring), for the round-one state."""
        infos = {}
        for me, agent in enumerate(AGENTS):
            infos[agent] = {
                "round": 0,
                "action": int(self._previous[me]),
                "opponent_action": int(self._previous[1 - me]),
                "opponent_previous": NO_MOVE,
                "illegal": False,
                "game_payoff": 0.0,
                "opponent_payoff": 0.0,
                "cumulative_payoff": 0.0,
                "opponent_cumulative_payoff": 0.0,
                "partner_illegal": self.partner_illegal,
                "moral_rewards": dict.fromkeys(self._table.components_0, 0.0),
            }
        return infos

    def _fixed_previous_moves(self, options: dict | None) -> dict[str, int]:
        return fixed_previous_moves(options, self.possible_agents)

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            when = "before reset()" if self._needs_reset else "on a finished episode"
            raise ResetNeeded(f"MatrixGameEnv.step() called {when}; call reset() first")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"step() needs an action for every live agent; missing {missing}, got {sorted(actions)}")
        joint = [agent_action(actions[agent], agent, "MatrixGameEnv.step") for agent in AGENTS]
        table = self._table
        code = int(round_code(joint[0], joint[1], state_code(self._previous[0], self._previous[1])))
        payoffs = (float(table.payoff_0[code]), float(table.payoff_1[code]))
        self._cumulative = self._cumulative + payoffs
        components = (table.components_0, table.components_1)
        rewards: dict[str, float] = {}
        infos: dict[str, dict] = {}
        for me, agent in enumerate(AGENTS):
            other = 1 - me
            moral_rewards = {name: float(values[code]) for name, values in components[me].items()}
            rewards[agent] = moral_rewards["game"]
            infos[agent] = {
                "round": self._round + 1,
                "action": int(joint[me]),
                "opponent_action": int(joint[other]),
                "opponent_previous": int(self._previous[other]),
                "illegal": bool(joint[me] == ILLEGAL),
                "game_payoff": payoffs[me],
                "opponent_payoff": payoffs[other],
                "cumulative_payoff": float(self._cumulative[me]),
                "opponent_cumulative_payoff": float(self._cumulative[other]),
                "partner_illegal": self.partner_illegal,
                "moral_rewards": moral_rewards,
            }
        next_state = int(table.next_state[code])
        self._previous = np.array([next_state // 3, next_state % 3], dtype=np.int64)
        self._history.append((joint[0], joint[1]))
        self._round += 1
        done = self._round >= self.num_rounds
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        observations = self._observations()
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return np.array([self._previous[0], self._previous[1], self._round], dtype=np.int64)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            import gymnasium

            gymnasium.logger.warn(
                "render() called without render_mode; pass render_mode='ansi', 'human' or 'rgb_array'"
            )
            return None
        if self.render_mode == "rgb_array":
            return render_rgb(self._start, self._history, self.num_rounds)
        moves = " ".join(f"{MOVE_LETTERS[a]}{MOVE_LETTERS[b]}" for a, b in self._history) or "(no rounds yet)"
        start = f"{MOVE_LETTERS[int(self._previous[0])]}{MOVE_LETTERS[int(self._previous[1])]}"
        text = f"{self.game.title} round {self._round}/{self.num_rounds}: {moves} | last moves {start}"
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"MatrixGameEnv(game={self.game.name!r}, num_rounds={self.num_rounds}, initial_state={self.initial_state!r})"
