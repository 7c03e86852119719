#!/usr/bin/env python3
"""PCGrad the way PyTorch users write it, timed on the input bench_surgery.cpp uses.

    OMP_NUM_THREADS=2 python3 benchmarks/pytorch_pcgrad.py --K 4 --P 16000000 --threads 2

The loop follows the widely used PyTorch PCGrad implementation over flattened gradients: copy
the K gradients, for each g_i shuffle the task gradients and, for every g_j with g_i . g_j < 0,
subtract (g_i . g_j) g_j / ||g_j||^2 in place; then stack and sum. (The parameter-sharing mask of
that implementation is left out: every parameter is shared here, and indexing by it would only
make PyTorch slower.) Input: noise plus a shared direction with alternating signs per row, as in
bench_surgery.cpp. Prints one line per repeat and a final `seconds=<best>` line.
"""
import argparse
import random
import time

import torch


def conflicting_gradients(K, P, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(K, P, generator=gen, dtype=dtype)
    base = torch.randn(P, generator=gen, dtype=dtype)
    for k in range(K):
        g[k] += (2.0 if k % 2 == 0 else -2.0) * base
    return [g[k].clone() for k in range(K)]


def pcgrad(grads, rng):
    """Returns the combined gradient and the number of projections applied."""
    pc_grad = [g.clone() for g in grads]
    order = list(grads)
    projections = 0
    for g_i in pc_grad:
        rng.shuffle(order)
        for g_j in order:
            g_i_g_j = torch.dot(g_i, g_j)
            if g_i_g_j < 0:
                g_i -= g_i_g_j * g_j / (g_j.norm() ** 2)
                projections += 1
    return torch.stack(pc_grad).sum(dim=0), projections


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--K", type=int, default=4)
    parser.add_argument("--P", type=int, default=16_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--double", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.double else torch.float32
    grads = conflicting_gradients(args.K, args.P, 1, dtype)
    rng = random.Random(7)
    pcgrad([g[:1000] for g in grads], rng)  # warm-up
    best = float("inf")
    for r in range(args.repeats):
        t0 = time.perf_counter()
        out, projections = pcgrad(grads, rng)
        seconds = time.perf_counter() - t0
        best = min(best, seconds)
        print(f"pytorch {torch.__version__} K={args.K} P={args.P} threads={torch.get_num_threads()} "
              f"repeat {r}: {seconds:.4f} s, {projections} projections, |out|={out.norm().item():.4g}")
    print(f"seconds={best:.6f}")


if __name__ == "__main__":
    main()
