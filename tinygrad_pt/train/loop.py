"""The training loop shared by every model family.

    recipe = make_recipe("vae", {"steps": 2000})
    final = train(recipe, "runs/vae")            # -> {"test_elbo": ..., ...}
    final = train(recipe2, "runs/vae", resume=True)   # continue a stopped run to its total

A recipe (train/recipe.py) says how to take one step and how to evaluate; the loop owns the rest:

  - steps, and a tqdm bar showing the step's metrics and the throughput (steps/s and examples/s);
  - the metrics are read back to the host only every ``log_every`` steps (and before a save):
    that is the loop's one sync with the device (nanoGPT's habit), so on a GPU the steps in
    between queue up freely; a NaN/Inf metric there stops the run (TrainingDiverged), and the
    weights are checked finite before each save, so a diverged run keeps its last good file;
  - ``recipe.evaluate()`` every ``eval_every`` steps and at the end, logged with the train rows to
    ``out_dir/metrics.jsonl`` (train/metrics.py);
  - checkpoints (train/checkpoint.py) every ``checkpoint_every`` steps, at the end, and on
    Ctrl-C or SIGTERM (one path: the step finishes, the checkpoint is written, then
    TrainingInterrupted, a KeyboardInterrupt carrying the signal);
  - the run directory's lock (train/rundir.py) for the whole run: one writer at a time;
  - ``out_dir/config.json``; at the end ``recipe.artifacts(out_dir)``, a loss-curve PNG and the
    recipe's one-line summary.

Resume continues bit-identically on the cpu: the checkpoint holds weights, optimizer and
scheduler state, the recipe's extra state and both random generators. Evaluation and plotting run
with the generators saved before and restored after (and the modules' train/eval modes too), so
whether and when a run evaluates never changes its training: a run stopped at step N and resumed
trains exactly like one that never stopped, although only the first evaluated at step N.

Data parallel (``mpiexec -n N``, tinygrad_pt/distributed): every rank trains (its shard of each
global batch, gradients averaged before each optimizer step); rank 0 alone takes the lock and
writes the run: config, metrics, evaluations, checkpoints, plots, the bar. The train metrics are
averaged over the ranks at each log step (the global batch's, as one process logs them; a NaN
on any rank stops every rank at the same step). Resume reads the one checkpoint on every rank
(the random streams in it are the global batch's, the same on every rank).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import sys
import threading
import time

import numpy as np
from tqdm import tqdm

from .. import distributed
from ..backend import array_module, get_rng_state, set_rng_state
from ..errors import TrainingDiverged, UserError
from ..tensor import Tensor
from .checkpoint import CHECKPOINT_NAME, checkpoint_info, load_checkpoint, save_checkpoint
from .metrics import MetricsLog, read_metrics, truncate
from .rundir import run_lock

__all__ = ["train", "optimize", "resume_checkpoint", "TrainingInterrupted", "TrainingDiverged",
           "METRICS_NAME", "CONFIG_NAME", "LOSS_CURVES_NAME"]

METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
LOSS_CURVES_NAME = "loss_curves.png"


def optimize(optimizer, loss_fn, steps: int, on_step=None):
    """Take `steps` optimisation steps: ``loss = loss_fn(step)``, zero_grad, backward, step.

    The loop of the small trainings that need no run directory (a probe's head, fine-tuning,
    the GAN's judge, the demo MLP), written once here so that no module below train/ runs one.
    ``on_step(done, loss)`` is called after each step (done counts from 1), e.g. to log.
    Returns the last loss Tensor, not read back (reading it is a device sync: the caller's
    choice).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"optimize: steps must be a positive integer, got {steps!r}")
    for step in range(int(steps)):
        loss = loss_fn(step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step + 1, loss)
    return loss


def resume_checkpoint(out_dir) -> str:
    """The checkpoint that resuming the run in `out_dir` continues from. Checked once, here, for
    train(resume=True) and the CLI's --resume alike: a FileNotFoundError when there is none."""
    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, CHECKPOINT_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(2, f"train: resume=True (--resume continues the run in "
                                f"{out_dir}), but it holds no {CHECKPOINT_NAME}: there is no run "
                                "to continue; start without resume to train from scratch, or "
                                "point --out at the run", path)
    return path


def _cadence(name: str, value) -> int:
    """A step interval: None or 0 means never (only at the end)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise UserError(f"train: {name} must be a non-negative integer (0 or None: only at the "
                        f"end), got {value!r}")
    return int(value)


def _read_back(recipe, metrics) -> dict:
    """The step's metrics as Python floats. For Tensors this is a device -> host copy: a sync."""
    if not isinstance(metrics, dict):
        raise TypeError(f"train: {recipe.name}.train_step must return a dict of name -> 0-d "
                        f"Tensor, got {type(metrics).__name__}")
    out = {}
    for key, value in metrics.items():
        if isinstance(value, Tensor):
            if value.size != 1:
                raise ValueError(f"train: {recipe.name}.train_step returned {key!r} with shape "
                                 f"{value.shape}; metrics must be 0-d (e.g. loss.mean())")
            value = value.item()
        out[key] = float(value)
    return out


def _format(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


@contextlib.contextmanager
def _isolated(recipe):
    """Run evaluation/plots without touching training: both generators and every module's
    train/eval mode are put back as they were. (A cuda generator cannot be saved; see
    checkpoint.py.)"""
    rng_state = recipe.rng.bit_generator.state
    backend_state = get_rng_state("cpu")
    modes = [(m, m.training) for module in recipe.modules.values() for m in module.modules()]
    try:
        yield
    finally:
        recipe.rng.bit_generator.state = rng_state
        set_rng_state(backend_state, "cpu")
        for m, training in modes:
            m.training = training


class TrainingInterrupted(KeyboardInterrupt):
    """The run stopped on SIGINT (Ctrl-C) or SIGTERM (a batch scheduler's stop); ``signum`` says
    which, so that the command exits with the conventional 128 + signum (130, 143)."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


# The stopping signals: SIGINT (Ctrl-C) and SIGTERM (what kill, systemd and batch schedulers such
# as Slurm send before they kill), taken by one path.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _GracefulInterrupt:
    """Ctrl-C or SIGTERM asks the loop to stop after the current step (the state is consistent
    between steps, never inside one); a second one stops at once, without a checkpoint. The
    handlers are installed only in the main thread (Python delivers signals nowhere else)."""

    def __init__(self, announce):
        self.requested = False
        self.signum = None
        self._announce = announce
        self._previous = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise TrainingInterrupted(f"{signal.Signals(signum).name} again: stopped at once, "
                                      "without a checkpoint", signum)
        self.requested, self.signum = True, signum
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self._announce(f"interrupted ({what}): finishing this step and saving a checkpoint "
                       f"({what} again to quit at once, without one)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
        return False


def _first_nonfinite_state(recipe):
    """The first module entry (``module.<name>.<key>``) holding NaN or Inf, else None. A pass
    over the weights (and on a GPU a sync): done only before a checkpoint is written, so that a
    diverged run never overwrites its last good checkpoint with NaN weights."""
    for name, module in recipe.modules.items():
        for key, t in module.state_dict().items():
            if t.dtype.kind == "f" and not bool(array_module(t.data).isfinite(t.data).all()):
                return f"module.{name}.{key}"
    return None


def _versions(device: str) -> dict:
    from .. import __version__
    versions = {"tinygrad_pt": __version__, "python": platform.python_version(),
                "numpy": np.__version__}
    if device == "cuda":
        try:
            import cupy  # noqa: PLC0415 (optional)
            versions["cupy"] = cupy.__version__
        except Exception:  # the run itself will say why cupy is missing
            pass
    return versions


def _write_config(path, recipe, steps, eval_every, checkpoint_every, log_every, start_step):
    record = {"recipe": recipe.name, "config": recipe.config, "seed": recipe.seed,
              "device": recipe.device, "steps": steps, "eval_every": eval_every,
              "checkpoint_every": checkpoint_every, "log_every": log_every,
              "resumed_from_step": start_step if start_step else None,
              "platform": platform.platform(), "versions": _versions(recipe.device)}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2, default=str)
        f.write("\n")
    os.replace(tmp, path)


def train(recipe, out_dir, steps=None, resume: bool = False, progress: bool = True,
          eval_every=None, checkpoint_every=None, *, artifacts: bool = True) -> dict:
    """Train `recipe` for `steps` steps in total, writing the run into `out_dir`.

    steps             total optimisation steps of this call (default ``recipe.config["steps"]``,
                      which is also what learning-rate schedules are built to span: a smaller
                      `steps` stops early on the way, and a later resume continues exactly); a
                      resumed run continues from its checkpoint's step up to this total
    resume            load ``out_dir/checkpoint.safetensors`` first (it must exist); the metrics
                      log is cut back to the checkpoint's step and appended to
    progress          the tqdm bar, eval lines and the closing summary (False: silent)
    eval_every        evaluate every this many steps (default ``config["eval_every"]``; 0: only at
                      the end)
    checkpoint_every  save every this many steps (default: at each evaluation; 0: only at the
                      end). A checkpoint is also saved at the end and on Ctrl-C / SIGTERM.
    artifacts         at the end, call ``recipe.artifacts(out_dir)`` and plot the loss curves
                      (False skips both: quick tests)

    The run holds ``out_dir``'s lock (train/rundir.py) from start to end: a second run into the
    same directory fails at once. Returns the final evaluation metrics (``recipe.evaluate()`` at
    the last step), which the closing line passes to ``recipe.summary``. Ctrl-C or SIGTERM
    finishes the current step, saves a checkpoint and raises TrainingInterrupted (a
    KeyboardInterrupt). A train metric that turns NaN/Inf raises TrainingDiverged, the last
    good checkpoint kept.
    """
    cfg = recipe.config
    steps = cfg.get("steps") if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise UserError(f"train: steps must be a positive integer, got {steps!r}")
    steps = int(steps)
    eval_every = _cadence("eval_every", cfg.get("eval_every") if eval_every is None else eval_every)
    checkpoint_every = _cadence("checkpoint_every",
                                eval_every if checkpoint_every is None else checkpoint_every)
    log_every = max(1, _cadence("log_every", cfg.get("log_every", 10)))

    out_dir = os.fspath(out_dir)
    distributed.init()  # world size 1 unless started by mpiexec
    recipe.data_parallel()  # alone: nothing; else rank 0's weights, averaged gradients
    lead = distributed.rank() == 0  # the one writer of the run directory
    # One writer per run directory, for the whole run: under mpiexec, rank 0.
    with run_lock(out_dir) if lead else contextlib.nullcontext():
        return _train_locked(recipe, out_dir, steps, resume, progress and lead, eval_every,
                             checkpoint_every, log_every, artifacts and lead, lead)


class _NoLog:
    """The metrics log of a rank that does not write (data parallel: all but rank 0)."""

    def write(self, *args, **kwargs):
        pass


def _train_locked(recipe, out_dir, steps, resume, progress, eval_every, checkpoint_every,
                  log_every, artifacts, lead=True) -> dict:
    cfg = recipe.config
    batch_size = cfg.get("batch_size")
    ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME)
    log_path = os.path.join(out_dir, METRICS_NAME)
    say = tqdm.write if progress else (lambda *a, **k: None)

    start_step, elapsed0 = 0, 0.0
    if resume:
        resume_checkpoint(out_dir)  # a clear error when there is nothing to resume
        start_step = load_checkpoint(ckpt_path, recipe)
        elapsed0 = checkpoint_info(ckpt_path)["elapsed"]
        if start_step > steps:
            raise UserError(f"train: the checkpoint in {out_dir!r} is at step {start_step}, past "
                            f"the requested total steps={steps}; ask for at least {start_step} "
                            "steps (--steps), or leave --steps out to continue to the run's own "
                            "total")
        if lead:
            truncate(log_path, start_step)  # rows written after the checkpoint would repeat
        log = MetricsLog(log_path, fresh=False) if lead else _NoLog()
        say(f"{recipe.name}: resumed from step {start_step} of {steps} ({ckpt_path})")
    else:
        # A new run here replaces the old one whole: its checkpoint goes now, so that a new run
        # that stops (or diverges) before its first save does not leave the old weights beside
        # the new log.
        if lead and os.path.exists(ckpt_path):
            os.unlink(ckpt_path)
        log = MetricsLog(log_path, fresh=True) if lead else _NoLog()
    if lead:
        _write_config(os.path.join(out_dir, CONFIG_NAME), recipe, steps, eval_every,
                      checkpoint_every, log_every, start_step)

    session_start = time.perf_counter()
    elapsed = lambda: elapsed0 + time.perf_counter() - session_start  # noqa: E731
    saved_step = start_step if resume else None  # the step of the checkpoint on disk
    last_finite = None  # (step, metrics) of the last log step whose metrics were all finite

    def evaluate(step):
        if not lead:  # evaluation is isolated from training: the other ranks skip it
            return {}
        with _isolated(recipe):
            metrics = {k: float(v) for k, v in recipe.evaluate().items()}
        log.write(step, "eval", metrics, elapsed())
        say(f"step {step}: eval {_format(metrics)}")
        return metrics

    def diverged(step, what):
        bar.close()
        kept = (f"the checkpoint of step {saved_step} in {ckpt_path} is kept, untouched"
                if saved_step is not None else "no checkpoint was written")
        before = (f"the last finite metrics were at step {last_finite[0]}: "
                  f"{_format(last_finite[1])}" if last_finite else "no step logged finite metrics")
        hint = (f"lower the learning rate (lr={cfg['lr']!r}; e.g. --set lr={cfg['lr'] / 10:g})"
                if isinstance(cfg.get("lr"), (int, float)) else "lower the learning rate")
        error = TrainingDiverged(f"{recipe.name}: training diverged at step {step}: {what}; "
                                 f"{before}; {kept}. Start again with other settings, most often: "
                                 f"{hint} (tinygrad-pt train {recipe.name} --overwrite ...)")
        error.every_rank = True  # every rank sees the same (averaged) metrics and weights
        raise error

    def check_finite(step, values):
        nonlocal last_finite
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            diverged(step, ", ".join(f"{k} is {values[k]}" for k in bad))
        last_finite = (step, values)

    def checkpoint(step):
        """Save, unless the weights went non-finite (then stop, keeping the last good file)."""
        nonlocal saved_step
        bad = _first_nonfinite_state(recipe)  # on every rank: they stop together
        if bad:
            diverged(step, f"the weights hold NaN or Inf ({bad})")
        if not lead:  # the ranks hold the same weights: rank 0's file is the run's
            saved_step = step
            return
        try:
            save_checkpoint(ckpt_path, recipe, step, elapsed())
        except OSError as e:  # a full disk, a quota, a directory gone read-only
            raise UserError(f"cannot write the checkpoint of step {step} to {ckpt_path}: "
                            f"{e.strerror or e}; "
                            + (f"the checkpoint of step {saved_step} there is intact (saves are "
                               "atomic)" if saved_step is not None else "no checkpoint was "
                               "written") + ". Free space (or fix the directory) and resume "
                            f"(tinygrad-pt train {recipe.name} --resume --out {out_dir})"
                            ) from None
        saved_step = step

    bar = tqdm(total=steps, initial=start_step, desc=recipe.name, unit="step",
               disable=not progress, dynamic_ncols=True)
    # Throughput: steps of this session over the time spent in them (evaluation and saving
    # excluded), so the number is steady and says what training alone runs at.
    window_start, train_seconds, session_steps = time.perf_counter(), 0.0, 0
    parallel = distributed.world_size() > 1  # the ranks agree after each step on stopping

    def read_back(metrics):
        """The step's metrics as floats; data parallel: their mean over the ranks (every rank
        reads back at the same steps), which is the global batch's for a mean loss."""
        values = _read_back(recipe, metrics)
        if parallel:
            mean = distributed.all_reduce(np.array(list(values.values()), dtype=np.float64))
            values = dict(zip(values, (mean / distributed.world_size()).tolist()))
        return values
    try:
        with _GracefulInterrupt(say) as interrupt:
            for step in range(start_step, steps):
                metrics = recipe.train_step(step)
                done = step + 1
                session_steps += 1
                if done % log_every == 0 or done == steps:
                    values = read_back(metrics)  # the loop's only host <-> device sync
                    log.write(done, "train", values, elapsed())
                    check_finite(done, values)
                    metrics = None  # read back and checked: a save at this step needs no sync
                    now = time.perf_counter()
                    train_seconds, window_start = train_seconds + now - window_start, now
                    rate = session_steps / max(train_seconds, 1e-9)
                    speed = f"{rate:.3g} step/s"
                    if batch_size:
                        speed += f", {rate * batch_size:,.0f} ex/s"
                    bar.set_postfix_str(f"{_format(values)} | {speed}", refresh=False)
                bar.update(1)
                # Read once: a signal arriving after this is taken at the next step. Data
                # parallel: the ranks vote, so that every rank stops after the same step (else one
                # would wait in the next step's allreduce for one that stopped).
                stop = interrupt.requested
                if parallel:
                    stop = distributed.any_rank(stop)
                    if stop and interrupt.signum is None:  # another rank was signalled
                        interrupt.signum = signal.SIGTERM
                save_due = stop or done == steps or bool(
                    checkpoint_every and done % checkpoint_every == 0)
                if metrics is not None and save_due:
                    # A save follows: check this step's metrics first (a sync, only then).
                    check_finite(done, read_back(metrics))
                metrics = None  # drop the step's tensors (and any graph they hold)
                pause_start = time.perf_counter()
                if eval_every and done % eval_every == 0 and done != steps:
                    evaluate(done)
                if checkpoint_every and done % checkpoint_every == 0 and done != steps:
                    checkpoint(done)
                window_start += time.perf_counter() - pause_start  # not training time
                if stop:
                    if saved_step != done:
                        checkpoint(done)
                    bar.close()
                    what = ("Ctrl-C" if interrupt.signum == signal.SIGINT
                            else signal.Signals(interrupt.signum).name)
                    print(f"{recipe.name}: stopped ({what}) at step {done} of {steps}; "
                          f"checkpoint saved to {ckpt_path}. Continue with resume=True "
                          f"(tinygrad-pt train {recipe.name} --resume --out {out_dir})",
                          file=sys.stderr)
                    raise TrainingInterrupted(f"training stopped at step {done}; checkpoint "
                                              f"saved to {ckpt_path}", interrupt.signum)
            bar.close()
            if saved_step != steps:
                checkpoint(steps)  # still under the handler: a signal cannot cut this save short
    finally:
        bar.close()

    # The end: a last evaluation (unless the log already holds one for this step: a resumed run
    # that had nothing left to do), then the plots.
    if not lead:
        return {}
    logged = [r for r in read_metrics(log_path) if r["split"] == "eval" and r["step"] == steps]
    if logged and start_step == steps:
        with _isolated(recipe):
            final = {k: float(v) for k, v in recipe.evaluate().items()}
    else:
        final = evaluate(steps)
    paths = []
    if artifacts:
        from .plots import loss_curves  # matplotlib: imported only when plotting
        with _isolated(recipe):
            paths = list(recipe.artifacts(out_dir) or [])
        paths.append(loss_curves(log_path, os.path.join(out_dir, LOSS_CURVES_NAME)))
    if progress:
        print(f"{recipe.name}: {recipe.summary(final)}")
        print(f"  run directory {out_dir}: {METRICS_NAME}, {CHECKPOINT_NAME}" +
              "".join(f"\n  {p}" for p in paths))
    return final
