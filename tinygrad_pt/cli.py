"""The `tinygrad-pt` command.

    tinygrad-pt demo                                   a small digits MLP, end to end (a minute)
    tinygrad-pt train gpt                              train a model family (runs/gpt by default)
    tinygrad-pt train vae --steps 2000 --set lr=1e-3   override the step count and the config
    tinygrad-pt train vae --steps 4000 --until 2000    stop on the way (exactly resumable)
    tinygrad-pt train vae --resume                     continue runs/vae to its 4000 steps
    tinygrad-pt sample --from runs/gpt --n 4           generate from a trained run
    tinygrad-pt probe --from runs/simclr               linear probe / fine-tune a contrastive run
    tinygrad-pt transfer --from runs/supervised        label-set, domain-shift, augmentation matrix
    tinygrad-pt bench all --compare torch              time ops and training steps (vs PyTorch)
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sys
import warnings

from .errors import TrainingDiverged, UserError

PROG = "tinygrad-pt"
MAX_SAMPLES = 10_000


# ----------------------------------------------------------------------------------------------------
# demo

def _check_seed(seed) -> None:
    if seed is not None and seed < 0:
        raise UserError(f"--seed {seed}: expected an integer >= 0")


def _demo(args) -> int:
    from .train.digits_mlp import train_digits_mlp

    if args.steps < 1:
        raise UserError(f"--steps {args.steps}: expected a positive number of steps")
    _check_seed(args.seed)

    result = train_digits_mlp(steps=args.steps, device=args.device, seed=args.seed)
    print(f"digits MLP: {result['steps']} steps in {result['seconds']:.1f} s "
          f"({result['examples_per_s']:,.0f} examples/s), final train loss "
          f"{result['train_loss']:.4f}, test accuracy {100 * result['test_accuracy']:.1f}% "
          f"on 359 held-out real digits")
    return 0


# ----------------------------------------------------------------------------------------------------
# train

def _parse_value(key: str, text: str, default):
    """`text` as the type of the config's default for `key` (JSON for lists and None)."""
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, str):
            return text
        if isinstance(default, (list, tuple)):
            value = json.loads(text)
            if not isinstance(value, list):
                raise ValueError("expected a JSON list such as [0.9,0.95]")
            return type(default)(value)
        try:  # default None (or another type): a JSON value, else the plain string
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    except (ValueError, json.JSONDecodeError) as e:
        raise UserError(f"--set {key}={text}: cannot read it as a {type(default).__name__} like "
                        f"the default {default!r} ({e})") from None


def parse_overrides(pairs, defaults: dict) -> dict:
    """["lr=1e-3", "hidden=256"] -> {"lr": 0.001, "hidden": 256}, typed like `defaults`."""
    out = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set expects key=value, got {pair!r}")
        if key not in defaults:
            raise UserError(f"--set {key}: unknown config key; this recipe's keys are "
                            f"{', '.join(sorted(defaults))}")
        out[key] = _parse_value(key, text, defaults[key])
    return out


def _check_counts(args) -> None:
    """The step options, checked before anything is loaded (in the option's own name)."""
    for option, value, least in (("--steps", args.steps, 1), ("--until", args.until, 1),
                                 ("--eval-every", args.eval_every, 0),
                                 ("--checkpoint-every", args.checkpoint_every, 0)):
        if value is not None and value < least:
            expected = "a positive number of steps" if least else "0 (only at the end) or more"
            raise UserError(f"{option} {value}: expected {expected}")


def _check_until(until, total: int) -> None:
    if until is not None and until > total:
        raise UserError(f"--until {until}: past the run's total of {total} steps (--steps); "
                        "--until stops a run on the way")


def _train(args) -> int:
    from .train.checkpoint import CHECKPOINT_NAME, check_sizes, checkpoint_info
    from .train.loop import resume_checkpoint, train
    from .train.recipes import get_recipe
    from .train.rundir import run_lock

    _check_counts(args)
    _check_seed(args.seed)
    try:
        cls = get_recipe(args.name)
    except ImportError as e:
        raise UserError(f"the {args.name!r} recipe cannot be loaded: {e}") from e
    out_dir = args.out or os.path.join("runs", args.name)
    ckpt = os.path.join(out_dir, CHECKPOINT_NAME)
    overrides = parse_overrides(args.set, cls.defaults)
    if args.steps is not None:
        overrides["steps"] = args.steps
    seed = args.seed

    if args.resume:
        resume_checkpoint(out_dir)  # (before the lock, which would create a missing directory)
    else:
        # A fresh run's settings are checked before the directory is touched.
        _check_until(args.until, cls.validate_config(overrides, args.device)["steps"])

    # The lock, then what the directory holds is checked (and read) by its one writer. Under
    # mpiexec (tinygrad_pt/distributed) that writer is rank 0; the other ranks read the same
    # checkpoint to resume, and write nothing.
    from . import distributed
    distributed.init()
    lead = distributed.rank() == 0
    with run_lock(out_dir) if lead else contextlib.nullcontext():
        if args.resume:
            info = checkpoint_info(resume_checkpoint(out_dir))
            if info["recipe"] != args.name:
                raise UserError(f"{ckpt} is a checkpoint of {info['recipe']!r}, not "
                                f"{args.name!r}")
            if seed is not None and seed != info["seed"]:
                raise UserError(f"--seed {seed}: a resumed run keeps the seed it started with "
                                f"({info['seed']}); drop --seed")
            for option, value in (("--steps", args.steps), ("--until", args.until)):
                if value is not None and value < info["step"]:
                    raise UserError(f"{option} {value}: the run in {out_dir} is already at step "
                                    f"{info['step']}; ask for at least {info['step']} steps, or "
                                    "leave it out to continue to the run's own total "
                                    f"({info['config'].get('steps', '?')})")
            config, seed = {**info["config"], **overrides}, info["seed"]
            # A checkpoint's config is held to its tensors before anything is built from it.
            check_sizes(ckpt, cls, cls.validate_config(info["config"], args.device))
            _check_until(args.until, cls.validate_config(config, args.device)["steps"])
        else:
            if os.path.exists(ckpt) and not args.overwrite:
                raise UserError(f"{out_dir} already holds a run ({ckpt}); pass --resume to "
                                "continue it, --overwrite to start over there, or --out DIR for "
                                "a new run")
            config, seed = overrides, (0 if seed is None else seed)

        try:
            recipe = cls(config, device=args.device, seed=seed)
        except UserError:
            raise
        except ValueError as e:  # e.g. a config value a model rejects
            raise UserError(str(e)) from e
        try:
            train(recipe, out_dir, steps=args.until, resume=args.resume,
                  progress=not args.quiet, eval_every=args.eval_every,
                  checkpoint_every=args.checkpoint_every)
        except KeyboardInterrupt as e:
            # The loop saved a checkpoint and said how to resume (unless it was a second
            # signal): the shell's convention, 128 + the signal, 130 for Ctrl-C, 143 for SIGTERM.
            return 128 + int(getattr(e, "signum", signal.SIGINT))
    return 0


# ----------------------------------------------------------------------------------------------------
# sample and probe: both start from a run directory

def _sample(args) -> int:
    from .train.recipes import load_run

    if not os.path.isdir(args.from_dir):
        raise UserError(f"--from {args.from_dir}: no such run directory")
    if args.n < 1:
        raise UserError(f"--n must be positive, got {args.n}")
    if args.n > MAX_SAMPLES:
        raise UserError(f"--n {args.n}: at most {MAX_SAMPLES} samples a call (they go into one "
                        "image grid or text file); run sample again for more")
    recipe, _ = load_run(args.from_dir, args.device)
    try:
        paths = recipe.sample(args.from_dir, n=args.n)
    except NotImplementedError as e:
        raise UserError(str(e)) from e
    for path in paths or []:
        print(path)
    return 0


def _probe(args) -> int:
    if not os.path.isdir(args.from_dir):
        raise UserError(f"--from {args.from_dir}: no such run directory")
    try:
        from .train.probe import run_probe
    except ImportError as e:
        raise UserError(f"the probe is not available: {e}") from e
    run_probe(args.from_dir, device=args.device)  # prints its table, writes DIR/probe.md
    return 0


def _transfer(args) -> int:
    if not os.path.isdir(args.from_dir):
        raise UserError(f"--from {args.from_dir}: no such run directory")
    from .train.transfer_matrix import run_transfer

    run_transfer(args.from_dir, tasks=tuple(args.task), device=args.device, seeds=args.seeds,
                 seed=args.seed, labels_per_class=tuple(args.labels),
                 target_classes=args.target_classes, domains=tuple(args.domains),
                 steps=args.steps, gpt_labels=tuple(args.gpt_labels),
                 snippet_bytes=args.snippet_bytes,
                 mnist_idx=args.mnist, out_dir=args.out)  # prints the tables, writes DIR/transfer.md, .json, .png
    return 0


# ----------------------------------------------------------------------------------------------------
# bench

def _bench(args) -> int:
    from .bench import BenchError, run_bench

    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be positive, got {args.threads}")
    if args.repeat < 3:
        raise UserError(f"--repeat must be at least 3 (a median needs runs), got {args.repeat}")
    try:
        paths = run_bench(args.suite, device=args.device, compare=tuple(args.compare),
                          out=args.out, threads=args.threads, repeat=args.repeat,
                          ops=args.ops, steps=args.models,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (BenchError, ValueError) as e:
        raise UserError(str(e)) from e
    print(f"wrote {paths['markdown']}, {paths['csv']}, {paths['png']}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------------------
# The parser

def build_parser() -> argparse.ArgumentParser:
    from .train.recipes import RECIPES

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train a small MLP on the real 8x8 digits (a minute on CPU)")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    tr = sub.add_parser("train", help="train a model family; writes metrics, a checkpoint, plots",
                        description="Train one model family with the shared loop. The run "
                        "directory gets metrics.jsonl, checkpoint.safetensors, config.json and "
                        "PNG plots.")
    tr.add_argument("name", choices=list(RECIPES), help="the model family")
    tr.add_argument("--steps", type=int, default=None,
                    help="total optimisation steps, which learning-rate schedules span "
                    "(default: the recipe's)")
    tr.add_argument("--until", type=int, default=None, metavar="STEP",
                    help="stop at this step of the --steps run (checkpoint saved); a later "
                    "--resume continues it exactly as if it had not stopped")
    tr.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    tr.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/NAME)")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in DIR from its checkpoint up to --steps in total")
    tr.add_argument("--overwrite", action="store_true",
                    help="start a new run in a DIR that already holds one")
    tr.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    tr.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="override a config value of the recipe, e.g. --set lr=1e-3 n_layer=2")
    tr.add_argument("--eval-every", type=int, default=None, metavar="N",
                    help="evaluate every N steps (default: the recipe's eval_every)")
    tr.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                    help="save a checkpoint every N steps (default: at each evaluation)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    tr.set_defaults(run=_train)

    sa = sub.add_parser("sample", help="generate images or text from a trained run")
    sa.add_argument("--from", dest="from_dir", required=True, metavar="DIR")
    sa.add_argument("--n", type=int, default=16, help="how many samples (default 16)")
    sa.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sa.set_defaults(run=_sample)

    pr = sub.add_parser("probe", help="linear probe and fine-tuning from a pre-trained run")
    pr.add_argument("--from", dest="from_dir", required=True, metavar="DIR")
    pr.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    pr.set_defaults(run=_probe)

    from .data.shift import DOMAINS
    from .train.transfer_matrix import TASKS  # (numpy only at import: --help stays fast)

    tf = sub.add_parser("transfer", help="does pre-training pay downstream? a table and a plot",
                        description="Carry a run's encoder to new labels (digits 5-9 with few "
                        "labels), to shifted domains (with DANN and CORAL on unlabelled target "
                        "images) and, for VAE/GAN runs, use its samples as augmentation; a GPT "
                        "run is fine-tuned to tell which stdlib package a snippet is from; over "
                        "several seeds, against training from scratch. Writes transfer.md, "
                        ".json and .png into the run directory (or --out).")
    tf.add_argument("--from", dest="from_dir", required=True, metavar="DIR")
    tf.add_argument("--task", nargs="+", default=list(TASKS), choices=list(TASKS))
    tf.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    tf.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    tf.add_argument("--steps", type=int, default=300,
                    help="AdamW steps of every fine-tuning / adaptation (default 300)")
    tf.add_argument("--labels", type=int, nargs="+", default=[1, 5, 10], metavar="K",
                    help="labels per class of the label-set task (default 1 5 10)")
    tf.add_argument("--gpt-labels", type=int, nargs="+", default=[4, 16, 64], metavar="K",
                    help="labelled snippets per class of a GPT run's task (default 4 16 64)")
    tf.add_argument("--snippet-bytes", type=int, default=None, metavar="N",
                    help="bytes per snippet of a GPT run's task, 1 to the run's block_size "
                    "(default: its block_size)")
    tf.add_argument("--target-classes", default="5-9",
                    help="the label-set task's classes (default 5-9)")
    tf.add_argument("--domains", nargs="+", default=["faded", "thick", "inverted"],
                    choices=list(DOMAINS), help="the shift task's target domains")
    tf.add_argument("--mnist", nargs=2, default=None, metavar=("IMAGES", "LABELS"),
                    help="MNIST-layout IDX files: downsampled to 8x8, a further target domain "
                    "of the shift task")
    tf.add_argument("--out", default=None, metavar="DIR", help="where the report goes "
                    "(default: the run directory)")
    tf.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    tf.set_defaults(run=_transfer)

    be = sub.add_parser("bench", help="time ops and training steps; tables, CSV and a plot",
                        description="Time per-op forward+backward and whole training steps "
                        "(median and quartiles after warm-up), optionally against PyTorch run "
                        "in its own process with the same threads; print the tables and write "
                        "bench_<device>.md, .csv and .png into --out.")
    be.add_argument("suite", nargs="?", default="all", choices=["ops", "steps", "all"])
    be.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    be.add_argument("--compare", nargs="*", default=[], choices=["torch"],
                    help="also time the same ops/steps in these frameworks (if installed)")
    be.add_argument("--out", default="bench_results", metavar="DIR",
                    help="where the report goes (default bench_results)")
    be.add_argument("--threads", type=int, default=None,
                    help="threads for both frameworks (default: all cores)")
    be.add_argument("--repeat", type=int, default=10, help="timed runs per row (default 10)")
    be.add_argument("--ops", nargs="+", default=None, metavar="OP",
                    help="only these ops (copy matmul softmax cross_entropy layer_norm "
                         "gpt_layer_norm gpt_gelu_tanh gelu attention adamw)")
    be.add_argument("--models", nargs="+", default=None, metavar="NAME",
                    help="only these model families' steps")
    be.set_defaults(run=_bench)
    return parser


def _check_device(device: str) -> None:
    """device="cuda" without CuPy or a GPU: one clear line, before any data is loaded."""
    if device == "cuda":
        from .backend import cupy_module
        try:
            cupy_module()
        except RuntimeError as e:
            raise UserError(str(e)) from None


# Errors of the machine, not of the program: a full disk, a quota, a read-only or vanished
# directory, a name too long for the file system. One line each, never a traceback.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                       errno.ENAMETOOLONG, errno.EFBIG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}

# Exit statuses: 0 done; 2 a usage error (the message says what to change); 3 a run that
# diverged (NaN/Inf; its last good checkpoint kept); 128 + signal for a run stopped by a signal
# (130 SIGINT, 143 SIGTERM), its checkpoint saved; 1 (a traceback) only for a bug.
EXIT_USAGE, EXIT_DIVERGED = 2, 3


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"{PROG}: warning: {message}\n"


def main(argv=None) -> int:
    """The command; under mpiexec a rank that fails (an error, a signal's exit status) ends the
    whole job with its status (MPI_Abort), so that no other rank waits for it for ever."""
    try:
        code = _main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        _abort_job_if_failed(code, cause=e)
        raise
    except BaseException:
        _abort_job_if_failed(1, traceback_first=True)
        raise
    _abort_job_if_failed(code)
    return code


def _abort_job_if_failed(code: int, traceback_first: bool = False, cause=None) -> None:
    from . import distributed
    if not code or not distributed.is_initialized() or distributed.world_size() == 1:
        return
    if distributed.raised_everywhere(cause):  # every rank stops with it: nothing to end
        return
    if traceback_first:  # a bug: its traceback first, as without mpiexec
        import traceback
        traceback.print_exc()
    print(f"{PROG}: rank {distributed.rank()} of {distributed.world_size()} exited with status "
          f"{code}: ending the job (MPI_Abort)", file=sys.stderr)
    distributed.abort(code)


def _main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # a warning of the command is one line too
    try:
        if args.command not in ("demo",):
            _check_device(args.device)
        return args.run(args)
    except TrainingDiverged as e:
        parser.exit(EXIT_DIVERGED, f"{PROG} {args.command}: error: {e}\n")
    except (UserError, FileNotFoundError) as e:
        # A user error (a checkpoint that does not fit is one too: CheckpointError) or a
        # missing file: the message says what and where. Other exceptions keep their
        # traceback: they are bugs, not usage errors.
        parser.exit(EXIT_USAGE, f"{PROG} {args.command}: error: {e}\n")
    except OSError as e:
        if e.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f": {e.filename}" if e.filename else ""
        parser.exit(EXIT_USAGE, f"{PROG} {args.command}: error: {e.strerror or e}{where}\n")
    except KeyboardInterrupt:  # Ctrl-C before training began (loading data, building)
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        warnings.formatwarning = previous_format


if __name__ == "__main__":
    sys.exit(main())
