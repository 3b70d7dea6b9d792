"""Per-episode metrics: ``metrics.jsonl`` always, ``metrics.csv`` on request, TensorBoard / W&B when installed.

On resume the JSONL (and CSV) are cut back to the episodes before the checkpoint, so a resumed run's files equal an
uninterrupted run's (wall-clock fields, prefixed ``time/``, excepted).
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
CSV_FILE = "metrics.csv"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a run directory or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricsLogger:
    """Writes one record per episode to every configured sink."""

    def __init__(self, output_dir: str | Path, config: Any, start_episode: int = 0) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.output_dir / METRICS_FILE
        kept = [r for r in read_metrics(self.path) if r.get("episode", -1) < start_episode]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.handle = open(self.path, "a")  # noqa: SIM115 - kept open for the run
        self.csv_path = self.output_dir / CSV_FILE if config.log_csv else None
        self.csv_records = kept if self.csv_path else []
        self.tensorboard = None
        self.wandb = None
        report_to = getattr(config, "report_to", "none")
        run_name = getattr(config, "run_name", None) or self.output_dir.name
        if report_to in ("tensorboard", "all"):
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(self.output_dir / "tensorboard"), purge_step=start_episode or None)
            except ImportError:
                warnings.warn(
                    "report_to=tensorboard but tensorboard is not installed (pip install tensorboard); "
                    "logging to metrics.jsonl only",
                    stacklevel=2,
                )
        if report_to in ("wandb", "all"):
            try:
                import wandb

                self.wandb = wandb.init(
                    name=run_name, config=config.to_dict(), dir=str(self.output_dir), resume="allow"
                )
            except ImportError:
                warnings.warn(
                    "report_to=wandb but wandb is not installed (pip install wandb); logging to metrics.jsonl only",
                    stacklevel=2,
                )

    def log(self, metrics: dict[str, Any]) -> None:
        record = {k: _jsonable(v) for k, v in metrics.items()}
        self.handle.write(json.dumps(record) + "\n")
        if self.csv_path is not None:
            self.csv_records.append(record)
        step = int(metrics.get("episode", 0))
        numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "episode"}
        if self.tensorboard is not None:
            for key, value in numeric.items():
                self.tensorboard.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(numeric, step=step)

    def flush(self) -> None:
        self.handle.flush()
        if self.csv_path is not None and self.csv_records:
            keys = list(dict.fromkeys(k for r in self.csv_records for k in r))
            with open(self.csv_path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=keys)
                writer.writeheader()
                writer.writerows(self.csv_records)
        if self.tensorboard is not None:
            self.tensorboard.flush()

    def close(self) -> None:
        self.flush()
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
