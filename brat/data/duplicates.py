"""Exact and near-identical copies among a dataset's images.

Exact duplicates share their decoded pixels. Near-identical copies (the same slice re-encoded,
resized, re-contrasted, sharpened or mirrored) are found in two steps: a DCT perceptual hash of the
head proposes candidate pairs, and a pixel comparison (correlation of 32 x 32 thumbnails of the
cropped head, also against the mirrored thumbnail) confirms them. Copies are joined transitively
into clusters. The thresholds were calibrated on brain-mri (docs/duplicates.md,
benchmarks/calibrate_duplicates.py) so that neighbouring slices of one patient are not merged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from brat.data.fingerprint import THUMB_SIDE, Fingerprints

# No pair confirmed by the pixel comparison on brain-mri had a hash distance above 10 (of 64 bits).
HAMMING_MAX = 12
# Adjacent slices of one figshare patient reach 0.972; copies mostly correlate above 0.99.
MIN_CORRELATION = 0.98


@dataclass(frozen=True)
class DuplicateReport:
    exact_clusters: list[list[str]]  # files with identical decoded pixels, 2 or more per cluster
    near_clusters: list[list[str]]  # near-identical copies (exact ones included), 2+ per cluster

    def near_cluster_index(self) -> dict[str, int]:
        """Map each file in a near-duplicate cluster to its cluster's position in the list."""
        return {path: i for i, cluster in enumerate(self.near_clusters) for path in cluster}

    def label_conflicts(self, labels: dict[str, str | None]) -> list[list[str]]:
        """The near-duplicate clusters whose members carry different labels (path -> label;
        files without one, or not in `labels`, are left out)."""
        return [
            cluster
            for cluster in self.near_clusters
            if len({labels[p] for p in cluster if labels.get(p)}) > 1
        ]


def perceptual_hashes(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """64-bit DCT hashes of each thumbnail and of its mirror image."""
    plain, mirrored = [], []
    for thumb in thumbs.reshape(-1, THUMB_SIDE, THUMB_SIDE):
        for image, out in ((thumb, plain), (np.ascontiguousarray(thumb[:, ::-1]), mirrored)):
            low = cv2.dct(image)[:8, :8].flatten()
            out.append(np.packbits(low > np.median(low[1:])).view(">u8")[0])
    return np.array(plain, dtype=np.uint64), np.array(mirrored, dtype=np.uint64)


def find_duplicates(
    fingerprints: Fingerprints,
    *,
    hamming_max: int = HAMMING_MAX,
    min_correlation: float = MIN_CORRELATION,
) -> DuplicateReport:
    paths = fingerprints.paths
    n = len(paths)
    by_pixels: dict[bytes, list[int]] = defaultdict(list)
    for i, digest in enumerate(fingerprints.exact.tolist()):
        by_pixels[digest].append(i)
    exact = [members for members in by_pixels.values() if len(members) > 1]
    pairs = [(members[0], other) for members in exact for other in members[1:]]
    pairs += confirmed_pairs(fingerprints.thumbs, hamming_max, min_correlation)
    near = _components(n, pairs)
    return DuplicateReport(
        exact_clusters=_named(exact, paths),
        near_clusters=_named(near, paths),
    )


def confirmed_pairs(
    thumbs: np.ndarray, hamming_max: int, min_correlation: float
) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose hashes are close and whose thumbnails correlate."""
    plain, mirrored = perceptual_hashes(thumbs)
    mirror_thumbs = thumbs.reshape(-1, THUMB_SIDE, THUMB_SIDE)[:, :, ::-1].reshape(len(thumbs), -1)
    pairs = []
    for i in range(len(thumbs) - 1):
        rest = slice(i + 1, None)
        close = (np.bitwise_count(plain[rest] ^ plain[i]) <= hamming_max) | (
            np.bitwise_count(mirrored[rest] ^ plain[i]) <= hamming_max
        )
        candidates = np.flatnonzero(close) + i + 1
        if candidates.size == 0:
            continue
        correlation = np.maximum(
            thumbs[candidates] @ thumbs[i], mirror_thumbs[candidates] @ thumbs[i]
        )
        pairs += [(i, int(j)) for j in candidates[correlation >= min_correlation]]
    return pairs


def _components(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    if not pairs:
        return []
    rows, cols = zip(*pairs, strict=True)
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        members[label].append(i)
    return [m for m in members.values() if len(m) > 1]


def _named(clusters: list[list[int]], paths: list[str]) -> list[list[str]]:
    named = [sorted(paths[i] for i in cluster) for cluster in clusters]
    return sorted(named, key=lambda cluster: (-len(cluster), cluster[0]))
