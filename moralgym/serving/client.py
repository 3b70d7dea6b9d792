"""``MoralGymClient``: OpenEnv's ``EnvClient`` typed for a served match (any OpenEnv client works too).

``step`` takes a :class:`~moralgym.serving.models.MoralGymAction`, the model's answer text as a ``str`` or an
action id as an ``int``. A server error is raised as :class:`MoralGymServerError` (a ``RuntimeError``, as
OpenEnv's client raises) whose message also lists what a rejected request got wrong, so a malformed step reads
``... action_id: action_id must be 0 (cooperate), 1 (defect) or -1 (illegal answer), got 7``.
"""

from __future__ import annotations

from typing import Any

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from moralgym.serving.models import MoralGymAction, MoralGymObservation, MoralGymState

__all__ = ["MoralGymClient", "MoralGymServerError"]


class MoralGymServerError(RuntimeError):
    """An error the server answered: ``code`` (OpenEnv's ``WSErrorCode``), ``errors`` (a rejected request's
    validation errors, each with ``loc`` and ``msg``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.code = str(data.get("code", "UNKNOWN"))
        self.errors = list(data.get("errors") or [])
        details = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ())) or 'action'}: {error.get('msg', error)}"
            for error in self.errors
        )
        message = f"Server error: {data.get('message', 'Unknown error')} (code: {self.code})"
        super().__init__(f"{message}: {details}" if details else message)


class MoralGymClient(EnvClient[MoralGymAction, MoralGymObservation, MoralGymState]):
    """``MoralGymClient(base_url="http://127.0.0.1:8000").sync()`` for blocking calls; async by default."""

    def _step_payload(self, action: MoralGymAction | str | int) -> dict[str, Any]:
        if isinstance(action, str):
            action = MoralGymAction(text=action)
        elif isinstance(action, int) and not isinstance(action, bool):
            action = MoralGymAction(action_id=action)
        if not isinstance(action, MoralGymAction):
            raise TypeError(f"step() takes a MoralGymAction, the answer text or an action id, got {action!r}")
        return action.model_dump(exclude_none=True, exclude_defaults=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[MoralGymObservation]:
        observation = MoralGymObservation(
            **payload.get("observation", {}), reward=payload.get("reward"), done=payload.get("done", False)
        )
        return StepResult(observation=observation, reward=observation.reward, done=observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> MoralGymState:
        return MoralGymState(**payload)

    async def _send_and_receive(self, message: dict[str, Any]) -> dict[str, Any]:
        """OpenEnv's exchange, raising :class:`MoralGymServerError` with the rejected fields on an error."""
        await self._send(message)
        response = await self._receive()
        if response.get("type") == "error":
            raise MoralGymServerError(response.get("data", {}))
        return response
