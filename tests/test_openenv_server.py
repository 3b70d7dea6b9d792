"""``moralgym serve`` conformance: the real server in a subprocess, OpenEnv's own clients, the native env as reference.

Every server this module needs is started once, all at the same time (each pays OpenEnv's import, seconds of CPU),
as ``python -m moralgym.cli serve ... --port 0`` on localhost; a test names its server with the ``server`` fixture's
parameter. Episodes are played by OpenEnv's ``GenericEnvClient`` (no moralgym code on the client side) or by
moralgym's typed ``MoralGymClient``, and compared round by round with the native env played by hand with the same
seeds and answers: :class:`~moralgym.envs.MatrixGameEnv` (or the N-player env) in the moral-reward wrapper, the
opponent's :class:`~moralgym.agents.seats.StrategySeat`, the prompt builder and the strict parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("openenv")  # cheap: openenv imports its core (and gradio) only when a client is first used

from moralgym.agents.llm.n_player_prompts import n_player_state  # noqa: E402
from moralgym.agents.llm.parsing import parse_action  # noqa: E402
from moralgym.agents.llm.prompts import PromptBuilder, get_action_tokens  # noqa: E402
from moralgym.agents.runner import derive_seed  # noqa: E402
from moralgym.agents.seats import NPlayerStrategySeat, SeatStep, StrategySeat  # noqa: E402
from moralgym.envs import ILLEGAL, MatrixGameEnv, MoralRewardWrapper, get_game, list_games  # noqa: E402
from moralgym.envs.n_player import NPlayerGameEnv, NPlayerMoralRewardWrapper, get_n_player_game  # noqa: E402
from moralgym.envs.openings import opening_options  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"moralgym serve: ready on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 120  # generous: the servers start together on a shared 2-core machine

#: Each registered two-player game with its own opponent, reward and prompt setting (a game missing here is served
#: with the defaults), plus an N-player game. Together they cover a stochastic opponent, a declared opening
#: (Always Defect), an answer prefix, other tokens and phrasings, a reward that reads the episode's payoff sums and
#: ``initial_state="none"``.
SETTINGS: dict[str, dict[str, Any]] = {
    "ipd": {"game": "ipd", "opponent": "tit_for_tat", "reward": "deontological", "max_sessions": 6},
    "stag_hunt": {
        "game": "stag_hunt",
        "opponent": "random",
        "reward": "utilitarian",
        "tokens": "action34",
        "answer_prefix": "action",
    },
    "chicken": {
        "game": "chicken",
        "opponent": "grim_trigger",
        "reward": "game_deontological",
        "phrasing": "unstructured",
    },
    "bach_or_stravinsky": {
        "game": "bach_or_stravinsky",
        "opponent": "always_defect",
        "reward": "game",
        "num_rounds": 4,
    },
    "defective_coordination": {
        "game": "defective_coordination",
        "opponent": "win_stay_lose_shift",
        "reward": "virtue_equality",
        "initial_state": "none",
    },
    "public_goods": {"game": "public_goods", "num_players": 3, "opponent": "random", "reward": "utilitarian"},
}
TWO_PLAYER_GAMES = list_games()
#: HTTP to the local servers, never through a proxy the environment may name.
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def settings_of(key: str) -> dict[str, Any]:
    return SETTINGS.get(key, {"game": key})


# ----------------------------------------------------------------------------------------------- the servers
class Server:
    """One ``moralgym serve`` subprocess; its output goes to files (a full pipe would block it)."""

    def __init__(self, key: str, directory: Path) -> None:
        self.key = key
        self.stdout_path = directory / f"{key}.out"
        self.stderr_path = directory / f"{key}.err"
        flags = [f"--{name.replace('_', '-')}={value}" for name, value in settings_of(key).items()]
        command = [sys.executable, "-m", "moralgym.cli", "serve", "--port", "0", "--log-level", "warning", *flags]
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr)
        self.port: int | None = None

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.port is None:
            match = READY.search(self.stdout_path.read_text())
            if match:
                self.port = int(match.group(1))
            elif self.process.poll() is not None:
                pytest.fail(f"moralgym serve ({self.key}) exited with {self.process.returncode}: {self.output()}")
            elif time.monotonic() > deadline:
                pytest.fail(f"moralgym serve ({self.key}) was not ready after {START_TIMEOUT_S} s: {self.output()}")
            else:
                time.sleep(0.05)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return f"stdout:\n{self.stdout_path.read_text()}\nstderr:\n{self.stderr_path.read_text()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ServerPool:
    """The module's servers by key; one that has stopped (the signal tests stop theirs) is started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: dict[str, Server] = {}

    def start(self, key: str) -> None:
        if key not in self.servers or self.servers[key].process.poll() is not None:
            self.servers[key] = Server(key, self.directory)

    def get(self, key: str) -> Server:
        self.start(key)
        return self.servers[key].wait_ready()

    def stop_all(self) -> None:
        """Stop every server at once (each waits for its own sessions to close)."""
        running = [server for server in self.servers.values() if server.process.poll() is None]
        for server in running:
            server.process.terminate()
        for server in running:
            server.stop()


@pytest.fixture(scope="module")
def pool(request, tmp_path_factory):
    """Starts, all at once, the server of every selected test of this module."""
    servers = ServerPool(tmp_path_factory.mktemp("moralgym-serve"))
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is request.module and callspec is not None and "server" in callspec.params:
            servers.start(callspec.params["server"])
    yield servers
    servers.stop_all()


@pytest.fixture
def server(request, pool) -> Server:
    return pool.get(request.param)


def generic_client(server: Server):
    """OpenEnv's own dict-based client, synchronous."""
    from openenv.core.generic_client import GenericEnvClient

    return GenericEnvClient(base_url=server.url).sync()


def typed_client(server: Server):
    from moralgym.serving.client import MoralGymClient

    return MoralGymClient(base_url=server.url).sync()


# ----------------------------------------------------------------------------------------------- the reference
class NativeEpisode:
    """The served match played by hand on the native env, with the seeds the docs name (docs/openenv.md)."""

    def __init__(self, key: str, seed: int) -> None:
        config = settings_of(key)
        self.prefix = config.get("answer_prefix", "")
        n_player = "num_players" in config
        self.game = get_n_player_game(config["game"], config["num_players"]) if n_player else get_game(config["game"])
        rounds, initial = config.get("num_rounds", 5), config.get("initial_state", "random")
        reward = config.get("reward", "deontological")
        if n_player:
            base = NPlayerGameEnv(self.game, num_rounds=rounds, initial_state=initial)
            self.env = NPlayerMoralRewardWrapper(
                base, {a: reward if a == "player_0" else "game" for a in base.possible_agents}
            )
            seat_class = NPlayerStrategySeat
        else:
            base = MatrixGameEnv(self.game, num_rounds=rounds, initial_state=initial)
            self.env = MoralRewardWrapper(base, {"player_0": reward, "player_1": "game"})
            seat_class = StrategySeat
        self.agents = list(self.env.possible_agents)
        self.opponents = {agent: seat_class(config.get("opponent", "tit_for_tat")) for agent in self.agents[1:]}
        for j, agent in enumerate(self.agents[1:], start=1):
            self.opponents[agent].reset(1, derive_seed(seed, 1 + j))
        self.order = np.random.default_rng(derive_seed(seed, 1))
        prompt = PromptBuilder(tokens=config.get("tokens", "action12"), phrasing=config.get("phrasing", "paper"))
        self.builder = prompt.for_game(self.game)
        self.n_player = n_player
        self.observations, _ = self.env.reset(
            seed=derive_seed(seed, 0, 0), options=opening_options(self.opponents, initial)
        )
        self.first = {"prompt": self._prompt(), "observation": self._observation(), "round": 0}

    def _observation(self) -> list[int]:
        return [int(v) for v in self.observations["player_0"]]

    def _prompt(self) -> str:
        bits = self.builder.draw_order_bits(self.order, 1)[0]
        mine = self.observations["player_0"]
        return self.builder.user_text(self.game, n_player_state(self.game, mine) if self.n_player else mine, bits, 0)

    def step(self, answer: str | int) -> dict[str, Any]:
        action = answer if isinstance(answer, int) else parse_action(self.prefix + answer, self.builder.action_tokens)
        joint = {"player_0": action}
        for j, (agent, seat) in enumerate(self.opponents.items(), start=1):
            joint[agent] = int(seat.act([self.game], np.asarray([self.observations[agent]]), j).actions[0])
        self.observations, rewards, _, _, infos = self.env.step(joint)
        done = not self.env.agents
        return {
            "prompt": "" if done else self._prompt(),
            "observation": self._observation(),
            "round": int(infos["player_0"]["round"]),
            "action": action,
            "legal": action != ILLEGAL,
            "last_moves": joint,
            "reward": float(rewards["player_0"]),
            "game_payoff": float(infos["player_0"]["game_payoff"]),
            "moral_rewards": dict(infos["player_0"]["moral_rewards"]),
            "done": done,
        }


def answers_for(key: str, seed: int) -> list[str | int]:
    """Legal answers of both tokens (one padded with whitespace), illegal ones, and action ids, in a seed's order."""
    config = settings_of(key)
    cooperate, defect = get_action_tokens(config.get("tokens", "action12"))
    prefix = config.get("answer_prefix", "")
    cooperate, defect = cooperate.removeprefix(prefix), defect.removeprefix(prefix)
    answers: list[str | int] = [cooperate, f" {defect}\n", f"I choose {cooperate}", 1, defect, 0, "", -1, cooperate]
    return [answers[(k + seed) % len(answers)] for k in range(config.get("num_rounds", 5))]


def as_action(answer: str | int) -> dict[str, Any]:
    return {"action_id": answer} if isinstance(answer, int) else {"text": answer}


def served(result) -> dict[str, Any]:
    """A generic client's step result as one dict (observation fields, reward, done)."""
    return {**result.observation, "reward": result.reward, "done": result.done}


# ----------------------------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("server", [*TWO_PLAYER_GAMES, "public_goods"], indirect=True)
def test_episodes_equal_the_native_env_with_the_same_seed(server):
    """Moves, rewards, moral components, legality and prompts of every round equal the native env's, for every
    two-player game and an N-player one; the same seed replays the same episode."""
    seeds = (11, 12, 11)
    with generic_client(server) as env:
        played = []
        for seed in seeds:
            native = NativeEpisode(server.key, seed)
            first = served(env.reset(seed=seed))
            assert {k: first[k] for k in native.first} == native.first
            assert first["reward"] is None and first["seed"] == seed and not first["done"]
            assert first["action_tokens"] == list(native.builder.action_tokens)
            rounds = [first]
            total = 0.0
            for answer in answers_for(server.key, seed):
                expected = native.step(answer)
                got = served(env.step(as_action(answer)))
                assert {k: got[k] for k in expected} == expected, f"{server.key} seed {seed} answer {answer!r}"
                total += expected["reward"]
                assert got["episode_reward"] == pytest.approx(total)
                rounds.append(got)
            assert rounds[-1]["done"] and rounds[-1]["prompt"] == ""
            played.append(rounds)
        assert played[0] == played[2]  # reset(seed) replays


@pytest.mark.parametrize("server", ["ipd", "stag_hunt"], indirect=True)
def test_a_served_episode_is_the_evaluation_harness_episode(server):
    """reset(seed) plays the episode ``moralgym evaluate --seed SEED --episodes 1`` plays (the docs promise it)."""
    from moralgym.evaluation.harness import opponent_seat, play_match

    actions = [0, 1, 1, 0, 0]

    class Scripted:
        name = "scripted"

        def reset(self, n, seed=None):
            self.moves = iter(actions)

        def act(self, games, observations, seat=0):
            return SeatStep(np.array([next(self.moves)]))

    config = settings_of(server.key)
    game = get_game(config["game"])
    rows = play_match(Scripted(), opponent_seat(config["opponent"], game), game, num_episodes=1, num_rounds=5, seed=7)
    with generic_client(server) as env:
        env.reset(seed=7)
        for action, row in zip(actions, rows, strict=True):
            got = env.step({"action_id": action}).observation
            assert got["last_moves"] == {"player_0": row["action"], "player_1": row["opponent_action"]}
            assert got["game_payoff"] == row["game_payoff"]
            assert got["moral_rewards"] == {name: row[f"reward_{name}"] for name in got["moral_rewards"]}


@pytest.mark.parametrize("server", ["ipd"], indirect=True)
def test_answer_legality_is_the_strict_parsers(server):
    """An answer is legal exactly when moralgym's parser reads a move in it; an illegal one earns the illegal reward."""
    answers = ["action1", " action2\n", "action1.", "Action1", "", "I choose action2", "action3", "action2 action1"]
    with typed_client(server) as env:
        for index, answer in enumerate(answers):
            if index % 5 == 0:
                env.reset(seed=index)
            result = env.step(answer)
            move = parse_action(answer, ("action1", "action2"))
            assert result.observation.legal is (move != ILLEGAL), answer
            assert result.observation.action == move and result.observation.answer == answer
            if move == ILLEGAL:
                assert result.reward == -6.0 and set(result.observation.moral_rewards.values()) == {-6.0}


# ----------------------------------------------------------------------------------------------- bad requests
@contextlib.contextmanager
def raw_session(server: Server):
    """OpenEnv's WebSocket protocol spoken by hand, to send what no typed client would: yields ``send(message)``,
    which returns the server's answer."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/ws", proxy=None, open_timeout=10) as socket:

        def send(message: dict[str, Any] | str) -> dict[str, Any]:
            socket.send(message if isinstance(message, str) else json.dumps(message))
            return json.loads(socket.recv(timeout=10))

        send.socket = socket  # type: ignore[attr-defined]
        yield send


@pytest.mark.parametrize("server", ["ipd"], indirect=True)
def test_malformed_requests_get_clear_errors_and_leave_other_sessions_unharmed(server):
    """Each bad request is answered with an error that says what is wrong; the session that sent it goes on, and a
    session beside it (same seed, same answers) plays the very same episode."""
    from moralgym.serving.client import MoralGymServerError

    bad_steps = [
        ({"action_id": 7}, "action_id must be 0 (cooperate), 1 (defect) or -1 (illegal answer), got 7"),
        ({"text": "action1", "action_id": 0}, "give exactly one of 'text' (the model's answer) or 'action_id'"),
        ({}, "give exactly one of 'text' (the model's answer) or 'action_id'"),
        ({"move": 1}, "Extra inputs are not permitted"),
        ({"text": 12}, "Input should be a valid string"),
    ]
    answers = ["action1", "action2", "action2", "action1", "action1"]
    observed = {"exclude": {"reward", "done", "metadata"}}
    with raw_session(server) as victim, typed_client(server) as bystander:
        first = victim({"type": "reset", "data": {"seed": 5}})["data"]
        assert first["observation"] == bystander.reset(seed=5).observation.model_dump(**observed)
        for (payload, message), answer in zip(bad_steps, answers, strict=True):
            error = victim({"type": "step", "data": payload})
            assert error["type"] == "error" and error["data"]["code"] == "VALIDATION_ERROR", error
            assert any(message in e["msg"] for e in error["data"]["errors"]), error
            ours = victim({"type": "step", "data": {"text": answer}})["data"]
            theirs = bystander.step(answer)
            assert ours["observation"] == theirs.observation.model_dump(**observed)
            assert (ours["reward"], ours["done"]) == (theirs.reward, theirs.done)
        assert theirs.done
        assert victim("this is not JSON")["data"]["code"] == "INVALID_JSON"
        late = victim({"type": "step", "data": {"text": "action1"}})["data"]
        assert late["code"] == "EXECUTION_ERROR"
        assert late["message"] == "the episode is over (5 of 5 rounds played); call reset() for a new one"
        # The typed client raises what the server answered, with the reason.
        with pytest.raises(MoralGymServerError, match=r"the episode is over \(5 of 5 rounds played\)"):
            bystander.step("action1")
        with pytest.raises(MoralGymServerError, match=r"seed must be a non-negative integer or null, got 'x'"):
            bystander.reset(seed="x")
        with pytest.raises(MoralGymServerError, match=r"reset\(\) takes seed and episode_id only.*options"):
            bystander.reset(seed=1, options={})
        assert victim({"type": "reset", "data": {"seed": 5}})["data"]["observation"] == first["observation"]
    with raw_session(server) as fresh:
        early = fresh({"type": "step", "data": {"text": "action1"}})["data"]
        assert early["message"] == "step() before reset(): call reset() to start an episode first"


def open_session(server: Server, seed: int, within_s: float = 10.0):
    """A typed client with a reset episode. While the server is still closing earlier sessions it may be at
    capacity: it answers CAPACITY_REACHED and closes the socket (a client may see either first), so retry."""
    from websockets.exceptions import ConnectionClosed

    from moralgym.serving.client import MoralGymServerError

    deadline = time.monotonic() + within_s
    while True:
        env = typed_client(server)
        try:
            env.connect()
            return env, env.reset(seed=seed)
        except (MoralGymServerError, ConnectionClosed) as error:
            env.close()
            if getattr(error, "code", "CAPACITY_REACHED") != "CAPACITY_REACHED" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("server", ["ipd"], indirect=True)
def test_concurrent_sessions_each_play_their_own_match_up_to_max_sessions(server):
    """``--max-sessions`` sessions at once, stepped in turn with their own seeds, each equal to its own native
    episode; one more is refused while they are open and accepted once one closes."""
    capacity = settings_of("ipd")["max_sessions"]
    clients, natives = [], []
    try:
        for seed in range(capacity):
            env, first = open_session(server, seed)
            clients.append(env)
            natives.append(NativeEpisode("ipd", seed))
            assert first.observation.prompt == natives[-1].first["prompt"]
        with raw_session(server) as extra:  # the server speaks first: its refusal
            refusal = json.loads(extra.socket.recv(timeout=10))["data"]
        assert refusal["code"] == "CAPACITY_REACHED" and f"{capacity}/{capacity} sessions" in refusal["message"]
        for answer in ["action2", "action1", 0, "oops", 1]:
            for env, native in zip(clients, natives, strict=True):
                expected = native.step(answer)
                result = env.step(answer)
                got = {**result.observation.model_dump(), "reward": result.reward, "done": result.done}
                assert {k: got[k] for k in expected} == expected
        clients.pop().close()
        env, _ = open_session(server, 0)
        clients.append(env)
    finally:
        for env in clients:
            env.close()


@pytest.mark.parametrize("server", ["ipd"], indirect=True)
def test_http_endpoints_describe_the_match_and_refuse_stateless_steps(server):
    def get(path: str) -> dict[str, Any]:
        with LOCAL.open(server.url + path, timeout=10) as response:
            return json.loads(response.read())

    assert get("/health")["status"] == "healthy"
    schema = get("/schema")
    assert {"text", "action_id"} <= set(schema["action"]["properties"])
    assert {"prompt", "moral_rewards", "legal", "last_moves"} <= set(schema["observation"]["properties"])
    assert "ipd vs tit_for_tat, reward deontological" in get("/metadata")["description"]
    request = urllib.request.Request(
        server.url + "/step", data=json.dumps({"action": {"text": "action1"}}).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as caught:
        LOCAL.open(request, timeout=10)
    assert caught.value.code == 400
    assert "WebSocket /ws" in json.loads(caught.value.read())["detail"]


@pytest.mark.parametrize("server", ["ipd"], indirect=True)
def test_the_server_process_never_loads_torch(server):
    maps = Path(f"/proc/{server.process.pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc (Linux)")
    with generic_client(server) as env:
        env.reset(seed=0)
        env.step({"text": "action1"})
    assert "torch" not in maps.read_text()


@pytest.mark.parametrize("server", ["ipd"], indirect=True)
def test_the_trl_environment_class_of_the_docs_plays_a_match(server):
    """docs/openenv.md's ``environment_factory`` class (TRL itself is not run) against the real server."""
    docs = (ROOT / "docs" / "openenv.md").read_text()
    (block,) = [b for b in re.findall(r"^```py\n(.*?)^```", docs, flags=re.S | re.M) if "class MoralGymMatch" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block.replace("http://127.0.0.1:8000", server.url), "docs/openenv.md", "exec"), namespace)
    match = namespace["MoralGymMatch"]()
    try:
        native = NativeEpisode("ipd", 4)
        assert match.reset(prompt=[{"role": "user", "content": ""}], seed=4) == native.first["prompt"]
        total = 0.0
        for answer in ["action1", "action2", "I defect", "action1", "action2"]:
            expected = native.step(answer)
            total += expected["reward"]
            text = match.play(answer)
            assert text == (expected["prompt"] or f"The game is over. Your score: {total:g}.")
        assert match.get_reward() == pytest.approx(total)
        with pytest.raises(ValueError, match="The game is over"):
            match.play("action1")
    finally:
        match.client.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--game", "nope"], r"unknown game 'nope'; known two-player games: ipd, .*; N-player games: public_goods"),
        (["--opponent", "tft2"], r"unknown opponent strategy 'tft2'; known strategies: .*tit_for_tat"),
        (["--reward", "kind"], r"unknown reward 'kind'; known rewards: game, deontological"),
        (["--tokens", "zz"], r"unknown action tokens 'zz'; known action tokens: action12"),
        (["--game", "public_goods", "--phrasing", "ipd_like"], r"phrasing 'ipd_like' has no N-player wording"),
        (["--rounds", "0"], r"num_rounds must be a positive integer, got 0"),
        (["--max-sessions", "0"], r"max_sessions must be a positive integer, got 0"),
    ],
)
def test_bad_settings_are_refused_before_serving_with_one_line(argv, message, capsys):
    from moralgym.cli import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("moralgym serve: error: ")
    assert re.search(message, err), err


# ----------------------------------------------------------------------------------------------- stopping
@pytest.mark.parametrize(
    ("server", "signum"),
    [pytest.param("chicken", signal.SIGINT, id="SIGINT"), pytest.param("public_goods", signal.SIGTERM, id="SIGTERM")],
    indirect=["server"],
)
def test_the_server_stops_cleanly_on_a_signal(server, signum):
    """A session that ends normally and one still open when the signal comes: exit code 0 within seconds, a last line
    naming the signal, no traceback in the log."""
    with generic_client(server) as env:
        env.reset(seed=0)
    with generic_client(server) as env:
        env.reset(seed=0)
        os.kill(server.process.pid, signum)
        assert server.process.wait(20) == 0, server.output()
    assert server.stdout_path.read_text().splitlines()[-1] == f"moralgym serve: stopped ({signum.name})"
    assert "Traceback" not in server.stderr_path.read_text(), server.output()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        LOCAL.open(server.url + "/health", timeout=5)
