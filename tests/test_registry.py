"""The one registry type behind games, rewards, opponents/strategies and prompt parts: aliases, normalisation,
errors that list the known names and accepted keywords, and one definition per reward formula."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moralgym.agents.llm.prompts import (
    ACTION_TOKENS,
    PERSONAS,
    PHRASINGS,
    TABLE_ORDERS,
    PromptBuilder,
    get_action_tokens,
    register_action_tokens,
    register_persona,
    register_phrasing,
    register_table_order,
)
from moralgym.agents.strategies import STRATEGIES, get_strategy, list_strategies
from moralgym.envs import PAPER_GAMES, get_game, get_reward, list_games, list_rewards, make_opponent
from moralgym.envs.games import GAMES, MatrixGame, register_game
from moralgym.envs.opponents import OPPONENTS, is_opponent_name, list_opponents
from moralgym.envs.outcomes import OutcomeTable
from moralgym.envs.rewards import (
    COMPONENT_NAMES,
    PARTNER_ILLEGAL_RULES,
    REWARDS,
    DeontologicalReward,
    UtilitarianReward,
    reward_components,
)
from moralgym.registry import Registry, normalise_name

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- the type
def _colours() -> Registry[str]:
    registry: Registry[str] = Registry("colour")
    registry.register("dark_red", "#8b0000", aliases=("maroon", "Blood Red"))
    registry.register("white", "#ffffff")
    return registry


def test_names_and_aliases_match_whatever_their_case_spaces_and_dashes():
    colours = _colours()
    for spelling in ("dark_red", "Dark Red", " DARK-RED ", "maroon", "blood-red", "BLOOD_RED"):
        assert spelling in colours and colours[spelling] == "#8b0000" and colours.canonical(spelling) == "dark_red"
    assert normalise_name(" Game, then-Deontological ") == "game,_then_deontological"
    assert normalise_name("A-B", case_sensitive=True) == "A_B"


def test_it_is_a_mapping_of_canonical_names_in_registration_order():
    colours = _colours()
    assert list(colours) == colours.names() == ["dark_red", "white"] and len(colours) == 2
    assert dict(colours.items()) == {"dark_red": "#8b0000", "white": "#ffffff"}
    assert colours.aliases("maroon") == ("maroon", "Blood Red")
    assert colours.get("nope") is None and colours.get("Maroon") == "#8b0000"
    assert 3 not in colours and None not in colours
    colours["black"] = "#000000"  # item assignment registers, as on the dicts the registries replaced
    assert colours.names()[-1] == "black"
    del colours["blood red"]  # deleting by an alias deletes the entry and every alias
    assert "dark_red" not in colours and "maroon" not in colours and colours.names() == ["white", "black"]


def test_an_unknown_name_is_a_one_line_key_error_listing_the_known_ones():
    with pytest.raises(KeyError) as error:
        _colours()["dark_rde"]
    message = error.value.args[0]
    assert message == "unknown colour 'dark_rde'; known colours: dark_red, white; did you mean 'dark_red'?"
    assert "\n" not in message
    with pytest.raises(KeyError) as error:
        _colours().canonical("x")
    assert error.value.args[0] == "unknown colour 'x'; known colours: dark_red, white"  # no close name, no guess


def test_a_case_sensitive_registry_keeps_case_apart():
    pairs: Registry[str] = Registry("pair", case_sensitive=True)
    pairs.register("AB", "upper")
    pairs.register("ab", "lower")
    assert pairs["AB"] == "upper" and pairs["ab"] == "lower" and pairs[" AB "] == "upper" and "Ab" not in pairs


def test_reregistering_replaces_the_entry_and_keeps_its_spelling_position_and_aliases():
    colours = _colours()
    colours.register("Dark-Red", "#800000")
    assert colours.names() == ["dark_red", "white"] and colours["maroon"] == "#800000"


def test_an_alias_moves_only_with_overwrite_and_never_shadows_a_name():
    colours = _colours()
    colours.register("crimson", "#dc143c", aliases=("maroon",))  # overwrite=True by default: the alias moves
    assert colours.canonical("maroon") == "crimson" and colours.aliases("dark_red") == ("Blood Red",)
    with pytest.raises(ValueError, match="colour name 'blood red' is already registered for 'dark_red'"):
        colours.register("scarlet", "#ff2400", aliases=("blood red",), overwrite=False)
    assert "scarlet" not in colours  # nothing changed
    with pytest.raises(ValueError, match="'white' is the name of 'white'"):
        colours.register("snow", "#fffafa", aliases=("white",))
    assert "snow" not in colours and colours["white"] == "#ffffff"
    with pytest.raises(ValueError, match="non-empty string"):
        colours.register("  ", "#000000")


def test_build_checks_keywords_and_lists_the_accepted_ones():
    def make_shade(level: int = 1, alpha: float = 1.0) -> tuple[int, float]:
        return level, alpha

    shades: Registry = Registry("shade", builder="make_shade")
    shades.register("grey", make_shade, aliases=("gray",))
    assert shades.build("Gray", level=3) == (3, 1.0)
    with pytest.raises(
        TypeError,
        match=r"make_shade\('grey'\): unknown keyword argument 'alpah' \(did you mean 'alpha'\?\); "
        r"accepted keyword arguments: 'level', 'alpha'",
    ):
        shades.build("grey", alpah=0.5)
    with pytest.raises(KeyError, match="known shades: grey"):
        shades.build("blue")


# ----------------------------------------------------------------------------------------------- games
@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("ipd", "ipd"),
        ("IPD", "ipd"),
        (" Prisoners-Dilemma ", "ipd"),
        ("prisoners dilemma", "ipd"),
        ("PD", "ipd"),
        ("stag-hunt", "stag_hunt"),
        ("ISH", "stag_hunt"),
        ("sh", "stag_hunt"),
        ("icn", "chicken"),
        ("Hawk Dove", "chicken"),
        ("BoS", "bach_or_stravinsky"),
        ("battle-of-the-sexes", "bach_or_stravinsky"),
        ("icd", "defective_coordination"),
        ("Defective Coordination", "defective_coordination"),
    ],
)
def test_every_game_name_and_short_name_works(spelling, name):
    assert get_game(spelling).name == name


def test_games_list_registration_order_and_refuse_a_taken_name():
    assert list_games() == [game.name for game in PAPER_GAMES] == GAMES.names()
    with pytest.raises(KeyError) as error:
        get_game("poker")
    assert error.value.args[0] == (
        "unknown game 'poker'; known games: ipd, stag_hunt, chicken, bach_or_stravinsky, defective_coordination "
        "(or pass a payoff table)"
    )
    impostor = MatrixGame("impostor", [[3, 0], [5, 1]], short_names=("pd",))
    with pytest.raises(ValueError, match="game name 'pd' is already registered for 'ipd'"):
        register_game(impostor)
    assert "impostor" not in GAMES and get_game("pd").name == "ipd"


# ----------------------------------------------------------------------------------------------- rewards
@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("game", "game"),
        ("Selfish", "game"),
        ("de", "deontological"),
        ("DE", "deontological"),
        ("ut", "utilitarian"),
        ("game+deontological", "game_deontological"),
        ("game+de", "game_deontological"),
        ("game_de", "game_deontological"),
        ("Game-Deontological", "game_deontological"),
        ("Game, then Deontological", "game_then_deontological"),
        ("game,_then_deontological", "game_then_deontological"),
        ("game->deontological", "game_then_deontological"),
        ("game_>deontological", "game_then_deontological"),
        ("game_de_sequential", "game_then_deontological"),
        ("game then deontological", "game_then_deontological"),
        ("Game -> Utilitarian".replace(" ", ""), "game_then_utilitarian"),
        ("game, then utilitarian", "game_then_utilitarian"),
    ],
)
def test_every_reward_name_and_alias_works(spelling, name):
    assert REWARDS.canonical(spelling) == name
    assert get_reward(spelling).name == name


def test_rewards_unknown_name_and_keyword():
    assert list_rewards() == REWARDS.names()
    with pytest.raises(KeyError, match="unknown reward 'kant'; known rewards: game, deontological, utilitarian, "):
        get_reward("kant")
    with pytest.raises(TypeError, match=r"get_reward\('game_then_utilitarian'\): unknown keyword argument 'swich'"):
        get_reward("Game, then Utilitarian", swich=3)


def _all_rounds(game, penalty, illegal_reward, rule):
    return OutcomeTable(get_game(game), penalty, illegal_reward, rule)


@pytest.mark.parametrize("rule", PARTNER_ILLEGAL_RULES)
@pytest.mark.parametrize("game", [game.name for game in PAPER_GAMES])
def test_components_are_the_rewards_get_reward_builds(game, rule):
    for penalty, illegal_reward in ((3.0, -6.0), (4.0, -10.0)):
        table = _all_rounds(game, penalty, illegal_reward, rule)
        for seat, components in ((0, table.components_0), (1, table.components_1)):
            assert tuple(components) == COMPONENT_NAMES
            for name in COMPONENT_NAMES:
                reward = get_reward(name, penalty=penalty, illegal_reward=illegal_reward)
                assert np.array_equal(components[name], table.reward_table(reward, seat))


def test_a_reward_formula_is_defined_once(monkeypatch):
    """Change a class's formula: the reward components (and so every OutcomeTable) follow, because they have none
    of their own."""
    inputs = _all_rounds("ipd", 3.0, -6.0, "last_legal").inputs_0
    before = reward_components(inputs)
    monkeypatch.setattr(
        DeontologicalReward, "legal_reward", lambda self, inputs: np.full(np.shape(inputs.own_action), 7.0)
    )
    monkeypatch.setattr(
        UtilitarianReward, "legal_reward", lambda self, inputs: np.full(np.shape(inputs.own_action), 5.0)
    )
    after = reward_components(inputs)
    legal = ~inputs.illegal
    assert np.all(after["deontological"][legal] == 7.0) and np.all(after["utilitarian"][legal] == 5.0)
    assert np.all(after["game_deontological"][legal] == 7.0 + np.asarray(inputs.own_payoff)[legal])
    assert np.array_equal(after["game"], before["game"])
    assert np.all(_all_rounds("ipd", 3.0, -6.0, "last_legal").components_0["deontological"][legal] == 7.0)


def test_schedule_phases_are_the_registered_rewards():
    schedule = get_reward("game_then_deontological", switch_episode=2, penalty=5, illegal_reward=-9)
    assert repr(schedule.at(0)) == repr(get_reward("game", illegal_reward=-9))
    assert repr(schedule.at(2)) == repr(get_reward("deontological", penalty=5, illegal_reward=-9))
    with pytest.raises(ValueError, match="penalty must be a finite number"):  # checked like get_reward("utilitarian")
        get_reward("game_then_utilitarian", penalty=float("nan"))


# ----------------------------------------------------------------------------------------------- opponents
def test_every_strategy_name_and_alias_is_an_opponent():
    for name, cls in STRATEGIES.items():
        kwargs = {"p_cc": 1, "p_cd": 0, "p_dc": 1, "p_dd": 0} if name == "memory_one" else {}
        for spelling in (name, name.upper(), name.replace("_", "-"), name.replace("_", " "), *cls.aliases):
            assert is_opponent_name(spelling) and type(make_opponent(spelling, **kwargs)) is cls
            assert type(get_strategy(spelling, **kwargs)) is cls and STRATEGIES[spelling] is cls
    assert list_opponents()[: len(STRATEGIES)] == list(STRATEGIES)
    assert list_strategies() == sorted(STRATEGIES)
    assert not is_opponent_name("nice_guy") and not is_opponent_name(3)  # type: ignore[arg-type]


def test_opponents_unknown_name_and_keyword():
    with pytest.raises(KeyError) as error:
        make_opponent("tit_for_tatt")
    message = error.value.args[0]
    assert message.startswith("unknown opponent strategy 'tit_for_tatt'; known strategies: always_cooperate, ")
    assert all(name in message for name in OPPONENTS) and message.endswith("did you mean 'tit_for_tat'?")
    with pytest.raises(TypeError, match=r"make_opponent\('random'\): unknown keyword argument 'q'.*'p'"):
        make_opponent("coin flip", q=0.1)


# ----------------------------------------------------------------------------------------------- prompts
@pytest.fixture
def cleanup():
    """Remove what a test registers in the global prompt registries (the tiny test tokenizer reads them)."""
    added: list[tuple[Registry, str]] = []
    yield added
    for registry, name in added:
        if name in registry:
            del registry[name]


def test_prompt_registries_list_what_they_always_listed():
    """The built-ins, in their order (other tests may have registered more after them)."""
    assert list(ACTION_TOKENS)[:10] == [
        "action12",
        "action34",
        "action21",
        "action43",
        "AB",
        "BA",
        "XY",
        "YX",
        "01",
        "10",
    ]
    assert list(PHRASINGS)[:9] == [
        "paper",
        "unstructured",
        "ipd_like",
        "explicit_ipd",
        "explicit_ipd_corrected",
        "action_only",
        "action_game",
        "action_game_state",
        "structured",
    ]
    assert list(TABLE_ORDERS)[:4] == ["original", "cols_reversed", "rows_reversed", "reversed"]
    assert list(PERSONAS)[:2] == ["utilitarian", "deontologist"]
    assert PHRASINGS["structured"] is PHRASINGS["paper"]


@pytest.mark.parametrize(
    ("alias", "kwargs"),
    [
        ({"phrasing": "training"}, {"phrasing": "paper"}),
        ({"phrasing": "Paper"}, {"phrasing": "paper"}),
        ({"phrasing": "poetic"}, {"phrasing": "ipd_like"}),
        ({"phrasing": "explicit"}, {"phrasing": "explicit_ipd"}),
        ({"phrasing": "unrelated-question"}, {"phrasing": "action_only"}),
        ({"phrasing": "unrelated_game"}, {"phrasing": "action_game"}),
        ({"phrasing": "unrelated_morality"}, {"phrasing": "action_game_state"}),
        ({"table_order": "permuted1"}, {"table_order": "cols_reversed"}),
        ({"table_order": "permuted2"}, {"table_order": "rows_reversed"}),
        ({"table_order": "Cols-Reversed"}, {"table_order": "cols_reversed"}),
        ({"persona": "Ut"}, {"persona": "utilitarian"}),
        ({"persona": "De"}, {"persona": "deontologist"}),
        ({"persona": "deontological"}, {"persona": "deontologist"}),
        ({"tokens": "action3,action4"}, {"tokens": "action34"}),
    ],
)
def test_prompt_aliases_render_the_same_text(alias, kwargs):
    for bits in ((0, 0), (1, 1)):
        ours = PromptBuilder(**alias).user_text("stag_hunt", [0, 1], bits)
        assert ours == PromptBuilder(**kwargs).user_text("stag_hunt", [0, 1], bits)


def test_token_pairs_keep_case_and_the_comma_spelling():
    assert get_action_tokens("action1,action2") is ACTION_TOKENS["action12"]
    assert ACTION_TOKENS.canonical("X,Y") == "XY"
    assert tuple(get_action_tokens("left, right")) == ("left", "right")  # any pair, registered or not
    assert "ab" not in ACTION_TOKENS
    with pytest.raises(KeyError, match="known action tokens: action12, .*'cooperate,defect'"):
        get_action_tokens("nonsense")


def test_registering_prompt_parts_with_aliases(cleanup):
    cleanup += [
        (ACTION_TOKENS, "ab"),
        (PHRASINGS, "registry_terse"),
        (TABLE_ORDERS, "registry_cols"),
        (PERSONAS, "registry_ego"),
    ]
    register_action_tokens("ab", "a", "b", aliases=("lower_ab",))
    assert tuple(ACTION_TOKENS["ab"]) == ("a", "b") and tuple(ACTION_TOKENS["AB"]) == ("A", "B")
    assert PromptBuilder(tokens="lower-ab").action_tokens.cooperate == "a"
    register_phrasing("registry_terse", "Pick {first_x} or {first_y}. {answer_format}", aliases=("registry_short",))
    assert (
        PromptBuilder(phrasing="Registry Short").user_text("ipd", [0, 0], (0, 0)).startswith("Pick action1 or action2.")
    )
    register_table_order("registry_cols", (0, 1), (1, 0), aliases=("registry_swapped",))
    assert PromptBuilder(table_order="registry-swapped").context("ipd", [0, 0]).layout.cols == (1, 0)
    register_persona("registry_ego", "You only care about your own points.", aliases=("registry_egoist",))
    assert PromptBuilder(persona="REGISTRY_EGOIST").user_text("ipd", [0, 0]).startswith("You only care")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"phrasing": "nope"}, "unknown phrasing 'nope'; known phrasings: paper, unstructured, "),
        ({"table_order": "diagonal"}, "unknown table order 'diagonal'; known table orders: original, cols_reversed"),
        ({"persona": "nihilist"}, "unknown persona 'nihilist'; known personas: utilitarian, deontologist"),
    ],
)
def test_prompt_builder_unknown_names(kwargs, pattern):
    with pytest.raises(KeyError, match=pattern):
        PromptBuilder(**kwargs)


# ----------------------------------------------------------------------------------------------- imports
def test_the_registry_needs_only_the_standard_library_and_the_envs_no_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('registry', {str(ROOT / 'moralgym' / 'registry.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "assert 'numpy' not in sys.modules, 'registry imported numpy'\n"
        "import moralgym.envs\n"
        "assert 'torch' not in sys.modules, 'moralgym.envs imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
