"""``moralgym train --config CONFIG.yaml [--key value ...]``: parse, build, train, evaluate, plot.

The script layer is thin on purpose: parsing is :class:`trl.TrlParser` over the argument groups of
:class:`TrainingConfig` (a flat YAML file sets defaults, command-line flags override them; ``--help`` lists the
fields by group), training is :class:`MoralPPOTrainer` (or the GRPO path), evaluation is
:func:`moralgym.training.evaluate.evaluate_before_after`, and the plot is
:func:`moralgym.training.plotting.plot_learning_curve`.

Before any model loads, :func:`preflight` checks what can be checked: the model and adapter paths, that output_dir
is writable, that it holds no earlier run (unless ``--resume`` or ``--overwrite``), and that a ``--resume`` continues
the same run (a valid checkpoint, no result-changing field changed). Every user error is one line on stderr naming
the problem and the fix, exit code 2 (``--debug`` raises it with its traceback instead); Ctrl-C checkpoints the last
completed episode and exits with 130 and the command that resumes.

Several configs (``--config A.yaml --config B.yaml``, field flags applying to each) run as Ray tasks, one per config,
on a local Ray cluster or the one ``--ray_address auto`` joins (:func:`main_run_list`, docs/scale_out.md): every
config is parsed and preflighted, and the output_dirs checked distinct, before any run starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from moralgym.training.config import TRAINING_ARGUMENT_GROUPS, TrainingConfig
from moralgym.training.memory import MIB, mmap_threshold_in_effect, return_freed_memory, trim_heap

USAGE = (
    "moralgym train --config CONFIG.yaml [--resume | --overwrite] [--debug] [--<field> VALUE ...]   "
    "(fields: moralgym train --help)"
)
#: The run-list mode, which ``--help`` would not show otherwise (its flags are not config fields).
RUN_LIST_HELP = (
    "Several runs: moralgym train --config A.yaml --config B.yaml [--ray_address local|auto|HOST:PORT] "
    "[--ray_num_cpus N] [--ray_cpus_per_run N] [--ray_gpus_per_run G] [--ray_memory_per_run GIB] "
    "[--ray_max_retries N] [--<field> VALUE ...]: every config is checked first, then each runs as a Ray task "
    "(finished runs skipped, failures retried and listed); the --<field> values apply to every config. "
    "docs/scale_out.md."
)

#: What a moralgym run writes into its output_dir: any of them there means the directory holds a run, and
#: ``--overwrite`` deletes exactly these (other files are kept).
RUN_FILES = (
    "adapter",
    "adapter_player_1",
    "metrics.jsonl",
    "metrics.csv",
    "config.json",
    "summary.json",
    "checkpoints",
    "learning_curve.png",
    "evaluation",
    "evaluation_variants",
    "transfer_evaluation",
    "game_phase",
    "game_phase.json",
    "tensorboard",
    "wandb",
    "grpo",
)
#: The same for files named per seat or per earlier evaluation: adapters of seats 2.. (N-player runs with several
#: learning seats) and the earlier prompt-variant evaluations a study kept.
RUN_FILE_PATTERNS = ("adapter_player_*", "evaluation_variants_*")


#: ``moralgym train`` flags of a run list (several ``--config``): where the runs go and what each asks for, as
#: ``flag: (RayOptions field, type)`` (moralgym.training.ray_runs.RayOptions).
RAY_FLAGS = {
    "--ray_address": ("address", str),
    "--ray_num_cpus": ("num_cpus", int),
    "--ray_cpus_per_run": ("cpus_per_run", int),
    "--ray_gpus_per_run": ("gpus_per_run", float),
    "--ray_memory_per_run": ("memory_per_run_gib", float),
    "--ray_max_retries": ("max_retries", int),
}


class UsageError(ValueError):
    """Bad input found before the heavy work: reported as one line, exit code 2."""


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _say(message: str) -> None:
    if _is_main_process():
        print(f"[moralgym] {message}", file=sys.stderr)


def parse_config(argv: Sequence[str] | None = None) -> TrainingConfig:
    """YAML (``--config``) + command-line overrides -> a validated :class:`TrainingConfig`.

    Raises :class:`UsageError` (a ``ValueError``) for a missing/invalid YAML file, unknown fields, abbreviated or
    malformed flags; ``ValueError`` for a bad value (named by ``TrainingConfig``); ``FileNotFoundError`` for a missing
    file.
    """
    from trl import TrlParser

    class Parser(TrlParser):
        def error(self, message: str) -> None:  # argparse would print the usage and exit; one line instead
            raise UsageError(f"{message}; see moralgym train --help for the fields")

    args = list(argv) if argv is not None else sys.argv[1:]
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args) or args[index + 1].startswith("--"):
            raise UsageError("--config needs a YAML file: moralgym train --config CONFIG.yaml")
        _check_yaml(args[index + 1])
    # One dataclass per argument group: --help lists the fields by group; the flat YAML keys and flags reach the
    # group that owns them, and from_parts joins (and validates) them. --learning_rat is not --learning_rate.
    parser = Parser(TRAINING_ARGUMENT_GROUPS, usage=USAGE, epilog=RUN_LIST_HELP, allow_abbrev=False)
    *parts, from_file, from_command_line = parser.parse_args_and_config(
        args, return_remaining_strings=True, separate_remaining_strings=True
    )
    if from_file:
        names = [item[2:] for item in from_file[::2]]
        raise UsageError(f"unknown field(s) in the config file: {', '.join(names)}; see moralgym train --help")
    if from_command_line:
        raise UsageError(
            f"unknown argument(s) {' '.join(from_command_line)} (flags are not abbreviated); "
            "see moralgym train --help for the fields"
        )
    return TrainingConfig.from_parts(*parts)


def _check_yaml(path: str) -> None:
    """A missing file or a YAML syntax error, reported with its position before trl reads the file."""
    import yaml

    if not Path(path).is_file():
        raise FileNotFoundError(
            f"config file {path} not found; pass an existing YAML file (e.g. configs/quickstart.yaml)"
        )
    try:
        yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UsageError(f"{path} is not valid YAML: {problem}{where}; fix the file") from None


# ------------------------------------------------------------------------------------------------ preflight
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_path(value: str) -> bool:
    """A local path rather than a hub id: starts with ``./``, ``../``, ``/`` or ``~``, has more than one ``/``, or
    uses the platform's separator where it is not ``/`` (a hub id is ``name`` or ``org/name``)."""
    return (
        value.startswith(("./", "../", "/", "~", ".\\", "..\\"))
        or value in (".", "..")
        or value.count("/") > 1
        or (os.sep != "/" and os.sep in value)
        or not _HUB_ID.match(value)
    )


def check_model_paths(config: TrainingConfig) -> None:
    name = config.model_name_or_path
    if name != "default" and looks_like_path(name) and not Path(name).expanduser().is_dir():
        raise UsageError(
            f"model_name_or_path: no such model directory {name!r}; pass an existing directory saved with "
            "save_pretrained, a hub id such as google/gemma-2-2b-it, or 'default'"
        )
    adapter = config.init_adapter
    if adapter is not None and not (Path(adapter).expanduser() / "adapter_config.json").is_file():
        raise UsageError(
            f"init_adapter: {adapter!r} is not an adapter directory (no adapter_config.json); pass the adapter/ "
            "directory of a moralgym run"
        )


def check_writable(output_dir: Path) -> None:
    """output_dir (or the nearest existing folder above it, where it will be created) must be a writable folder."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"output_dir {output_dir} is a file, not a directory; choose another --output_dir")
    existing = output_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(
            f"output_dir {output_dir} cannot be created: {existing} is a file; choose another --output_dir"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UsageError(
            f"output_dir {output_dir} is not writable ({existing}: {error.strerror or error}); choose another "
            "--output_dir or fix its permissions"
        ) from None


def existing_run_files(output_dir: Path) -> list[str]:
    if not output_dir.is_dir():
        return []
    found = [name for name in RUN_FILES if (output_dir / name).exists()]
    more = [p.name for pattern in RUN_FILE_PATTERNS for p in output_dir.glob(pattern) if p.name not in found]
    return found + sorted(more)


def clear_run(output_dir: Path) -> list[str]:
    """``--overwrite``: delete the earlier run's files (:data:`RUN_FILES`), keep anything else."""
    removed = existing_run_files(output_dir)
    for name in removed:
        path = output_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def _format_value(value: Any) -> str:
    return repr(value)


def preflight(config: TrainingConfig, model: Any = None) -> Path | None:
    """Every check that needs no model, in order; returns the checkpoint a ``--resume`` continues from (``None``:
    a fresh start). With ``--overwrite`` the earlier run's files are deleted later, by :func:`overwrite_run`."""
    from moralgym.training.checkpoints import CHECKPOINTS_DIR, checkpoint_config, checkpoint_episode, find_checkpoint

    output_dir = Path(config.output_dir)
    if config.resume and config.overwrite:
        raise UsageError(
            "--resume and --overwrite exclude each other: --resume continues the run in output_dir, --overwrite "
            "replaces it; pass one"
        )
    if model is None:
        check_model_paths(config)
    check_writable(output_dir)
    checkpoint = None
    if config.resume:
        if config.algorithm != "ppo":
            raise UsageError(f"--resume needs algorithm 'ppo' (algorithm {config.algorithm!r} writes no checkpoints)")
        checkpoint, problems = find_checkpoint(output_dir)
        if checkpoint is None and problems:
            raise UsageError(
                f"no valid checkpoint to resume in {output_dir / CHECKPOINTS_DIR}: {'; '.join(problems)}; "
                "start again with --overwrite or train into a new --output_dir"
            )
        for problem in problems:
            _say(f"warning: damaged checkpoint skipped: {problem}; resuming from {checkpoint} instead")
        if checkpoint is not None:
            saved, episode, source = checkpoint_config(checkpoint), checkpoint_episode(checkpoint), str(checkpoint)
        elif (output_dir / "config.json").is_file():  # a run without checkpoints: replayed from episode 0
            saved, episode, source = json.loads((output_dir / "config.json").read_text()), 0, str(output_dir)
        else:
            saved, episode, source = None, 0, ""
        if saved is not None:
            changes = config.result_changes(saved, episode)
            if "num_episodes" in changes:
                raise UsageError(
                    f"--resume: num_episodes {config.num_episodes} is below the checkpoint's episode {episode} "
                    f"({source}); pass --num_episodes {episode} or more"
                )
            if changes:
                listed = ", ".join(f"{k} {_format_value(a)} -> {_format_value(b)}" for k, (a, b) in changes.items())
                raise UsageError(
                    f"--resume would change the run in {source}: {listed}; these change the result, so resume with "
                    "the run's values, or train into a new --output_dir (or --overwrite)"
                )
        if checkpoint is None:
            _say(f"--resume: no checkpoint in {output_dir / CHECKPOINTS_DIR}; starting fresh from episode 0")
    elif _is_main_process():
        found = existing_run_files(output_dir)
        if found and not config.overwrite:
            raise UsageError(
                f"output_dir {output_dir} already holds a run ({', '.join(found)}); continue it with --resume, "
                "train into a new --output_dir, or replace it with --overwrite"
            )
    return checkpoint


def overwrite_run(config: TrainingConfig) -> None:
    """``--overwrite``: delete the earlier run's files, once the model has loaded (the last step that can fail on
    bad input), right before the new run writes its first file, so nothing of the two runs mixes."""
    if config.overwrite and _is_main_process():
        removed = clear_run(Path(config.output_dir))
        if removed:
            _say(f"--overwrite: deleted the earlier run's {', '.join(removed)} in {config.output_dir}")


def peak_memory_mib() -> float:
    """Peak resident memory of this process (``ru_maxrss``, KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(
    config: TrainingConfig,
    model: Any = None,
    tokenizer: Any = None,
    on_trained: Callable[[Any, Any], None] | None = None,
    *,
    resume_from: str | os.PathLike | None = None,
    checked: bool = False,
) -> dict[str, Any]:
    """Train (and evaluate, plot) one configured run; returns the summary also written to ``summary.json``.

    ``on_trained(model, tokenizer)``, if given, is called on the main process once training stops (finished or
    stopped early), before the evaluation: the experiment scripts use it to evaluate more without reloading.
    :func:`preflight` runs first (it raises :class:`UsageError`) unless ``checked`` says the caller ran it and got
    ``resume_from``.
    """
    started = time.perf_counter()
    # Before the model loads: every block from the threshold up, allocated from here on, is returnable.
    return_freed_memory(config.mmap_threshold_mib * MIB)
    output_dir = Path(config.output_dir)
    if not checked:
        resume_from = preflight(config, model)
    if config.algorithm == "grpo":
        from moralgym.training.grpo import train_grpo

        trainer = None
        overwrite_run(config)
        result = train_grpo(config, model, tokenizer)
        model, tokenizer = result["model"], result["tokenizer"]
        is_main = True
        last = result["last"]
        agent = result["agent"]
    else:
        from moralgym.training.ppo import MoralPPOTrainer

        trainer = MoralPPOTrainer(config, model, tokenizer)
        overwrite_run(config)
        last = trainer.train(resume_from=resume_from)
        model, tokenizer, is_main = trainer.model, trainer.tokenizer, trainer.is_main
        agent = "player_0"
    train_s = time.perf_counter() - started
    summary: dict[str, Any] = {
        "output_dir": str(output_dir),
        "algorithm": config.algorithm,
        "episodes": config.num_episodes,
        "finished": trainer is None or trainer.episode >= config.num_episodes,
        "train_seconds": round(train_s, 1),
        "last_episode": {k: v for k, v in last.items() if not k.startswith("time/")},
    }
    if trainer is not None:
        summary["processes"] = trainer.world_size
        summary["time_split_seconds"] = {k: round(v, 1) for k, v in trainer.timers.items()}
    if is_main:
        from moralgym.provenance import provenance

        # Versions of the stack and a hash of the base weights (adapters excluded): see moralgym.provenance.
        summary["provenance"] = {"model_name_or_path": config.model_name_or_path, **provenance(model)}
        # The allocator setting is treated as result-relevant (docs/benchmarks.md): say which one applied.
        summary["allocator"] = mmap_threshold_in_effect(config.mmap_threshold_mib * MIB)
    if is_main and on_trained is not None:
        on_trained(model, tokenizer)
    if is_main and summary["finished"] and config.evaluate:
        return_freed_memory()  # 1 MiB: the evaluation's many KV blocks peak lower (docs/benchmarks.md)
    trim_heap()  # the training's freed heap pages, before the evaluation allocates its own
    if is_main and summary["finished"]:
        if config.evaluate:
            from moralgym.training.evaluate import evaluate_before_after

            t0 = time.perf_counter()
            evaluation = evaluate_before_after(model, tokenizer, config, agent=agent)
            summary["evaluation"] = evaluation
            summary["evaluation_seconds"] = round(time.perf_counter() - t0, 1)
        if config.plot:
            from moralgym.training.plotting import plot_learning_curve

            try:
                summary["learning_curve"] = str(plot_learning_curve(output_dir, config))
            except ImportError as error:  # matplotlib missing: the metrics are still there
                print(f"[moralgym] no learning curve: {error}", file=sys.stderr)
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    summary["peak_memory_mib"] = round(peak_memory_mib(), 1)
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print(format_summary(summary))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"[moralgym] run finished in {summary['total_seconds']} s (training {summary['train_seconds']} s), "
        f"peak memory {summary['peak_memory_mib']} MiB -> {summary['output_dir']}"
    ]
    evaluation = summary.get("evaluation")
    if evaluation:
        lines.append(
            "[moralgym] evaluation (paper protocol: vs random, "
            f"{evaluation['episodes']} episodes x {evaluation['rounds']} rounds, tokens "
            f"{evaluation['tokens']}, games {', '.join(evaluation['games'])}):"
        )
        lines.append(f"  {'model':<12}{'cooperation':>12}{'illegal':>10}{'De regret':>11}{'Ut regret':>11}")
        for name in ("base", "fine_tuned"):
            m = evaluation[name]
            lines.append(
                f"  {name:<12}{m['cooperation_rate']:>12.3f}{m['illegal_rate']:>10.3f}"
                f"{m['regret_deontological']:>11.3f}{m['regret_utilitarian']:>11.3f}"
            )
    return "\n".join(lines)


def resume_command(argv: Sequence[str], output_dir: str) -> str:
    """The command line that continues this run: the same arguments, ``--resume`` instead of ``--overwrite``."""
    kept: list[str] = []
    skip_value = False
    for index, arg in enumerate(argv):
        if skip_value:
            skip_value = False
            continue
        if arg in ("--overwrite", "--resume", "--debug"):
            following = argv[index + 1] if index + 1 < len(argv) else ""
            skip_value = following.lower() in ("true", "false", "yes", "no", "1", "0")
            continue
        kept.append(arg)
    if "--output_dir" not in kept:
        kept += ["--output_dir", output_dir]
    return "moralgym train " + shlex.join([*kept, "--resume"])


def _debug_requested(argv: list[str]) -> bool:
    from moralgym.cli import debug_enabled

    found = "--debug" in argv
    while "--debug" in argv:
        argv.remove("--debug")
    return found or debug_enabled()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``moralgym train``; returns a process exit code (0 done, 2 bad input, 130 Ctrl-C, 1 other
    failure). Errors are one line on stderr; ``--debug`` raises them with their traceback instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    if not argv:
        print(f"usage: {USAGE}\nquick start: moralgym train --config configs/quickstart.yaml", file=sys.stderr)
        return 2
    if is_run_list(argv):
        return main_run_list(argv, debug)
    try:
        try:
            config = parse_config(argv)
            resume_from = preflight(config)
        except (ValueError, FileNotFoundError) as error:  # bad input, found before the heavy work
            if debug:
                raise
            print(f"moralgym train: {_one_line(error)}", file=sys.stderr)
            return 2
        run(config, resume_from=resume_from, checked=True)
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        from moralgym.training.ppo import TrainingInterrupted

        if isinstance(interrupt, TrainingInterrupted):
            if interrupt.checkpoint is not None:  # (other processes: the main one says it)
                print(
                    f"moralgym train: interrupted; the state after episode {interrupt.episode} is checkpointed in "
                    f"{interrupt.checkpoint}; resume with: {resume_command(argv, config.output_dir)}",
                    file=sys.stderr,
                )
        else:
            print(
                "moralgym train: interrupted outside the training episodes; no checkpoint was written (earlier "
                "checkpoints, if any, are intact)",
                file=sys.stderr,
            )
        return 130
    except Exception as error:  # noqa: BLE001 - one line, not a traceback; --debug shows it
        if debug:
            raise
        return _report_failure(error)
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _report_failure(error: BaseException) -> int:
    """An unexpected error as one line on stderr (``--debug`` shows the traceback instead); exit code 1."""
    print(
        f"moralgym train: {type(error).__name__}: {_one_line(error)} (rerun with --debug for the traceback)",
        file=sys.stderr,
    )
    return 1


# ------------------------------------------------------------------------------------------------ run lists
def is_run_list(argv: Sequence[str]) -> bool:
    """Several ``--config`` files, or any ``--ray_*`` flag: the runs go to Ray (:func:`main_run_list`)."""
    flags = [arg.partition("=")[0] for arg in argv]
    return flags.count("--config") > 1 or any(flag in RAY_FLAGS for flag in flags)


def split_run_list(argv: Sequence[str]) -> tuple[list[str], dict[str, Any], list[str]]:
    """A run list's ``--config`` files, its ``--ray_*`` values as RayOptions fields, and the field flags that apply
    to every config (``--flag value`` or ``--flag=value``)."""
    configs: list[str] = []
    ray: dict[str, Any] = {}
    shared: list[str] = []
    index = 0
    while index < len(argv):
        flag, equals, value = argv[index].partition("=")
        if flag != "--config" and flag not in RAY_FLAGS:
            shared.append(argv[index])
            index += 1
            continue
        if not equals:
            if index + 1 >= len(argv) or argv[index + 1].startswith("--"):
                raise UsageError(f"{flag} needs a value: moralgym train --config A.yaml --config B.yaml {flag} VALUE")
            value = argv[index + 1]
        index += 1 if equals else 2
        if flag == "--config":
            configs.append(value)
            continue
        name, kind = RAY_FLAGS[flag]
        try:
            ray[name] = kind(value)
        except ValueError:
            raise UsageError(f"{flag} expects {'an integer' if kind is int else 'a number'}, got {value!r}") from None
    if not configs:
        raise UsageError("the --ray_* flags run configs on Ray: give them with --config A.yaml [--config B.yaml ...]")
    return configs, ray, shared


def run_complete(config: TrainingConfig) -> bool:
    """The run in output_dir finished this config's episodes (and its evaluation, if asked): a ``--resume`` of it
    would only redo the evaluation, so a run list skips it."""
    path = Path(config.output_dir) / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    return bool(
        summary.get("finished")
        and summary.get("episodes") == config.num_episodes
        and ("evaluation" in summary or not config.evaluate)
    )


def train_in_ray_task(config: TrainingConfig) -> dict[str, Any]:
    """One config of a run list, as its Ray task runs it: :func:`run`, with its own preflight.

    The driver's preflight found output_dir without a run (or with the one ``--resume`` continues or
    ``--overwrite`` replaces). Run files there although neither was asked are this task's own earlier attempt, which
    failed and which Ray retries: the retry continues it with ``--resume`` (checked like any resume), or replaces it
    where there are no checkpoints to continue (GRPO).
    """
    if not (config.resume or config.overwrite) and existing_run_files(Path(config.output_dir)):
        name = "resume" if config.algorithm == "ppo" else "overwrite"
        _say(f"retry: {config.output_dir} holds this run's failed attempt; continuing with --{name}")
        config = dataclasses.replace(config, **{name: True})
    return run(config)


def parse_run_list(argv: Sequence[str]) -> tuple[list[str], list[TrainingConfig], Any]:
    """Config files, their configs (each file with the shared flags) and the RayOptions; every check that needs no
    run: each config's preflight, distinct output_dirs. Raises ``UsageError`` naming the config file at fault."""
    from moralgym.training.ray_runs import RayOptions, check_distinct_output_dirs

    paths, ray_values, shared = split_run_list(argv)
    options = RayOptions(**ray_values)
    configs = []
    for path in paths:
        try:
            configs.append(parse_config(["--config", path, *shared]))
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(f"{path}: {_one_line(error)}") from error
    check_distinct_output_dirs(configs, paths)
    for path, config in zip(paths, configs, strict=True):
        try:
            preflight(config)
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(f"{path}: {_one_line(error)}") from error
    return paths, configs, options


def main_run_list(argv: list[str], debug: bool = False) -> int:
    """``moralgym train --config A.yaml --config B.yaml ... [--ray_address auto] [--<field> VALUE ...]``: each
    config a Ray task (:func:`moralgym.training.ray_runs.run_on_ray`). Returns 0 when every run finished (or had
    before, with ``--resume``), 2 for bad input (nothing started), 1 when some runs failed after their retries (each
    listed on one line; the others finished), 130 on Ctrl-C."""
    from moralgym.training.ray_runs import RayUnavailable, RunsFailed, RunSpec, import_ray, run_on_ray

    try:
        try:
            paths, configs, options = parse_run_list(argv)
            finished = [config.resume and run_complete(config) for config in configs]
            if not all(finished):
                import_ray()
        except (ValueError, FileNotFoundError, RayUnavailable) as error:
            if debug:
                raise
            print(f"moralgym train: {_one_line(error)}", file=sys.stderr)
            return 2
        specs = [
            RunSpec(path, config, train_in_ray_task, finished=done)
            for path, config, done in zip(paths, configs, finished, strict=True)
        ]
        report = run_on_ray(specs, options, log=_say)
    except KeyboardInterrupt:
        if debug:
            raise
        print(
            "moralgym train: interrupted; the runs checkpointed their last completed episode; continue them with "
            "the same command and --resume",
            file=sys.stderr,
        )
        return 130
    except Exception as error:  # noqa: BLE001 - one line, not a traceback; --debug shows it
        if debug:
            raise
        return _report_failure(error)
    if report.failed:
        for line in RunsFailed(report.failed).lines():
            print(f"moralgym train: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
