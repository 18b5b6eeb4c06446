"""Per-step CPU time of the calling thread for training steps, with everything on one thread: an
A/B yardstick for overhead changes (the first-order path before and after higher-order gradients)
that a busy machine disturbs far less than wall time does.

    PYTHONPATH=<checkout> python benchmarks/step_cpu_time.py gan gpt

Prints "<family> <median ms>" per family (median of 60 steps, 15 for gpt, after 3 warm-up).
"""
import sys, time, statistics
import tinygrad_pt as tg
print(tg.__file__, file=sys.stderr)  # which checkout was measured
tg.set_num_threads(1)
from tinygrad_pt.bench.steps import build_recipe, cycling
for name in sys.argv[1:]:
    r = build_recipe(name, "cpu"); step = cycling(r.step_on, [r.draw_batch() for _ in range(4)])
    for _ in range(3): step()
    ts = []
    for _ in range(15 if name == "gpt" else 60):
        t0 = time.thread_time(); step(); ts.append(time.thread_time() - t0)
    print(name, f"{statistics.median(ts)*1e3:.3f}")
