"""tinygrad_pt.viz: the dot text of a small known graph, labels, freed graphs, deep graphs, SVG."""
import os
import re
import stat
import sys

import numpy as np
import pytest

import tinygrad_pt as tg
from tinygrad_pt.viz import to_dot, to_svg


def parse(dot):
    """{node: label} and [(src, dst)] from to_dot's output, checking that it is well formed."""
    assert dot.startswith("digraph autograd {\n") and dot.rstrip().endswith("}")
    nodes = dict(re.findall(r'^  (n\d+) \[.*?label="((?:[^"\\]|\\.)*)"', dot, flags=re.M))
    edges = re.findall(r"^  (n\d+) -> (n\d+);$", dot, flags=re.M)
    for src, dst in edges:
        assert src in nodes and dst in nodes
    return nodes, edges


def test_small_graph_nodes_edges_and_labels():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w + x).exp().sum()
    dot = to_dot(y, params={"x": x, "w": w})
    nodes, edges = parse(dot)
    assert dot.count("shape=box") == 4 and dot.count("shape=ellipse") == 2
    assert len(nodes) == 6 and len(edges) == 6
    by_label = {label.split("\\n")[0]: n for n, label in nodes.items()}
    assert set(by_label) == {"Sum", "Exp", "Add", "Mul", "x", "w"}
    assert nodes[by_label["Mul"]] == "Mul\\n(2,) float32"
    assert nodes[by_label["Sum"]] == "Sum\\n() float32"
    assert nodes[by_label["x"]] == "x\\n(2,) float32\\nrequires_grad=True"
    want = {("x", "Mul"), ("w", "Mul"), ("Mul", "Add"), ("x", "Add"), ("Add", "Exp"), ("Exp", "Sum")}
    name = {n: label.split("\\n")[0] for n, label in nodes.items()}
    assert {(name[s], name[d]) for s, d in edges} == want
    assert dot.count("peripheries=2") == 1 and "peripheries=2" in dot.splitlines()[2]  # the root


def test_constants_and_unnamed_leaves():
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    dot = to_dot(x * 2.0)
    nodes, edges = parse(dot)
    labels = sorted(nodes.values())
    assert labels == ["Mul\\n(2, 3) float64", "leaf\\n() float64\\nrequires_grad=False",
                      "leaf\\n(2, 3) float64\\nrequires_grad=True"]
    assert len(edges) == 2


def test_shared_input_drawn_once():
    x = tg.tensor([1.0], requires_grad=True)
    h = x * x
    nodes, edges = parse(to_dot(h + h))
    assert len(nodes) == 3 and len(edges) == 4  # x->Mul twice, Mul->Add twice


def test_leaf_alone_and_freed_graph():
    x = tg.tensor([1.0], requires_grad=True)
    nodes, edges = parse(to_dot(x))
    assert list(nodes.values()) == ["leaf\\n(1,) float32\\nrequires_grad=True"] and not edges
    y = (x * 3).sum()
    y.backward()
    nodes, edges = parse(to_dot(y))
    assert list(nodes.values()) == ["Sum (freed)\\n() float32"] and not edges


def test_deep_graph_is_walked_without_recursion():
    x = tg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    limit = sys.getrecursionlimit()
    nodes, edges = parse(to_dot(y))
    assert sys.getrecursionlimit() == limit
    assert len(nodes) == 1 + 5000 + 5000  # x, the Muls, the constants
    assert len(edges) == 10000


def test_label_escaping():
    x = tg.tensor([1.0], requires_grad=True)
    dot = to_dot(x * x, params={'say "hi"\\': x})
    assert r'label="say \"hi\"\\\n(1,) float32' in dot
    parse(dot)


def test_to_dot_rejects_non_tensors():
    with pytest.raises(TypeError, match="to_dot: expected a Tensor, got ndarray"):
        to_dot(np.ones(2))


def _fake_dot(folder, script):
    path = folder / "dot"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_to_svg_without_graphviz_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"to_svg: Graphviz's `dot` program was not found.*install"):
        to_svg(x * 2, tmp_path / "g.svg")


@pytest.mark.skipif(os.name != "posix", reason="a shell-script stand-in for dot")
def test_to_svg_runs_dot_with_the_graph(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in dot: records its arguments and copies stdin to the -o file.
    _fake_dot(bin_dir, 'echo "$@" > "$(dirname "$0")/args"\ncat > "$3"\n')
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    x = tg.tensor([1.0], requires_grad=True)
    out = to_svg((x * 2).sum(), tmp_path / "g.svg")
    assert out == str(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == to_dot((x * 2).sum())
    assert (bin_dir / "args").read_text().split()[:2] == ["-Tsvg", "-o"]
    _fake_dot(bin_dir, 'echo "syntax error in line 3" >&2\nexit 2\n')
    with pytest.raises(RuntimeError, match=r"`dot` failed with exit code 2: syntax error in line 3"):
        to_svg(x * 2, tmp_path / "h.svg")
