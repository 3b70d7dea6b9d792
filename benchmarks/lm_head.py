"""The LM head on the last position of a batch: an int ``logits_to_keep`` (a sliced view) vs position indices.

transformers turns ``logits_to_keep=1`` into ``hidden[:, -1:]``, a view whose batch stride is the whole row; torch's
matmul cannot fold that view into one matrix and multiplies row by row with a copy of the weight per row. The
engine passes position indices instead (:func:`moralgym.agents.llm.engine.last_positions`): a contiguous matrix,
one matrix product. This script times both on the default model's LM head shape (49,152 x 576), in float32 and
bfloat16, as a ratio measured in the same run.

Usage: ``python benchmarks/lm_head.py [--rows 16] [--length 200] [--threads 2] [--json benchmarks/results/lm_head.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

VOCABULARY, HIDDEN = 49_152, 576  # SmolLM2-135M's LM head


def seconds_per_call(weight: torch.Tensor, hidden: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        torch.nn.functional.linear(hidden, weight)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.linear(hidden, weight)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--length", type=int, default=200, help="tokens per row before the kept position")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "lm_head.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for dtype in (torch.float32, torch.bfloat16):
        weight = torch.randn(VOCABULARY, HIDDEN, dtype=dtype)
        hidden = torch.randn(args.rows, args.length, HIDDEN, dtype=dtype)
        sliced = hidden[:, -1:, :]  # what an int logits_to_keep gives
        indexed = hidden[:, torch.tensor([args.length - 1]), :]  # what position indices give
        sliced_s = seconds_per_call(weight, sliced, args.repeats)
        indexed_s = seconds_per_call(weight, indexed, args.repeats)
        row = {
            "dtype": str(dtype).removeprefix("torch."),
            "sliced_ms": round(sliced_s * 1e3, 2),
            "indexed_ms": round(indexed_s * 1e3, 2),
            "speedup": round(sliced_s / indexed_s, 1),
        }
        results.append(row)
        print(
            f"{row['dtype']:>9}: sliced {row['sliced_ms']:8.2f} ms, indexed {row['indexed_ms']:7.2f} ms, {row['speedup']}x"
        )
    out = {
        "command": f"python benchmarks/lm_head.py --rows {args.rows} --length {args.length} --threads {args.threads}",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "threads": args.threads},
        "torch": torch.__version__,
        "results": results,
    }
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
