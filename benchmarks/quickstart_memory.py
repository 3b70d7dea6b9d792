"""Where the quick start's memory goes: resident memory of the whole process per phase, and the size of each part.

Runs a training config (default: ``configs/quickstart.yaml``) in this process the way ``moralgym train`` does, but
phase by phase, sampling the process's resident set size (RSS, from ``/proc/self/statm``) every few milliseconds:

* ``weights``: the base model's parameters and buffers, as loaded;
* ``lora_and_optimizer``: the LoRA adapter and value head, their gradients and Adam's two moments;
* ``prefix_cache_logprobs``: the rollout policy's cached full-vocabulary log-prob vectors (one per cached prefix);
* ``prefix_cache_kv``: the KV caches the policy keeps between decisions;
* ``reference_logprob_cache``: the base model's log-probs of every (query, response) trained on;
* per phase, the peak RSS above the previous phase's end: model load, each episode's rollout and update (the
  update's activations), the before/after evaluation.

Prints a table and writes JSON (default ``benchmarks/results/quickstart_memory.json``). Extra arguments are
``moralgym train`` overrides, e.g. ``--num_episodes 2``::

    python benchmarks/quickstart_memory.py [--out FILE] [--config configs/quickstart.yaml] [--<field> VALUE ...]

The output directory is a fresh temporary one: no run is written anywhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MIB = 2**20
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakSampler:
    """Samples RSS every ``interval`` seconds in a thread; :meth:`phase` reports a block's peak and end RSS."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval, self.peak, self._stop = interval, rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.phases: list[dict[str, Any]] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    @contextmanager
    def phase(self, name: str):
        start = rss_bytes()
        self.peak = start
        began = time.perf_counter()
        yield
        self.peak = max(self.peak, rss_bytes())
        self.phases.append(
            {
                "phase": name,
                "seconds": round(time.perf_counter() - began, 2),
                "rss_start_mib": round(start / MIB, 1),
                "rss_peak_mib": round(self.peak / MIB, 1),
                "rss_end_mib": round(rss_bytes() / MIB, 1),
                "peak_above_start_mib": round((self.peak - start) / MIB, 1),
            }
        )

    def open(self, name: str) -> None:
        """Start a phase that :meth:`close_open` ends (for phases that do not nest as a ``with`` block)."""
        self._open = self.phase(name)
        self._open.__enter__()

    def close_open(self) -> None:
        self._open.__exit__(None, None, None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def parts(trainer: Any) -> dict[str, float]:
    """The size of each long-lived part, in MiB."""
    model = trainer.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    learners = list(trainer.learners.values())
    heads = [p for learner in learners for p in learner.value_head.parameters()]
    optimizer_state = [
        value
        for learner in learners
        for state in learner.optimizer.state.values()
        for value in state.values()
        if hasattr(value, "numel")
    ]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    grads = [p.grad for p in [*trainable, *heads] if p.grad is not None]
    policies = [learner.policy for learner in learners]
    logprob_vectors = [v for policy in policies for v in policy.cache.logprobs.values()]
    reference_floats = sum(len(row) for row in trainer.reference_cache.values())
    reference_tokens = sum(len(query) + len(response) for query, response in trainer.reference_cache)
    return {
        "weights": tensor_bytes([*frozen, *model.buffers()]) / MIB,
        "lora_and_optimizer": tensor_bytes([*trainable, *heads, *grads, *optimizer_state]) / MIB,
        "prefix_cache_logprobs": tensor_bytes(logprob_vectors) / MIB,
        "prefix_cache_logprob_entries": len(logprob_vectors),
        "prefix_cache_kv": sum(policy.cache.kv_bytes for policy in policies) / MIB,
        # Python objects: ~8 bytes per float in a list, ~36 per token id in the key tuples (a pointer and an int).
        "reference_logprob_cache": (reference_floats * 8 + reference_tokens * 36) / MIB,
    }


def _shown(path: str) -> str:
    """``path`` relative to the repository when it lies inside it (the JSON names no machine's directories)."""
    repository = Path(__file__).resolve().parents[1]
    resolved = Path(path).resolve()
    return str(resolved.relative_to(repository)) if resolved.is_relative_to(repository) else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(Path(__file__).parents[1] / "configs" / "quickstart.yaml"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "quickstart_memory.json"))
    args, overrides = parser.parse_known_args()

    from moralgym.training.memory import MIB, return_freed_memory, trim_heap

    sampler = PeakSampler()
    from moralgym.agents.llm.loading import load_causal_lm
    from moralgym.training import ppo
    from moralgym.training.cli import parse_config
    from moralgym.training.evaluate import evaluate_before_after
    from moralgym.training.ppo import MoralPPOTrainer

    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(["--config", args.config, "--output_dir", tmp, "--no_progress_bar", *overrides])
        return_freed_memory(config.mmap_threshold_mib * MIB)  # as `moralgym train` does (moralgym.training.cli.run)
        if config.torch_num_threads:
            import torch

            torch.set_num_threads(config.torch_num_threads)
        with sampler.phase("load model"):
            model, tokenizer = load_causal_lm(
                config.model_name_or_path, dtype=config.dtype, load_in_4bit=config.load_in_4bit
            )
            trainer = MoralPPOTrainer(config, model, tokenizer)
            trainer.prepare()
        after_episode = []
        rollout_parts: dict[int, dict[str, float]] = {}
        original_play = ppo.play_episode

        def observed_play(*a: Any, **k: Any) -> Any:
            # The rollout is its own phase; the rest of train_episode (scoring and update) is the next one.
            with sampler.phase(f"rollout {k['episode']}"):
                rollout = original_play(*a, **k)
            rollout_parts[k["episode"]] = parts(trainer)
            sampler.open(f"update {k['episode']}")
            return rollout

        ppo.play_episode = observed_play
        for episode in range(config.num_episodes):
            metrics = trainer.train_episode()
            sampler.close_open()
            after_episode.append(
                {
                    "episode": episode,
                    "generate_s": round(metrics["time/generate_s"], 2),
                    "update_s": round(metrics["time/episode_s"] - metrics["time/generate_s"], 2),
                    "after_rollout": {k: round(v, 1) for k, v in rollout_parts[episode].items()},
                    "after_update": {k: round(v, 1) for k, v in parts(trainer).items()},
                }
            )
        trainer.close_loggers()
        evaluation_phase = None
        if config.evaluate:
            return_freed_memory()  # as `moralgym train` does before its evaluation: 1 MiB
        trim_heap()
        if config.evaluate:
            with sampler.phase("evaluation"):
                evaluation = evaluate_before_after(trainer.model, trainer.tokenizer, config)
            evaluation_phase = {k: evaluation.get(k) for k in ("base", "fine_tuned") if k in evaluation}
    sampler.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    training_s = sum(p["seconds"] for p in sampler.phases if p["phase"].startswith(("rollout", "update")))
    result = {
        "command": " ".join(["python benchmarks/quickstart_memory.py --config", _shown(args.config), *overrides]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "peak_rss_mib": round(peak_mib, 1),
        "training_seconds": round(training_s, 1),
        "phases": sampler.phases,
        "parts_after_each_episode_mib": after_episode,
        "evaluation": evaluation_phase,
    }
    print(f"{'phase':<14} {'seconds':>8} {'RSS start':>10} {'RSS peak':>10} {'peak - start':>13}  (MiB)")
    for p in sampler.phases:
        print(
            f"{p['phase']:<14} {p['seconds']:>8.1f} {p['rss_start_mib']:>10.0f} {p['rss_peak_mib']:>10.0f} "
            f"{p['peak_above_start_mib']:>13.0f}"
        )
    last = after_episode[-1] if after_episode else {}
    for when in ("after_rollout", "after_update"):
        print(
            f"parts {when.replace('_', ' ')} of the last episode (MiB): "
            + ", ".join(f"{k} {v}" for k, v in last.get(when, {}).items())
        )
    print(f"peak RSS of the process: {peak_mib:.0f} MiB; training {training_s:.1f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
