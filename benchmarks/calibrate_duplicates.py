"""Calibrate the near-duplicate thresholds on a dataset with known groups; prints JSON.

    python -m benchmarks.calibrate_duplicates DATA   # e.g. ../shared/datasets/brain-mri

DATA needs a metadata.csv with a `source` and `group` column, as brain-mri has. Positives are
pairs inside one Br35H group (copies of one slice); negatives are pairs of slices of one figshare
patient (neighbouring slices, which must not merge). For each correlation threshold it reports how
many figshare images would be merged, how many Br35H clusters remain, and how far apart the
perceptual hashes of the confirmed pairs are (which bounds the hash's candidate threshold).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import numpy as np

from brat.data.dataset import load_dataset
from brat.data.duplicates import HAMMING_MAX, confirmed_pairs, perceptual_hashes
from brat.data.fingerprint import THUMB_SIDE, compute_fingerprints


def main(root: str) -> dict:
    start = time.perf_counter()
    dataset = load_dataset(root)
    fingerprints = compute_fingerprints(dataset.root, [r.path for r in dataset.records])
    group = {r.path: r.group for r in dataset.records}
    groups = np.array([group[p] or p for p in fingerprints.paths])
    br35h = np.array([g.startswith("br") for g in groups])
    thumbs = fingerprints.thumbs
    mirrored = thumbs.reshape(-1, THUMB_SIDE, THUMB_SIDE)[:, :, ::-1].reshape(len(thumbs), -1)
    correlation = np.maximum(thumbs @ thumbs.T, thumbs @ mirrored.T)
    upper = np.triu_indices(len(thumbs), 1)
    same = (groups[:, None] == groups[None, :])[upper]
    pair_br35h = br35h[upper[0]]
    values = correlation[upper]
    positives, negatives = values[same & pair_br35h], values[same & ~pair_br35h]
    plain, mirror = perceptual_hashes(thumbs)
    hamming = np.minimum(
        np.bitwise_count(plain[:, None] ^ plain[None, :]),
        np.bitwise_count(plain[:, None] ^ mirror[None, :]),
    )[upper]
    table = []
    for threshold in (0.95, 0.96, 0.97, 0.98, 0.99):
        pairs = confirmed_pairs(thumbs, hamming_max=64, min_correlation=threshold)
        merged_figshare = {i for pair in pairs for i in pair if not br35h[i]}
        parent = list(range(len(thumbs)))

        def find(i: int, parent: list[int] = parent) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, j in pairs:
            parent[find(i)] = find(j)
        clusters = Counter(find(i) for i in np.flatnonzero(br35h))
        table.append(
            {
                "min_correlation": threshold,
                "figshare_images_merged": len(merged_figshare),
                "br35h_distinct": len(clusters),
                "positive_pair_recall": round(float((positives >= threshold).mean()), 4),
                "max_hamming_of_confirmed_pairs": int(hamming[values >= threshold].max()),
            }
        )
    return {
        "images": len(thumbs),
        "positive_pairs": int(positives.size),
        "negative_pairs": int(negatives.size),
        "negative_correlation_max": round(float(negatives.max()), 4),
        "negative_correlation_p99": round(float(np.percentile(negatives, 99)), 4),
        "positive_correlation_p5": round(float(np.percentile(positives, 5)), 4),
        "hamming_max_in_use": HAMMING_MAX,
        "thresholds": table,
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(json.dumps(main(sys.argv[1]), indent=2))
