"""Data: real data sets that need no download, a loader, and augmentations. This floor imports
nothing else of tinygrad_pt: batches are NumPy arrays.

    load_digits         the 8x8 digits inside scikit-learn, fixed stratified train/test split
    read_idx, write_idx MNIST-layout IDX files from a path (load_idx_images for image/label pairs)
    ByteCorpus          bytes of text (default: the standard library's source), split by file
    DataLoader          batches over aligned arrays, seeded shuffling
    augment             shifts, crops, noise, erasing, masking; two_views for contrastive learning
"""
from . import augment
from .digits import load_digits
from .idx import load_idx_images, read_idx, write_idx
from .loader import DataLoader
from .text import ByteCorpus

__all__ = ["load_digits", "DataLoader", "read_idx", "write_idx", "load_idx_images", "ByteCorpus",
           "augment"]
