"""The torch side of a comparison, in a process of its own:

    python -m tinygrad_pt.bench.worker '{"suite": "ops", "device": "cpu", "threads": 2, ...}'

prints one JSON line {row name: timing summary}. Why a separate process: PyTorch and
tinygrad_pt each run their own thread pools (torch's OpenMP pool; Numba's OpenMP threads and
OpenBLAS's pthreads). In one process, the idle pool of one framework spins on the cores while the
other computes: measured on 2 cores, torch's GAN step went from 6.7 ms alone to 94 ms beside
tinygrad_pt, and tinygrad_pt's GPT step from 198 ms to 428 ms. Each framework is timed alone, in
its default configuration, with the same thread count.
"""
from __future__ import annotations

import json
import sys


def run(spec: dict) -> dict:
    import torch  # first: torch's OpenMP runtime starts with the user's environment

    from .ops import op_cases
    from .steps import build_recipe, cycling
    from .timing import time_calls, torch_cuda_clock, wall_clock
    from .torch_ops import torch_op
    from .torch_steps import torch_step

    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    clock = torch_cuda_clock() if device == "cuda" else wall_clock
    results = {}
    if spec["suite"] == "ops":
        for case in op_cases(device):
            if case.name in spec["names"]:
                calls = {case.name: torch_op(case, device)}
                results.update(time_calls(calls, warmup=spec["warmup"], repeat=spec["repeat"],
                                          budget_s=spec["budget_s"], clock=clock))
    else:
        for name in spec["names"]:
            # the recipe (tinygrad_pt, on the CPU) only supplies the weights and the batches
            recipe = build_recipe(name, "cpu", spec.get("configs", {}).get(name))
            batches = [recipe.draw_batch() for _ in range(4)]
            calls = {name: cycling(torch_step(recipe, device), batches)}
            results.update(time_calls(calls, warmup=spec["warmup"], repeat=spec["repeat"],
                                      budget_s=spec["budget_s"], clock=clock))
    results["_torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
    return results


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
