"""The memorisation check of face models: is the generator nearer to its training faces than new real faces are?

Each generated sample's nearest training face, against the same for held-out real faces (never trained on), in
Inception feature space. Copies would show as generated distances well below the held-out ones (ratio ≪ 1, many
samples under the held-out 1st percentile). Measured by the GPU plan and by a campaign export on the CPU."""
from __future__ import annotations

import numpy as np
import torch


def nearest_distances(queries, reference, device) -> tuple:
    """(distance, index) of each query row's nearest reference row (Euclidean), in chunks on `device`."""
    ref = torch.as_tensor(reference, dtype=torch.float32, device=device)
    dists, idx = [], []
    for i in range(0, len(queries), 256):
        q = torch.as_tensor(queries[i:i + 256], dtype=torch.float32, device=device)
        v, j = torch.cdist(q, ref).min(1)
        dists.append(v.cpu())
        idx.append(j.cpu())
    return torch.cat(dists).numpy(), torch.cat(idx).numpy()


def memorisation(gen_features, holdout_features, train_features, device, train_rows=None) -> dict:
    """The check's figures from Inception features of generated samples, held-out real faces and training faces.
    `train_rows`: the training split's row of each training feature row (default: the same order), by which the
    closest samples name their nearest face."""
    d_gen, j_gen = nearest_distances(gen_features, train_features, device)
    m = {"memorisation_samples": int(len(d_gen)), "memorisation_train_faces": int(len(train_features)),
         "memorisation_nn_gen_median": round(float(np.median(d_gen)), 3)}
    if len(holdout_features):
        d_hold, _ = nearest_distances(holdout_features, train_features, device)
        p1 = float(np.percentile(d_hold, 1))
        m.update(memorisation_holdout=int(len(d_hold)),
                 memorisation_nn_holdout_median=round(float(np.median(d_hold)), 3),
                 memorisation_ratio=round(float(np.median(d_gen) / max(np.median(d_hold), 1e-12)), 4),
                 memorisation_below_holdout_p1=round(float((d_gen < p1).mean()), 4))
    closest = np.argsort(d_gen)[:8]          # seeds worth a look beside their nearest training rows
    rows = j_gen if train_rows is None else np.asarray(train_rows)[j_gen]
    m["memorisation_closest"] = [[int(s), int(rows[s]), round(float(d_gen[s]), 3)] for s in closest]
    return m
