"""The `tinygrad-pt` command."""
from __future__ import annotations

import argparse
import sys


def _demo(args) -> int:
    from .train.digits_mlp import train_digits_mlp

    result = train_digits_mlp(steps=args.steps, device=args.device, seed=args.seed)
    print(f"digits MLP: {result['steps']} steps in {result['seconds']:.1f} s "
          f"({result['examples_per_s']:,.0f} examples/s), final train loss "
          f"{result['train_loss']:.4f}, test accuracy {100 * result['test_accuracy']:.1f}% "
          f"on 359 held-out real digits")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-pt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small MLP on the real 8x8 digits (a minute on CPU)")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
