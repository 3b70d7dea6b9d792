"""PPO training of LLM agents in N-player games, on tiny random models: a 4-player public goods run against
conditional cooperators writes its run; same seed, same run; one adapter per learning seat or one shared adapter;
every LLM seat of a round in one joint call (with the prefix cache paying off); resume equals the uninterrupted run;
bad N-player settings are one-line errors before the model loads; the evaluation after training follows the
N-player protocol (docs/training.md "N-player games")."""

from __future__ import annotations

import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from conftest import TINY_TRAINING_OVERRIDES  # noqa: E402

from moralgym.agents.llm.testing import tiny_model_and_tokenizer  # noqa: E402
from moralgym.envs.n_player import DEFAULT_NUM_PLAYERS  # noqa: E402
from moralgym.envs.n_player.rewards import DEFAULT_NORM  # noqa: E402
from moralgym.training.config import SHARED_ADAPTER, TrainingConfig  # noqa: E402
from moralgym.training.tracking import read_metrics  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

#: The tiny training settings on a 4-player public goods game: player_0 learns, three conditional cooperators.
N_PLAYER = dict(game="public_goods", num_players=4, opponent="conditional_cooperator", plot=False)
NUM_ENVS, NUM_ROUNDS = TINY_TRAINING_OVERRIDES["num_envs"], TINY_TRAINING_OVERRIDES["num_rounds"]
BATCH = NUM_ENVS * NUM_ROUNDS


def n_player_config(tmp_path, **overrides) -> TrainingConfig:
    return TrainingConfig(**{**TINY_TRAINING_OVERRIDES, **N_PLAYER, "output_dir": str(tmp_path), **overrides})


def train(tmp_path, **overrides):
    from moralgym.training.ppo import MoralPPOTrainer

    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    trainer = MoralPPOTrainer(n_player_config(tmp_path, **overrides), model, tokenizer)
    trainer.train()
    return trainer


def untimed(records):
    return [{k: v for k, v in r.items() if "time/" not in k} for r in records]


def adapter_hashes(run_dir) -> dict[str, str]:
    """SHA-256 of every saved adapter file of a run (``adapter*/``), by relative path."""
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.glob("adapter*/*"))
        if path.is_file()
    }


def lora_b(directory):
    from safetensors.torch import load_file

    return [v for k, v in load_file(str(directory / "adapter_model.safetensors")).items() if "lora_B" in k]


def spy_on(monkeypatch, module, name):
    """Record the arguments of every call of ``module.name`` (which must exist), calling through."""
    real = getattr(module, name)
    calls = []

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return calls


# ------------------------------------------------------------------------------------------------ one learner
def test_a_4_player_public_goods_run_against_conditional_cooperators_writes_its_run(tmp_path, monkeypatch):
    import moralgym.training.rollout as rollout
    from moralgym.agents.llm.seat import LLMSeat
    from moralgym.agents.seats import NPlayerStrategySeat

    episodes = spy_on(monkeypatch, rollout, "run_episodes")
    trainer = train(tmp_path)
    # every episode seats the learner in seat 0 and a conditional cooperator in each other seat
    assert len(episodes) == 2
    for args, kwargs in episodes:
        envs, seats = args
        assert [env.unwrapped.num_players for env in envs] == [4] * NUM_ENVS
        assert isinstance(seats["player_0"], LLMSeat) and seats["player_0"].policy.adapter_name == "player_0"
        for seat in ("player_1", "player_2", "player_3"):
            assert isinstance(seats[seat], NPlayerStrategySeat)
            assert seats[seat].strategy.name == "conditional_cooperator"
        assert len(set(kwargs["seat_seeds"].values())) == 4  # every seat its own stream
    records = read_metrics(tmp_path)
    assert [r["episode"] for r in records] == [0, 1]
    last = records[-1]
    assert last["ppo/samples"] == BATCH and isinstance(last["ppo/loss"], float)
    assert last["env/reward_name"] == "deontological"
    assert 0 <= last["env/others_cooperation_rate"] <= 1 and "env/mean_total_payoff" in last
    assert "env/opponent_cooperation_rate" not in last and "env/count_C|3" in last  # N-player metrics
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["game"], config["num_players"], config["learning_seats"]) == ("public_goods", 4, 1)
    assert sorted(p.name for p in tmp_path.glob("adapter*")) == ["adapter"]
    assert any(v.abs().sum() > 0 for v in lora_b(tmp_path / "adapter"))  # B starts at zero: training moved it
    assert list(trainer.model.peft_config) == ["player_0"]


def test_same_seed_same_run_and_another_seed_another(tmp_path):
    train(tmp_path / "a")
    train(tmp_path / "b")
    assert untimed(read_metrics(tmp_path / "a")) == untimed(read_metrics(tmp_path / "b"))
    assert adapter_hashes(tmp_path / "a") == adapter_hashes(tmp_path / "b") != {}
    train(tmp_path / "c", seed=2)
    assert adapter_hashes(tmp_path / "c") != adapter_hashes(tmp_path / "a")


# ------------------------------------------------------------------------------------------------ several learners
@pytest.fixture(scope="module")
def per_seat(tmp_path_factory):
    """Two learning seats with an adapter each (and two conditional cooperators), 3 episodes, uninterrupted."""
    out = tmp_path_factory.mktemp("per_seat")
    return train(out, learning_seats=2, num_episodes=3, reward="utilitarian", opponent_reward="game"), out


def test_two_learning_seats_train_an_adapter_each(per_seat):
    trainer, out = per_seat
    assert list(trainer.model.peft_config) == ["player_0", "player_1"]
    assert trainer.learners["player_0"].optimizer is not trainer.learners["player_1"].optimizer
    last = read_metrics(out)[-1]
    assert last["player_0/ppo/samples"] == last["player_1/ppo/samples"] == BATCH
    assert (last["player_0/env/reward_name"], last["player_1/env/reward_name"]) == ("utilitarian", "game")
    assert sorted(p.name for p in out.glob("adapter*")) == ["adapter", "adapter_player_1"]
    a, b = lora_b(out / "adapter"), lora_b(out / "adapter_player_1")
    assert any(v.abs().sum() > 0 for v in a) and any(v.abs().sum() > 0 for v in b)  # both trained
    assert any(not torch.equal(x, y) for x, y in zip(a, b, strict=True))  # ... each its own way


def test_parameter_sharing_trains_one_adapter_on_every_learning_seats_samples(tmp_path, monkeypatch):
    """Through ``moralgym train``'s :func:`~moralgym.training.cli.run`: training, the shared adapter saved as the one
    player_0 plays, the summary with its provenance, and the evaluation of that adapter."""
    from moralgym.training.cli import run
    from moralgym.training.ppo import MoralPPOTrainer

    updates = spy_on(monkeypatch, MoralPPOTrainer, "update")
    trained = []
    config = n_player_config(
        tmp_path, learning_seats=2, parameter_sharing=True, evaluate=True, eval_episodes=2, eval_rounds=1
    )
    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    summary = run(config, model, tokenizer, on_trained=lambda model, tokenizer: trained.append(model))
    (peft_model,) = trained
    assert list(peft_model.peft_config) == [SHARED_ADAPTER]
    assert len(updates) == 2  # one update per episode, of the one learner
    for (_, learner, samples, _), _ in updates:
        assert learner.agent == SHARED_ADAPTER and learner.seats == ["player_0", "player_1"]
        assert [s.seat for s in samples] == [0] * BATCH + [1] * BATCH  # both seats, in seat order
    last = read_metrics(tmp_path)[-1]
    assert last["ppo/samples"] == 2 * BATCH and "player_1/ppo/loss" not in last
    assert sorted(p.name for p in tmp_path.glob("adapter*")) == ["adapter"]  # the adapter player_0 plays
    assert any(v.abs().sum() > 0 for v in lora_b(tmp_path / "adapter"))
    assert summary["finished"] and "model_name_or_path" in summary["provenance"]
    assert summary["evaluation"]["games"] == ["public_goods"] and summary["evaluation"]["num_players"] == 4
    assert json.loads((tmp_path / "summary.json").read_text())["evaluation"]["fine_tuned"]


# ------------------------------------------------------------------------------------------------ the joint call
@pytest.mark.parametrize("sharing", [False, True], ids=["adapter_per_seat", "shared_adapter"])
def test_every_llm_seat_of_a_round_decides_in_one_joint_call(tmp_path, monkeypatch, sharing):
    """Three learning seats and one conditional cooperator: one joint ``decide_jointly`` call per round holds every
    learning seat's rows, forwarded by the lead policy's engine alone, and the prefix cache serves every round after
    the first."""
    import moralgym.agents.llm.seat as seat_module

    calls = []
    real = seat_module.decide_jointly

    def spy(requests):
        calls.append([(request[0].adapter_name, list(request[3])) for request in requests])
        return real(requests)

    monkeypatch.setattr(seat_module, "decide_jointly", spy)
    trainer = train(tmp_path, learning_seats=3, parameter_sharing=sharing)
    seats = [[j] * NUM_ENVS for j in range(3)]
    if sharing:  # one policy in three seats: one decide over all their rows
        expected = [(SHARED_ADAPTER, [*seats[0], *seats[1], *seats[2]])]
    else:  # one policy per seat, one adapter each, in one mixed-adapter call
        expected = [(f"player_{j}", seats[j]) for j in range(3)]
    assert calls == [expected] * (2 * NUM_ROUNDS)  # episodes x rounds
    policies = [learner.policy for learner in trainer.learners.values()]
    assert policies[0].stats["forwards"] > 0 and all(p.stats["forwards"] == 0 for p in policies[1:])
    # round one prefetches every state a later round can show: those rounds' first tokens are all cache hits
    later_rounds = 2 * (NUM_ROUNDS - 1) * 3 * NUM_ENVS
    assert policies[0].stats["cache_hits"] >= later_rounds


# ------------------------------------------------------------------------------------------------ resume
def test_a_resumed_n_player_run_equals_the_uninterrupted_one(per_seat, tmp_path):
    _, full = per_seat
    out = tmp_path / "resumed"
    stopped = train(out, learning_seats=2, num_episodes=3, reward="utilitarian", opponent_reward="game",
                    stop_after_episodes=1, save_every=1)  # fmt: skip
    assert stopped.episode == 1 and not (out / "adapter").exists()
    checkpoint = out / "checkpoints" / "episode-000001"
    assert (checkpoint / "adapter_player_0").is_dir() and (checkpoint / "adapter_player_1").is_dir()
    torch.manual_seed(999)  # whatever the global RNG state, the resumed run must replay exactly
    train(out, learning_seats=2, num_episodes=3, reward="utilitarian", opponent_reward="game", resume=True)
    assert untimed(read_metrics(out)) == untimed(read_metrics(full))
    assert adapter_hashes(out) == adapter_hashes(full)


# ------------------------------------------------------------------------------------------------ bad settings
BAD = {
    "num_players_with_ipd": (dict(game="ipd", num_players=4), "num_players=4 applies to N-player games"),
    "unknown_opponent": (dict(opponent="generous_tit_for_tat"), "opponent: unknown N-player strategy"),
    "too_many_learners": (dict(learning_seats=5), "learning_seats (5) is larger than num_players (4)"),
    "sharing_one_seat": (dict(parameter_sharing=True), "parameter_sharing shares one adapter"),
    "unknown_reward": (dict(reward="kindnes"), "reward: unknown N-player reward 'kindnes'"),
    "unknown_game_param": (dict(game_params={"multiplyer": 3.0}), "game_params: "),
    "grpo": (dict(algorithm="grpo"), "algorithm 'grpo' trains on two-player games only"),
    "learning_seats_with_ipd": (
        dict(game="ipd", num_players=None, learning_seats=2),
        "learning_seats=2 applies to N-player games",
    ),
}


@pytest.mark.parametrize(("overrides", "message"), BAD.values(), ids=BAD.keys())
def test_bad_n_player_settings_are_one_line_errors_before_the_model_loads(tmp_path, overrides, message, capsys):
    pytest.importorskip("yaml")
    import yaml

    import moralgym.agents.llm.loading as loading
    from moralgym.training.cli import main

    with pytest.raises(ValueError) as error:
        n_player_config(tmp_path, **overrides)
    assert message in str(error.value) and "\n" not in str(error.value)
    settings = {**N_PLAYER, **overrides}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(settings))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded before the error"))
        code = main(["--config", str(tmp_path / "c.yaml"), "--output_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_n_player_fields_parse_from_yaml_and_the_command_line(tmp_path):
    pytest.importorskip("yaml")
    from moralgym.training.cli import parse_config

    (tmp_path / "c.yaml").write_text(
        "game: public_goods\nnum_players: 3\ngame_params: {multiplier: 2.5}\nlearning_seats: 2\n"
        "parameter_sharing: true\nreward_norm: majority\nopponent: grim_trigger\n"
    )
    config = parse_config(["--config", str(tmp_path / "c.yaml")])
    assert (config.num_players, config.game_params, config.learning_seats) == (3, {"multiplier": 2.5}, 2)
    assert config.parameter_sharing and config.reward_norm == "majority" and config.fixed_seats == ["player_2"]
    assert config.learner_groups == {SHARED_ADAPTER: ["player_0", "player_1"]}
    config = parse_config(["--config", str(tmp_path / "c.yaml"), "--game_params", '{"multiplier": 2}'])
    assert config.game_params == {"multiplier": 2}
    assert TrainingConfig(game="public_goods").num_players == DEFAULT_NUM_PLAYERS  # recorded in config.json
    assert TrainingConfig().reward_norm == DEFAULT_NORM and TrainingConfig().num_players is None
    # the new fields change the result: a --resume may not change them
    saved = TrainingConfig(game="public_goods").to_dict()
    changed = TrainingConfig(game="public_goods", learning_seats=2, num_players=5).result_changes(saved)
    assert set(changed) == {"learning_seats", "num_players"}


def test_the_docs_example_is_a_valid_config(tmp_path):
    import re
    from pathlib import Path

    yaml = pytest.importorskip("yaml")
    docs = (Path(__file__).parents[1] / "docs" / "training.md").read_text()
    section = docs.split("## N-player games", 1)[1].split("\n## ", 1)[0]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    config = TrainingConfig(**example)
    assert config.learners == ["player_0", "player_1"] and config.fixed_seats == ["player_2", "player_3"]
    assert config.learner_groups == {"player_0": ["player_0"], "player_1": ["player_1"]}
    assert type(config.reward_spec("player_1")).__name__ == "NPlayerUtilitarianReward"


def test_the_game_params_and_norm_reach_the_envs_and_rewards(tmp_path):
    from moralgym.training.rollout import make_envs

    config = n_player_config(tmp_path, game_params={"multiplier": 3.0}, reward_norm="any", learning_seats=2)
    envs = make_envs(config, start_episode=0)
    assert len(envs) == NUM_ENVS
    default = make_envs(n_player_config(tmp_path), start_episode=0)[0].unwrapped.game
    game = envs[0].unwrapped.game
    assert game.num_players == 4 and game != default  # the multiplier changed the Schelling diagram
    assert envs[0].unwrapped.norm == "any"
    rewards = envs[0].reward_functions
    assert [type(rewards[f"player_{j}"]).__name__ for j in range(4)] == [
        *["NPlayerDeontologicalReward"] * 2,  # the learning seats' reward, with the run's norm
        *["NPlayerGameReward"] * 2,  # the fixed seats' (never used)
    ]
    assert rewards["player_0"].norm == rewards["player_1"].norm == "any"


# ------------------------------------------------------------------------------------------------ evaluation
def test_the_evaluation_after_training_plays_the_training_game_against_random_co_players(per_seat, tmp_path):
    from moralgym.training.evaluate import evaluate_before_after

    trainer, _ = per_seat
    config = n_player_config(tmp_path, learning_seats=2, evaluate=True, eval_episodes=2, eval_rounds=2)
    result = evaluate_before_after(trainer.model, trainer.tokenizer, config)
    assert (result["games"], result["num_players"], result["opponent"]) == (["public_goods"], 4, "random")
    assert {"others_cooperation_rate", "regret_game"} <= set(result["fine_tuned"]) and result["base"]
    rows = [json.loads(line) for line in (tmp_path / "evaluation" / "decisions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2 and {row["num_players"] for row in rows} == {4}  # episodes x rounds x (tuned, base)
    assert {row["game"] for row in rows} == {"public_goods"} and {row["seat"] for row in rows} == {0}
    meta = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert (meta["num_players"], meta["seed"], meta["opponents"]) == (4, config.eval_seed, ["random"])
