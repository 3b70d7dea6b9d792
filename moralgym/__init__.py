"""moralgym: social-dilemma matrix games and moral rewards for studying and training (LLM) agents.

``import moralgym`` registers every game with PettingZoo (``pettingzoo.make("parallel", "moralgym/ipd-v0")``) and
Gymnasium (``gymnasium.make("moralgym/IPD-v0", opponent="tit_for_tat")``) and the classic opponent strategies by
name. It imports no torch: the LLM, training and evaluation modules load it when used.
"""

from moralgym.agents import strategies as _strategies  # noqa: F401 - registers the strategy library by name
from moralgym.envs.registration import register_all as _register_all

__version__ = "0.1.0"

_register_all()
