"""Data: real data sets that need no download, and a loader. This floor imports nothing else of
tinygrad_pt: batches are NumPy arrays."""
from .digits import load_digits
from .loader import DataLoader

__all__ = ["load_digits", "DataLoader"]
