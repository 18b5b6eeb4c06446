"""Check every GPU kernel against the reference, and time the CUDA C kernels, on one GPU.

    python benchmarks/gpu_kernels_check.py [--out DIR] [--rows 8192 --cols 4096] [--repeat 20]
    python benchmarks/gpu_kernels_check.py --dry-run     # on a machine without a GPU

Writes DIR/cuda_kernels.md (DIR: $OUT, else benchmarks/results) with the device named:
1. Correctness: each function of the CUDA C kernels (kernels/cuda/cuda_c) and of the Numba-CUDA
   study kernels (kernels/cuda) on CuPy arrays, against the reference (kernels/reference.py) run
   in float64 with NumPy on the same inputs, over shapes that take the 16-byte path and the
   scalar one (odd row lengths, an unaligned view, a tail of n % 4), float32 and float64,
   -inf entries and an all -inf row, ignore_index, label smoothing, class weights, both GELUs.
   Tolerances scale with the dtype's epsilon, the row length and the magnitude of the terms
   summed (llm.c's habit); NaN must sit where the reference has NaN.
2. Timing at ROWS x COLS float32: each CUDA C function against the same reference function on
   CuPy arrays (CUDA events, median of --repeat after warm-up), the bytes each must move, the
   bandwidth reached, and a device-to-device copy of the same array as the ceiling.

Exit status 1 when a correctness check fails (the timings are written either way).

--dry-run (no GPU, no CuPy): the CUDA C sources are compiled with NVRTC for sm_90 instead of
launched, the correctness harness runs the float32 reference against the float64 one on NumPy
(so the cases, the tolerances and the report are exercised), and the timing table times the
NumPy reference at a small size, labelled as such. Nothing in a dry run measures a GPU.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from tinygrad_pt.bench.machine import machine_info
from tinygrad_pt.bench.report import markdown_table
from tinygrad_pt.bench.timing import time_calls, wall_clock
from tinygrad_pt.kernels import reference as R

FAMILIES = ("softmax", "cross_entropy", "layer_norm", "gelu", "adamw")
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------
# Correctness: cases per family. Each case yields (label, got, want, tol): got from the
# implementation under test (host NumPy array), want from the reference in float64, tol an
# elementwise tolerance.


def _k(dtype, c):
    """eps * a growth factor for sums over c terms (tree and sequential parts of a reduction)."""
    return 32.0 * np.finfo(dtype).eps * (1.0 + math.log2(max(c, 2)))


def _inputs(rng, shape, dtype, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _rows_shapes(quick):
    # (rows, cols): 4096 and 1000 take the 16-byte path (float4; 1000 is even, so double2 too),
    # 1001 and 33 the scalar one; 50257 is GPT-2's vocabulary.
    shapes = [(7, 4096), (5, 1000), (4, 1001), (9, 33), (3, 8)]
    return shapes if quick else shapes + [(2, 50257), (64, 768)]


def softmax_cases(impl, xp, dtype, rng, quick):
    for n, c in _rows_shapes(quick):
        x = _inputs(rng, (n, c), dtype)
        if c >= 8:
            x[0, : c // 2] = -np.inf  # masked entries
            x[1, :] = -np.inf  # no distribution: NaN in the reference and the kernel
        dy = _inputs(rng, (n, c), dtype, 1.0)
        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        k = _k(dtype, c)
        y = R.softmax_fwd(x64)
        yield f"softmax_fwd {n}x{c}", impl.softmax_fwd(xp.asarray(x)), y, k * np.abs(y)
        ly = R.log_softmax_fwd(x64)
        yield (f"log_softmax_fwd {n}x{c}", impl.log_softmax_fwd(xp.asarray(x)), ly,
               k * (np.abs(np.where(np.isfinite(x64), x64, 0)).max() + np.abs(ly) + math.log(c)))
        yk = np.nan_to_num(y.astype(dtype))  # the backward reads the rounded forward, as in use
        y64 = yk.astype(np.float64)
        dx = R.softmax_bwd(dy64, y64)
        mag = y64 * (np.abs(dy64) + (np.abs(dy64) * y64).sum(-1, keepdims=True))
        yield (f"softmax_bwd {n}x{c}", impl.softmax_bwd(xp.asarray(dy), xp.asarray(yk)), dx,
               k * (np.abs(dx) + mag) + np.finfo(dtype).tiny)
        lyk = np.where(np.isnan(ly), -np.inf, ly).astype(dtype)
        ly64 = lyk.astype(np.float64)
        ldx = R.log_softmax_bwd(dy64, ly64)
        mag = np.abs(dy64) + np.exp(ly64) * np.abs(dy64).sum(-1, keepdims=True)
        yield (f"log_softmax_bwd {n}x{c}", impl.log_softmax_bwd(xp.asarray(dy), xp.asarray(lyk)),
               ldx, k * (np.abs(ldx) + mag))
    x = _inputs(rng, (3, 40, 5), dtype)  # a middle axis: moved last and back
    yield ("softmax_fwd axis=1 3x40x5", impl.softmax_fwd(xp.asarray(x), axis=1),
           R.softmax_fwd(x.astype(np.float64), axis=1), _k(dtype, 40) * 1.0)


def cross_entropy_cases(impl, xp, dtype, rng, quick):
    for n, c in _rows_shapes(quick):
        for smoothing, weighted in ((0.0, False), (0.1, False), (0.1, True)):
            x = _inputs(rng, (n, c), dtype)
            t = rng.integers(0, c, n)
            t[0] = -100  # ignored
            w = rng.uniform(0.5, 2.0, c).astype(dtype) if weighted else None
            x64, w64 = x.astype(np.float64), None if w is None else w.astype(np.float64)
            losses, probs = R.cross_entropy_fwd(x64, t, -100, smoothing, w64)
            got_l, got_p = impl.cross_entropy_fwd(xp.asarray(x), xp.asarray(t), -100, smoothing,
                                                  None if w is None else xp.asarray(w))
            k = _k(dtype, c)
            wmax = 1.0 if w is None else 2.0
            tag = f"{n}x{c} eps={smoothing}{' weighted' if weighted else ''}"
            mag_l = wmax * (np.abs(x64).max(-1) + math.log(c) + np.abs(losses))
            yield f"cross_entropy_fwd losses {tag}", got_l, losses, k * mag_l
            yield (f"cross_entropy_fwd probs {tag}", got_p, probs,
                   k * (np.abs(probs) * (1 + np.abs(x64))))
            dl = _inputs(rng, (n,), dtype, 1.0)
            pk = probs.astype(dtype)
            d = R.cross_entropy_bwd(dl.astype(np.float64), pk.astype(np.float64), t, -100,
                                    smoothing, w64)
            got_d = impl.cross_entropy_bwd(xp.asarray(dl), xp.asarray(pk), xp.asarray(t), -100,
                                           smoothing, None if w is None else xp.asarray(w))
            mag = np.abs(dl)[:, None] * wmax * (pk.astype(np.float64) * (1 + c * smoothing) + 1)
            yield f"cross_entropy_bwd {tag}", got_d, d, k * mag


def layer_norm_cases(impl, xp, dtype, rng, quick):
    for n, c in _rows_shapes(quick):
        for affine in (True, False):
            x = _inputs(rng, (n, c), dtype) + dtype(3.0)  # an offset: the mean matters
            w = _inputs(rng, (c,), dtype, 1.0) if affine else None
            b = _inputs(rng, (c,), dtype, 1.0) if affine else None
            x64 = x.astype(np.float64)
            w64 = None if w is None else w.astype(np.float64)
            b64 = None if b is None else b.astype(np.float64)
            y, mean, rstd = R.layer_norm_fwd(x64, w64, b64, 1e-5)
            gy, gmean, grstd = impl.layer_norm_fwd(
                xp.asarray(x), None if w is None else xp.asarray(w),
                None if b is None else xp.asarray(b), 1e-5)
            k = _k(dtype, c) * 4.0
            aw = 1.0 if w is None else np.abs(w64)
            xhat = (x64 - mean[:, None]) * rstd[:, None]
            tag = f"{n}x{c}{' affine' if affine else ''}"
            yield f"layer_norm_fwd y {tag}", gy, y, k * ((1 + np.abs(xhat)) * aw + np.abs(y))
            yield f"layer_norm_fwd mean {tag}", gmean, mean, k * np.abs(x64).max(-1)
            yield f"layer_norm_fwd rstd {tag}", grstd, rstd, k * np.abs(rstd) * 4
            dy = _inputs(rng, (n, c), dtype, 1.0)
            mk, rk = mean.astype(dtype), rstd.astype(dtype)
            dy64 = dy.astype(np.float64)
            dx, dw, db = R.layer_norm_bwd(dy64, x64, w64, mk.astype(np.float64),
                                          rk.astype(np.float64))
            gdx, gdw, gdb = impl.layer_norm_bwd(xp.asarray(dy), xp.asarray(x),
                                                None if w is None else xp.asarray(w),
                                                xp.asarray(mk), xp.asarray(rk))
            g_abs = np.abs(dy64) * aw
            mag = rstd[:, None] * (g_abs + g_abs.mean(-1, keepdims=True)
                                   + np.abs(xhat) * (g_abs * np.abs(xhat)).mean(-1, keepdims=True))
            yield f"layer_norm_bwd dx {tag}", gdx, dx, k * (mag + np.abs(dx))
            kn = _k(dtype, n) * 4.0
            yield f"layer_norm_bwd dbias {tag}", gdb, db, kn * np.abs(dy64).sum(0)
            if w is not None:
                yield (f"layer_norm_bwd dweight {tag}", gdw, dw,
                       kn * (np.abs(dy64) * (1 + np.abs(xhat))).sum(0))


def gelu_cases(impl, xp, dtype, rng, quick):
    for n in (4096 * 7 + 3, 1, 1000):
        x = _inputs(rng, (n,), dtype, 3.0)
        dy = _inputs(rng, (n,), dtype, 1.0)
        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        k = _k(dtype, 1) * 4.0
        for approximate in ("none", "tanh"):
            y = R.gelu_fwd(x64, approximate)
            yield (f"gelu_fwd {approximate} n={n}", impl.gelu_fwd(xp.asarray(x), approximate), y,
                   k * (np.abs(x64) + np.abs(y)))
            dx = R.gelu_bwd(dy64, x64, approximate)
            yield (f"gelu_bwd {approximate} n={n}",
                   impl.gelu_bwd(xp.asarray(dy), xp.asarray(x), approximate), dx,
                   k * np.abs(dy64) * (2 + np.abs(x64) ** 2))
    # views 4 bytes into their buffers: contiguous but not 16-byte aligned, the scalar path
    x, dy = _inputs(rng, (1001,), dtype), _inputs(rng, (1001,), dtype, 1.0)
    x64, dy64 = x[1:].astype(np.float64), dy[1:].astype(np.float64)
    xd, dyd = xp.asarray(x)[1:], xp.asarray(dy)[1:]
    k = _k(dtype, 1) * 4.0
    yield ("gelu_fwd none unaligned n=1000", impl.gelu_fwd(xd, "none"),
           R.gelu_fwd(x64, "none"), k * (np.abs(x64) + 1))
    yield ("gelu_bwd tanh unaligned n=1000", impl.gelu_bwd(dyd, xd, "tanh"),
           R.gelu_bwd(dy64, x64, "tanh"), k * np.abs(dy64) * (2 + x64 ** 2))


def adamw_cases(impl, xp, dtype, rng, quick):
    # the last: views one element into their buffers (not 16-byte aligned: the scalar path)
    for n, offset in ((4096 * 5 + 3, 0), (1, 0), (777, 0), (777, 1)):
        p, g = _inputs(rng, (n,), dtype, 1.0), _inputs(rng, (n,), dtype, 1.0)
        m, v = _inputs(rng, (n,), dtype, 0.1), np.abs(_inputs(rng, (n,), dtype, 0.1))
        args = (7, 1e-3, 0.9, 0.999, 1e-8, 0.01)
        p64, m64, v64 = (a[offset:].astype(np.float64) for a in (p, m, v))
        g = g[offset:]
        R.adamw_update(p64, g.astype(np.float64), m64, v64, *args)
        pd, gd, md, vd = (xp.asarray(a)[offset:] for a in (p, _pad(g, offset), m, v))
        impl.adamw_update(pd, gd, md, vd, *args)
        k = _k(dtype, 1) * 8.0
        tag = f"n={n - offset}{' unaligned' if offset else ''}"
        yield f"adamw p {tag}", pd, p64, k * (np.abs(p64) + 1e-3 * 20)
        yield f"adamw m {tag}", md, m64, k * (np.abs(m64) + np.abs(g))
        yield f"adamw v {tag}", vd, v64, k * (np.abs(v64) + g.astype(np.float64) ** 2)


def _pad(a, offset):
    """a with `offset` leading zeros, so that [offset:] of it is a view that starts unaligned."""
    return np.concatenate([np.zeros(offset, a.dtype), a])


CASES = {"softmax": softmax_cases, "cross_entropy": cross_entropy_cases,
         "layer_norm": layer_norm_cases, "gelu": gelu_cases, "adamw": adamw_cases}


def to_host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def compare(got, want, tol, dtype):
    """(ok, worst |error| / tol, first bad index or '') with NaN required where want is NaN."""
    got = to_host(got)
    if got.dtype != dtype:
        return False, math.inf, f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    if got.shape != want.shape:
        return False, math.inf, f"shape {got.shape}, expected {want.shape}"
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), want.shape)
    tol = np.where(np.isnan(tol), 0.0, tol)  # a NaN reference row: only NaN matches it
    g64 = got.astype(np.float64)
    both_nan = np.isnan(g64) & np.isnan(want)
    same_inf = np.isinf(want) & (g64 == want)
    with np.errstate(invalid="ignore"):  # inf - inf where the signs differ: a mismatch below
        err = np.where(both_nan | same_inf, 0.0, np.abs(g64 - want))
    err = np.where(np.isnan(err), np.inf, err)
    ratio = err / np.maximum(tol, np.finfo(np.float64).tiny)
    bad = ~(err <= tol)
    worst = float(ratio.max()) if ratio.size else 0.0
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return False, worst, f"at {idx}: got {g64[idx]!r}, want {want[idx]!r}, tol {tol[idx]:.3g}"
    return True, worst, ""


def check(impl_name, impl, xp, dtypes, quick) -> list:
    """Rows (implementation, family, case, dtype, ok, worst err/tol, note) for every case."""
    rows = []
    for family in FAMILIES:
        module = impl(family) if callable(impl) else impl
        for dtype in dtypes:
            rng = np.random.default_rng(0)
            try:
                # the cases hold -inf rows on purpose: NumPy's warnings about them are noise
                with np.errstate(all="ignore"):
                    cases = list(CASES[family](module, xp, dtype, rng, quick))
                for label, got, want, tol in cases:
                    ok, worst, note = compare(got, want, tol, dtype)
                    rows.append([impl_name, family, label, np.dtype(dtype).name,
                                 "ok" if ok else "FAIL", f"{worst:.3g}", note])
            except Exception as e:  # one family's crash must not hide the others' results
                rows.append([impl_name, family, "(raised)", np.dtype(dtype).name, "FAIL", "-",
                             f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"])
                traceback.print_exc()
    return rows


def per_family(rows) -> list:
    """One row per (implementation, family, dtype): cases, passed, worst err/tol."""
    groups = {}
    for impl, family, _case, dtype, result, worst, _note in rows:
        g = groups.setdefault((impl, family, dtype), [0, 0, 0.0])
        g[0] += 1
        g[1] += result == "ok"
        g[2] = max(g[2], math.inf if worst == "-" else float(worst))
    return [[*key, n, ok, f"{worst:.3g}"] for key, (n, ok, worst) in groups.items()]


# --------------------------------------------------------------------------------------------------
# Timing


def bytes_moved(name, n, c, itemsize) -> int:
    """The DRAM bytes a function must move at least (each input read once, each output written
    once), for (n, c) rows; AdamW and GELU on n * c elements."""
    per = n * c * itemsize
    return {"softmax_fwd": 2, "softmax_bwd": 3, "log_softmax_fwd": 2, "log_softmax_bwd": 3,
            "cross_entropy_fwd": 2, "cross_entropy_bwd": 2, "layer_norm_fwd": 2,
            "layer_norm_bwd": 3, "gelu_fwd": 2, "gelu_bwd": 3, "adamw_update": 7}[name] * per


def timing_calls(impl, xp, n, c, dtype):
    """{function name: zero-argument call} for one implementation (a module per family)."""
    rng = np.random.default_rng(1)
    x = xp.asarray(_inputs(rng, (n, c), dtype))
    dy = xp.asarray(_inputs(rng, (n, c), dtype, 1.0))
    y = xp.asarray(R.softmax_fwd(to_host(x)))
    t = xp.asarray(rng.integers(0, c, n))
    dl = xp.asarray(_inputs(rng, (n,), dtype, 1.0))
    w, b = xp.asarray(_inputs(rng, (c,), dtype, 1.0)), xp.asarray(_inputs(rng, (c,), dtype, 1.0))
    mean, rstd = xp.asarray(np.zeros(n, dtype)), xp.asarray(np.ones(n, dtype))
    p, g, m, v = (xp.asarray(np.abs(_inputs(rng, (n, c), dtype, 0.1))) for _ in range(4))
    sm, ce, ln, ge, ad = (impl(f) for f in FAMILIES)
    return {
        "softmax_fwd": lambda: sm.softmax_fwd(x),
        "softmax_bwd": lambda: sm.softmax_bwd(dy, y),
        "log_softmax_fwd": lambda: sm.log_softmax_fwd(x),
        "log_softmax_bwd": lambda: sm.log_softmax_bwd(dy, y),
        "cross_entropy_fwd": lambda: ce.cross_entropy_fwd(x, t),
        "cross_entropy_bwd": lambda: ce.cross_entropy_bwd(dl, y, t),
        "layer_norm_fwd": lambda: ln.layer_norm_fwd(x, w, b, 1e-5),
        "layer_norm_bwd": lambda: ln.layer_norm_bwd(dy, x, w, mean, rstd),
        "gelu_fwd": lambda: ge.gelu_fwd(x, "tanh"),
        "gelu_bwd": lambda: ge.gelu_bwd(dy, x, "tanh"),
        "adamw_update": lambda: ad.adamw_update(p, g, m, v, 3, 1e-3, 0.9, 0.999, 1e-8, 0.01),
    }


def time_all(fast, xp, n, c, repeat, clock, copy) -> tuple:
    """(rows of the timing table, copy bandwidth in bytes/s)."""
    dtype = np.float32
    ref_calls = timing_calls(lambda f: R, xp, n, c, dtype)
    fast_calls = timing_calls(fast, xp, n, c, dtype)
    src = xp.asarray(_inputs(np.random.default_rng(2), (n, c), dtype))
    dst = xp.empty_like(src)
    copy_t = time_calls({"copy": lambda: copy(dst, src)}, warmup=3, repeat=repeat,
                        clock=clock)["copy"]["median"]
    copy_bw = 2 * src.nbytes / copy_t
    rows = []
    for name in ref_calls:
        try:
            times = time_calls({"reference": ref_calls[name], "fast": fast_calls[name]},
                               warmup=3, repeat=repeat, clock=clock)
        except Exception as e:  # one function's failure leaves the others' rows
            rows.append([name, "-", "-", "-", "-", f"failed: {type(e).__name__}: {e}"[:120]])
            continue
        t_ref, t_fast = times["reference"]["median"], times["fast"]["median"]
        moved = bytes_moved(name, n, c, np.dtype(dtype).itemsize)
        rows.append([name, f"{t_ref * 1e3:.3f}", f"{t_fast * 1e3:.3f}", f"{t_ref / t_fast:.2f}x",
                     f"{moved / t_fast / 1e9:.0f}", f"{moved / t_fast / copy_bw:.0%}"])
    return rows, copy_bw


# --------------------------------------------------------------------------------------------------
# The dry run's compile step


def compile_all() -> tuple:
    """Rows (module, kernels, cubin bytes, status) of an NVRTC sm_90 compile of every CUDA C
    source, and the number of kernels compiled."""
    from tinygrad_pt.kernels.cuda import cuda_c  # noqa: PLC0415
    from tinygrad_pt.kernels.cuda.cuda_c import _common, nvrtc  # noqa: PLC0415
    if nvrtc.find_nvrtc() is None:
        return [["(all)", "-", "-", f"skipped: {nvrtc.why_missing()}"]], 0
    rows, count = [], 0
    for name in cuda_c.MODULES:
        module = importlib.import_module(name)
        r = nvrtc.compile_source(module.SOURCE, module.NAME_EXPRESSIONS, options=_common.OPTIONS)
        status = "ok" if r.ok else "FAIL: " + " ".join(r.log.split())[:300]
        rows.append([name.rsplit(".", 1)[1], len(r.lowered), r.binary_bytes, status])
        count += len(r.lowered)
    return rows, count


# --------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="no GPU: compile with NVRTC, check the reference against itself")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "benchmarks/results"))
    ap.add_argument("--rows", type=int, default=None, help="timing rows (8192; dry run 256)")
    ap.add_argument("--cols", type=int, default=None, help="timing columns (4096; dry run 512)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs (20; dry run 3)")
    ap.add_argument("--quick", action="store_true", help="fewer correctness shapes")
    args = ap.parse_args(argv)
    dry = args.dry_run
    n = args.rows or (256 if dry else 8192)
    c = args.cols or (512 if dry else 4096)
    repeat = args.repeat or (3 if dry else 20)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sections = []

    if dry:
        xp, clock = np, wall_clock
        device = "none: DRY RUN on the CPU (no GPU was used; nothing here measures a GPU)"
        compile_rows, compiled = compile_all()
        sections.append(("NVRTC compile (sm_90) instead of launching",
                         f"{compiled} kernels compiled.\n\n"
                         + markdown_table(["module", "kernels", "cubin bytes", "status"],
                                          compile_rows)))
        impls = [("reference (dry-run stand-in for cuda_c)", lambda f: R, args.quick)]

        def copy(dst, src):
            np.copyto(dst, src)
    else:
        import cupy  # noqa: PLC0415 (GPU only)
        from tinygrad_pt.bench.timing import cupy_clock  # noqa: PLC0415
        xp, clock = cupy, cupy_clock()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        device = (f"{name} (compute capability {props['major']}.{props['minor']}, "
                  f"{props['multiProcessorCount']} SMs, {props['totalGlobalMem'] / 2**30:.0f} GiB)")
        impls = [("cuda_c", lambda f: importlib.import_module(
            f"tinygrad_pt.kernels.cuda.cuda_c.{f}"), args.quick)]
        try:
            importlib.import_module("tinygrad_pt.kernels.cuda._common")  # numba-cuda present?
            # the quick shapes: Numba compiles each kernel per signature, which costs seconds
            impls.append(("numba-cuda", lambda f: importlib.import_module(
                f"tinygrad_pt.kernels.cuda.{f}"), True))
        except Exception as e:
            sections.append(("Numba-CUDA kernels not checked",
                             f"importing them failed: {type(e).__name__}: {e}"))

        def copy(dst, src):
            cupy.copyto(dst, src)

    info = machine_info()

    def write(note=""):
        """The report as it stands: written after each phase, so that a run stopped by its time
        limit still leaves what it measured."""
        lines = ["# GPU kernels: correctness and timing\n", f"- device: {device}"]
        lines += [f"- {k}: {v}" for k, v in info.items()]
        lines.append(f"- this report took {time.perf_counter() - started:.0f} s "
                     f"(benchmarks/gpu_kernels_check.py{' --dry-run' if dry else ''}){note}\n")
        for heading, text in sections:
            lines += [f"## {heading}\n", text, ""]
        report = "\n".join(lines)
        (out / "cuda_kernels.md").write_text(report)
        return report

    # Phases, the CUDA C kernels first (correctness, then timing), then the Numba-CUDA ones.
    rows = []
    correctness = ["Correctness against the float64 reference", ""]
    sections.insert(0, correctness)
    for i, (impl_name, impl, quick) in enumerate(impls):
        t0 = time.perf_counter()
        rows += check(impl_name, impl, xp, (np.float32, np.float64), quick)
        print(f"checked {impl_name} in {time.perf_counter() - t0:.1f} s", flush=True)
        correctness[1] = correctness_text(rows)
        write("; still running: " + ", ".join(name for name, _, _ in impls[i + 1:])
              if i + 1 < len(impls) else "")
        if i == 0:
            sections.append(timing_section(impl, xp, n, c, repeat, clock, copy, dry))
            write("; still running: the remaining checks" if len(impls) > 1 else "")
    report = write()
    print(report)
    return 1 if any(r[4] != "ok" for r in rows) else 0


def correctness_text(rows) -> str:
    failed = [r for r in rows if r[4] != "ok"]
    summary = (f"{len(rows) - len(failed)} of {len(rows)} checks passed"
               + (f"; FAILED: {', '.join(sorted({f'{r[0]} {r[1]}' for r in failed}))}"
                  if failed else "") + ". 'worst err/tol' is the largest error as a share of "
               "its tolerance (below 1 passes).")
    text = summary + "\n\n" + markdown_table(
        ["implementation", "family", "dtype", "cases", "passed", "worst err/tol"],
        per_family(rows))
    if failed:
        text += "\n\nThe failures:\n\n" + markdown_table(
            ["implementation", "family", "case", "dtype", "result", "worst err/tol",
             "first mismatch"], failed)
    return text


def timing_section(fast, xp, n, c, repeat, clock, copy, dry) -> tuple:
    heading = f"Timing at {n} x {c} float32, median of {repeat} (ms)"
    try:
        t_rows, copy_bw = time_all(fast, xp, n, c, repeat, clock, copy)
    except Exception as e:  # the correctness results above stay written
        traceback.print_exc()
        return heading, f"the timing failed: {type(e).__name__}: {e}"
    label = ("the NumPy reference against itself, on the CPU (dry run: not a GPU timing)" if dry
             else "CUDA C (cuda_c) against the CuPy reference (kernels/reference.py on CuPy)")
    return heading, (f"{label}. Copy (device to device) of the same array: "
                     f"{copy_bw / 1e9:.0f} GB/s counting read and write; 'of copy' is each "
                     f"kernel's bandwidth, from the bytes it must move, as a share of that.\n\n"
                     + markdown_table(["function", "reference", "cuda_c", "speed-up", "GB/s",
                                       "of copy"], t_rows))


if __name__ == "__main__":
    sys.exit(main())
