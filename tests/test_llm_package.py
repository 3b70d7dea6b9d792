"""``moralgym.agents.llm`` loads its names lazily: the pure-text modules import without torch."""

import inspect
import subprocess
import sys

import pytest


def _run(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_prompts_and_parsing_import_without_torch():
    _run(
        "import sys, moralgym.agents.llm.prompts, moralgym.agents.llm.parsing\n"
        "from moralgym.agents.llm import PromptBuilder, parse_action\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))"
    )


def test_play_stays_the_function_after_its_submodule_is_imported():
    _run(
        "import inspect, moralgym.agents.llm.play\n"
        "from moralgym.agents.llm import play\n"
        "assert inspect.isfunction(play), play"
    )


def test_every_public_name_resolves():
    pytest.importorskip("torch")
    import moralgym.agents.llm as llm

    assert sorted(llm.__all__) == sorted(llm._SOURCES) and len(llm.__all__) == len(set(llm.__all__))
    for name in llm.__all__:
        assert getattr(llm, name) is not None
    assert inspect.isfunction(llm.play) and llm.LLMEnvAgent.__module__ == "moralgym.agents.llm.env_agent"
    with pytest.raises(AttributeError, match="LLMAgent"):
        llm.LLMAgent  # noqa: B018 - renamed LLMEnvAgent (one class per name; see moralgym.evaluation.llm_agent)
