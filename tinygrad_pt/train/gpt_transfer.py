"""The GPT's transfer task: which top-level package of the standard library a byte snippet
comes from, fine-tuning the pre-trained byte-level GPT against the same GPT from scratch.

    section = task_snippets(recipe, info, seeds=[0, 1, 2], labels_per_class=(4, 16, 64), ...)

Files are split as the pre-training corpus splits them (``ByteCorpus(seed=0, max_bytes=...)``,
the GPT recipe's): labelled snippets come from files of its train split, test snippets from files
of its validation split, so no test snippet's file was ever seen in pre-training. The classes are
the packages with the most bytes in the validation split that also hold train files (5 by
default); a snippet is block_size bytes (the run's) at a random offset of a random byte of the
package's files, drawn from a NumPy generator of the seed. ``snippet_bytes`` asks for shorter
snippets (1..block_size: the positions the run's GPT was trained on).

Rows: a linear probe on the frozen, mean-pooled features of the pre-trained GPT; the pre-trained
GPT fine-tuned (models/gpt_classifier.py); the same architecture freshly initialised and trained
the same way. Beside the table: text sampled from the pre-trained GPT and from the fine-tuned one
(same prompt, same sampling seed), to show what fine-tuning for classification did to its LM.
"""
from __future__ import annotations

import copy
import os

import numpy as np

from .. import optim
from ..autograd import no_grad
from ..backend import manual_seed, xp_for
from ..creation import tensor
from ..data.text import ByteCorpus
from ..errors import UserError
from ..models.gpt import GPT
from ..models.gpt_classifier import GPTClassifier
from ..nn import functional as F
from .loop import optimize
from .transfer import LinearProbe

__all__ = ["task_snippets", "package_files", "draw_snippets"]

N_TEST_PER_CLASS = 40
MIN_VAL_BYTES = 15_000   # a class needs this much validation text to draw distinct test snippets


def package_files(corpus: ByteCorpus) -> dict:
    """{package: (train files, val files)} for the top-level packages (folders) of the corpus."""
    out: dict = {}
    for split, files in (("train", corpus.files_train), ("val", corpus.files_val)):
        for f in files:
            parts = os.path.relpath(f, corpus.source).split(os.sep)
            if len(parts) > 1:  # a module at the top level belongs to no package
                out.setdefault(parts[0], ([], []))[split == "val"].append(f)
    return out


def _bytes_of(files) -> np.ndarray:
    chunks = []
    for f in files:
        with open(f, "rb") as fh:
            chunks.append(np.frombuffer(fh.read(), dtype=np.uint8))
    return np.concatenate(chunks)


def draw_snippets(data: list, n_per_class: int, length: int, rng) -> tuple:
    """(x (C * n, length) int64, y (C * n,) int64): n windows per class from each class's bytes."""
    xs, ys = [], []
    for c, arr in enumerate(data):
        starts = rng.integers(0, len(arr) - length, n_per_class)
        xs.append(np.stack([arr[s:s + length] for s in starts]).astype(np.int64))
        ys.append(np.full(n_per_class, c, dtype=np.int64))
    order = rng.permutation(sum(len(y) for y in ys))
    return np.concatenate(xs)[order], np.concatenate(ys)[order]


def _accuracy(model, x, y, device) -> float:
    model.eval()
    with no_grad():
        pred = model(tensor(x, device=device)).numpy().argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def _fine_tune(gpt, x, y, n_classes, steps, lr, batch_size, seed, device):
    model = GPTClassifier(gpt, n_classes).to(device)
    model.train()
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)

    def loss_of_step(step):
        idx = rng.integers(0, len(x), min(batch_size, len(x)))
        return F.cross_entropy(model(tensor(x[idx], device=device)),
                               tensor(y[idx], device=device))

    optimize(opt, loss_of_step, steps)
    return model


def _sample(gpt, prompt: bytes, n_tokens: int, seed: int, device) -> str:
    gen = xp_for(device).random.default_rng(seed)
    idx = ByteCorpus.encode(prompt.decode())[None, :]
    out = gpt.generate(idx, n_tokens, temperature=0.8, top_k=40, generator=gen).numpy()
    return ByteCorpus.decode(out[0])


def task_snippets(recipe, info, seeds, labels_per_class=(4, 16, 64), steps: int = 150,
                  lr: float = 5e-4, batch_size: int = 32, n_classes: int = 5, log=print,
                  sample_tokens: int = 160, snippet_bytes: int | None = None) -> dict:
    c = recipe.config
    device = recipe.device
    pretrained = recipe.modules["model"]
    length = c["block_size"] if snippet_bytes is None else snippet_bytes
    if isinstance(length, bool) or not isinstance(length, int) or \
            not 1 <= length <= c["block_size"]:
        # Longer snippets would reach positions the GPT has no embedding for.
        raise UserError(f"snippets: snippet_bytes must be an int from 1 to the run's block_size "
                        f"({c['block_size']}), got {length!r}")
    corpus = recipe.corpus  # the run's own split of files
    pkgs = package_files(corpus)
    ranked = sorted(((sum(os.path.getsize(f) for f in v), p) for p, (t, v) in pkgs.items()
                     if t and v), reverse=True)
    classes = [p for size, p in ranked if size >= MIN_VAL_BYTES][:n_classes]
    if len(classes) < 2:
        raise ValueError(f"snippets: the corpus's validation split has fewer than two packages "
                         f"with {MIN_VAL_BYTES} bytes ({ranked[:5]})")
    train_bytes = [_bytes_of(pkgs[p][0]) for p in classes]
    val_bytes = [_bytes_of(pkgs[p][1]) for p in classes]
    x_test, y_test = draw_snippets(val_bytes, N_TEST_PER_CLASS, length,
                                   np.random.default_rng(999))
    cols = ("probe (frozen, pre-trained)", "fine-tune (pre-trained)", "scratch (same GPT)")
    rows, diffs, samples = {}, {}, {}
    for k in labels_per_class:
        r = {col: [] for col in cols}
        for s in seeds:
            x, y = draw_snippets(train_bytes, k, length, np.random.default_rng(s))
            clf = GPTClassifier(pretrained, len(classes)).to(device)
            with no_grad():
                h_tr = clf.features(tensor(x, device=device)).numpy()
                h_te = clf.features(tensor(x_test, device=device)).numpy()
            probe = LinearProbe(None, len(classes), feat_dim=h_tr.shape[1], device=device)
            probe.fit(h_tr, y)
            r[cols[0]].append(probe.accuracy(h_te, y_test))
            tuned_gpt = copy.deepcopy(pretrained)
            tuned = _fine_tune(tuned_gpt, x, y, len(classes), steps, lr, batch_size, s, device)
            r[cols[1]].append(_accuracy(tuned, x_test, y_test, device))
            manual_seed(10_000 + s)
            fresh = GPT(vocab_size=ByteCorpus.vocab_size, block_size=length,
                        n_layer=c["n_layer"], n_head=c["n_head"], n_embd=c["n_embd"],
                        dropout=c["dropout"], bias=c["bias"]).to(device)
            scratch = _fine_tune(fresh, x, y, len(classes), steps, lr, batch_size, s, device)
            r[cols[2]].append(_accuracy(scratch, x_test, y_test, device))
            log(f"snippets k={k} seed={s}: " + ", ".join(f"{a} {v[-1]:.3f}" for a, v in r.items()))
            if s == seeds[0] and k == labels_per_class[-1]:
                samples = {"prompt": "def ", "pre-trained": _sample(pretrained, b"def ",
                                                                    sample_tokens, 4321, device),
                           "fine-tuned": _sample(tuned_gpt, b"def ", sample_tokens, 4321,
                                                 device)}
        rows[f"{k} / class"] = r
        diffs[f"{k} / class"] = {"fine-tune - scratch": list(np.subtract(r[cols[1]], r[cols[2]]))}
    return {"title": f"GPT fine-tuning: which package a {length}-byte snippet comes from",
            "note": (f"{len(classes)} classes (stdlib packages {', '.join(classes)}); labelled "
                     f"snippets from the pre-training corpus's train files, {N_TEST_PER_CLASS} "
                     f"test snippets per class from its validation files (never seen in "
                     f"pre-training); chance {1 / len(classes):.2f}. Fine-tune and scratch: "
                     f"{steps} AdamW steps (lr {lr:g}, batches of {batch_size}) with a zero-init "
                     f"head on the mean-pooled final hidden states; the probe: the frozen "
                     f"features, standardised, 500 full-batch Adam steps."),
            "columns": list(cols), "rows": rows, "diffs": diffs, "samples": samples}
