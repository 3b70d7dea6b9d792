"""Training runs as Ray tasks: ``experiments/study.py --ray-address ...`` and ``moralgym train --config A.yaml
--config B.yaml --ray_address ...`` (commands: docs/scale_out.md).

Why tasks, and why this little: a run is already self-contained (one config, one output_dir, resumable from its
checkpoints, docs/training.md), so scaling out is scheduling. Each run becomes one Ray task that asks for the
resources its config needs (one GPU when the base is loaded in 4 bit, as the paper configs do; otherwise CPUs,
with torch using that many threads), writes to its own run dir exactly as the sequential runner does, and returns
its summary. The run dir stays the only state: a finished run is skipped before anything is submitted, a failed
task is retried by Ray (``max_retries``) and, since study runs resume, the retry continues from the last
checkpoint. A run that still fails is reported with its error on one line; the other runs finish regardless.

Ray is imported only when runs are submitted: ``import moralgym.training`` stays light, and without the ``ray``
extra the error is one line naming ``pip install "moralgym[ray]"``.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moralgym.training.config import TrainingConfig

__all__ = [
    "INSTALL_HINT",
    "RayOptions",
    "RayReport",
    "RayUnavailable",
    "RayUsageError",
    "RunOutcome",
    "RunSpec",
    "RunsFailed",
    "check_distinct_output_dirs",
    "import_ray",
    "run_on_ray",
    "run_resources",
    "run_study_runs",
]

INSTALL_HINT = 'pip install "moralgym[ray]"'
#: ``ray.init`` addresses that start a cluster on this machine rather than join one.
LOCAL_ADDRESSES = (None, "local")
#: How long an interrupted driver waits for its cancelled runs to write their Ctrl-C checkpoint.
CANCEL_WAIT_S = 60.0


class RayUnavailable(ImportError):
    """Ray was asked for but is not installed: one line, naming the extra."""


class RayUsageError(ValueError):
    """Runs that cannot be scheduled as given (two runs in one output_dir, a run no node can hold), found before
    any run starts: one line, exit code 2."""


class RunsFailed(RuntimeError):
    """Some runs failed after their retries; the others finished. ``result`` is what the caller built from the
    finished ones (the study's summary), so a command can still show it before exiting non-zero."""

    def __init__(self, failures: Sequence[RunOutcome], result: Any = None) -> None:
        self.failures = list(failures)
        self.result = result
        super().__init__(f"{len(self.failures)} run(s) failed: " + "; ".join(f.line() for f in self.failures))

    def lines(self) -> list[str]:
        return [f"{len(self.failures)} run(s) failed after their retries:", *(f"  {f.line()}" for f in self.failures)]


@dataclass(frozen=True)
class RayOptions:
    """Where the runs go and what each one asks for.

    ``address``: ``None`` or ``"local"`` starts a Ray cluster on this machine (``num_cpus`` sizes it, default all
    cores) and shuts it down after; ``"auto"`` joins the cluster ``ray start`` runs here; ``"HOST:PORT"`` or
    ``"ray://HOST:10001"`` joins a remote one. A process that already called ``ray.init`` keeps its cluster.
    ``cpus_per_run`` (default: the config's ``torch_num_threads``, else 1) is both the task's CPUs and torch's thread
    count in it; ``gpus_per_run`` (default: 1 if the config loads the base in 4 bit, else 0); ``memory_per_run_gib``
    reserves memory so Ray does not pack more runs on a node than fit; ``max_retries``: retries per run after a
    failure (a crashed worker or an exception).
    """

    address: str | None = None
    num_cpus: int | None = None
    cpus_per_run: int | None = None
    gpus_per_run: float | None = None
    memory_per_run_gib: float | None = None
    max_retries: int = 1

    def __post_init__(self) -> None:
        if self.num_cpus is not None and self.address not in LOCAL_ADDRESSES:
            raise RayUsageError(
                f"num_cpus sizes a local Ray cluster; the cluster at {self.address!r} has its own CPUs: drop it"
            )
        for name in ("num_cpus", "cpus_per_run"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RayUsageError(f"{name} must be at least 1, got {value}")
        for name in ("gpus_per_run", "memory_per_run_gib"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise RayUsageError(f"{name} must be 0 or more, got {value}")
        if self.max_retries < 0:
            raise RayUsageError(f"max_retries must be 0 or more, got {self.max_retries}")

    @property
    def local(self) -> bool:
        return self.address in LOCAL_ADDRESSES


@dataclass(frozen=True)
class RunSpec:
    """One run to schedule: ``execute(config)`` trains (and evaluates) it and returns its summary. ``execute`` must
    be picklable (a module-level function or a ``functools.partial`` of one); ``finished`` runs are not submitted."""

    label: str
    config: TrainingConfig
    execute: Callable[[TrainingConfig], dict[str, Any]]
    finished: bool = False


@dataclass
class RunOutcome:
    """What became of one run: ``"finished"``, ``"skipped"`` (finished before) or ``"failed"`` (``error``, one
    line)."""

    label: str
    output_dir: str
    status: str
    summary: dict[str, Any] | None = None
    error: str | None = None
    seconds: float | None = None
    node: str | None = None

    def line(self) -> str:
        return f"{self.label} ({self.output_dir}): {self.error}"


@dataclass
class RayReport:
    """Every run's outcome, in the order the runs were given."""

    outcomes: list[RunOutcome] = field(default_factory=list)

    def with_status(self, status: str) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[RunOutcome]:
        return self.with_status("failed")

    @property
    def skipped(self) -> list[RunOutcome]:
        return self.with_status("skipped")

    @property
    def finished(self) -> list[RunOutcome]:
        return self.with_status("finished")


def import_ray() -> Any:
    """``ray``, or :class:`RayUnavailable` with the install command."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable(f"running on Ray needs Ray ({error}); {INSTALL_HINT}") from None
    return ray


def check_distinct_output_dirs(configs: Sequence[TrainingConfig], labels: Sequence[str]) -> None:
    """Two runs writing into one output_dir would mix their results: :class:`RayUsageError` before any work."""
    seen: dict[Path, str] = {}
    for config, label in zip(configs, labels, strict=True):
        where = Path(config.output_dir).expanduser().resolve()
        if where in seen:
            raise RayUsageError(
                f"{seen[where]} and {label} both write to output_dir {config.output_dir}; give each run its own "
                "output_dir (an --output_dir flag applies to every config)"
            )
        seen[where] = label


def run_resources(config: TrainingConfig, options: RayOptions) -> dict[str, Any]:
    """The Ray resources of one run: ``num_cpus`` (also torch's threads), ``num_gpus`` and, if asked, ``memory``."""
    cpus = options.cpus_per_run or config.torch_num_threads or 1
    gpus = options.gpus_per_run if options.gpus_per_run is not None else (1 if config.load_in_4bit else 0)
    resources: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus}
    if options.memory_per_run_gib:
        resources["memory"] = int(options.memory_per_run_gib * 2**30)
    return resources


def _run_task(execute: Callable[[TrainingConfig], dict[str, Any]], config: TrainingConfig) -> dict[str, Any]:
    """The Ray task: one run, with torch on the task's CPUs (the trainer applies ``torch_num_threads`` itself; set
    here too so loading and the evaluations around training use the same count)."""
    started = time.perf_counter()
    if config.torch_num_threads:
        import torch

        torch.set_num_threads(config.torch_num_threads)
    summary = execute(config)
    return {"summary": summary, "seconds": time.perf_counter() - started, "node": socket.gethostname()}


def _one_line(error: BaseException, limit: int = 300) -> str:
    """A task's error as ``Type: message`` on one line: the run's own exception (Ray wraps it, with the worker's
    traceback, in a ``RayTaskError`` whose ``cause`` it is), or Ray's (a crashed worker, a cancelled task)."""
    cause = getattr(error, "cause", None)
    error = cause if isinstance(cause, BaseException) else error
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _connect(ray: Any, options: RayOptions) -> bool:
    """Connect (or start a local cluster); True if this call started Ray and must shut it down."""
    if ray.is_initialized():
        return False
    if options.local:
        ray.init(address="local", num_cpus=options.num_cpus, include_dashboard=False)
    else:
        ray.init(address=options.address)
    return True


def _describe(need: dict[str, Any]) -> str:
    """``1 CPU, 0 GPUs, 6 GiB memory``: one run's Ray resources."""
    text = f"{need['num_cpus']:g} CPUs, {need['num_gpus']:g} GPUs"
    return text + (f", {need['memory'] / 2**30:g} GiB memory" if need.get("memory") else "")


def _check_fits(ray: Any, needs: Sequence[dict[str, Any]], options: RayOptions, log: Callable[[str], None]) -> None:
    """A run no node can hold would wait forever: an error on a local cluster, a warning on a cluster that an
    autoscaler may grow."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    keys = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    for need in needs:
        if any(all(node.get(keys[k], 0) >= v for k, v in need.items() if v) for node in nodes):
            continue
        largest = max(
            (_describe({k: node.get(keys[k], 0) for k in keys}) for node in nodes),
            default="no node",
        )
        message = f"a run needs {_describe(need)} on one node, but no Ray node has that (largest: {largest})"
        if options.local:
            raise RayUsageError(
                f"{message}; ask for less per run (cpus, gpus, memory per run) or join a larger cluster"
            )
        log(f"warning: {message}; the runs wait until a node that fits joins")
        return


def run_on_ray(
    specs: Sequence[RunSpec], options: RayOptions | None = None, *, log: Callable[[str], None] | None = None
) -> RayReport:
    """Run every unfinished spec as a Ray task and wait for all of them; returns each run's outcome.

    Progress is one ``log`` line per run as it ends. A run's task is retried ``options.max_retries`` times (Ray's
    ``max_retries`` with ``retry_exceptions``), each try in a fresh worker process (``max_calls=1``: the memory of
    one run is not carried into the next). Inside a task the config's ``torch_num_threads`` is the task's CPUs and
    progress bars are off (their output interleaves); both are result-neutral fields (docs/training.md). Ctrl-C
    cancels the runs (each checkpoints its last episode, as a Ctrl-C'd ``moralgym train`` does) and re-raises.
    """
    options = options or RayOptions()
    log = log or (lambda message: print(f"[ray] {message}", flush=True))
    check_distinct_output_dirs([s.config for s in specs], [s.label for s in specs])
    outcomes = [RunOutcome(s.label, s.config.output_dir, "skipped" if s.finished else "pending") for s in specs]
    todo = [i for i, s in enumerate(specs) if not s.finished]
    if not todo:
        log(f"all {len(specs)} runs finished before; nothing to submit")
        return RayReport(outcomes)
    ray = import_ray()
    needs = [run_resources(specs[i].config, options) for i in todo]
    started_ray = _connect(ray, options)
    try:
        _check_fits(ray, needs, options, log)
        task = ray.remote(max_calls=1)(_run_task)
        pending: dict[Any, int] = {}
        for i, need in zip(todo, needs, strict=True):
            config = dataclasses.replace(specs[i].config, torch_num_threads=need["num_cpus"], progress_bar=False)
            extra: dict[str, Any] = {}
            if not need["num_gpus"]:  # a CPU run on a GPU node must not take a GPU it did not ask for
                extra["runtime_env"] = {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}
            ref = task.options(
                name=specs[i].label, max_retries=options.max_retries, retry_exceptions=True, **need, **extra
            ).remote(specs[i].execute, config)
            pending[ref] = i
        resources = ray.cluster_resources()
        kinds = sorted({_describe(need) for need in needs})
        log(
            f"submitted {len(todo)} runs ({len(specs) - len(todo)} finished before, skipped) to Ray "
            f"({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs); each run: {' or '.join(kinds)}"
        )
        _collect(ray, pending, outcomes, len(todo), options, log)
    finally:
        if started_ray:
            ray.shutdown()
    report = RayReport(outcomes)
    if report.failed:
        log(f"{len(report.failed)} of {len(todo)} runs failed after {options.max_retries + 1} attempt(s) each:")
        for outcome in report.failed:
            log(f"  {outcome.line()}")
    return report


def run_study_runs(
    specs: Sequence[RunSpec], options: RayOptions, summarise: Callable[[], Any], label: str = "study"
) -> Any:
    """A study's runs on Ray (:func:`run_on_ray`, log lines prefixed ``[label]``), then ``summarise()`` over what
    finished. Returns the summary; raises :class:`RunsFailed` carrying it if some runs failed after their retries, so
    the command can still show the finished runs' tables before exiting non-zero."""
    report = run_on_ray(specs, options, log=lambda message: print(f"[{label}] {message}", flush=True))
    summary = summarise()
    if report.failed:
        raise RunsFailed(report.failed, summary)
    return summary


def _collect(
    ray: Any,
    pending: dict[Any, int],
    outcomes: list[RunOutcome],
    total: int,
    options: RayOptions,
    log: Callable[[str], None],
) -> None:
    """Wait for the tasks, one outcome (and one line) as each ends."""
    done = 0
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            outcome = outcomes[pending.pop(ref)]
            done += 1
            try:
                result = ray.get(ref)
            except Exception as error:  # noqa: BLE001 - the run's failure, reported with the others at the end
                outcome.status, outcome.error = "failed", _one_line(error)
                log(
                    f"{done}/{total} {outcome.label}: failed after {options.max_retries + 1} attempt(s): "
                    f"{outcome.error}"
                )
                continue
            outcome.status, outcome.summary = "finished", result["summary"]
            outcome.seconds, outcome.node = result["seconds"], result["node"]
            log(f"{done}/{total} {outcome.label}: finished in {outcome.seconds:.0f} s on {outcome.node}")
    except KeyboardInterrupt:
        log(f"interrupted: cancelling {len(pending)} runs (each checkpoints its last episode)")
        for ref in pending:
            ray.cancel(ref)
        ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_S)
        raise
