#!/usr/bin/env python3
"""One GCL pre-training step in PyTorch: the twin of benchmarks/gcl_step.cpp.

    python gcl_step.py --model demo --mitigation parameters --threads 2 [--steps 10 --warmup 2]
    python gcl_step.py --model demo --device cuda     # the same step on the GPU (float32)
    python gcl_step.py --check DIR      # DIR written by `gcl_step --model M --dump DIR`

The same step as gcl's train::GclObjective with the benchmark's options, written the way a
PyTorch user writes it: the model (U-Net encoder of conv 3x3 -> BatchNorm -> LeakyReLU(0.01)
blocks and 2x2 max pools, image head mean -> Linear -> ReLU -> Linear -> normalize, pixel head
1x1 conv -> ReLU -> 1x1 conv -> normalize), K = 3 meta labels each contrasting its own part of
the image and pixel embeddings (re-normalised), SupCon on the 2B image embeddings, pixel
contrast of S = 16 sampled locations, the anchor filter (each anchor scored by the summed
|dL/ds| of its pairs times |d(sum_m L_img^m)/dF| at its location, the top half kept with all
their pairs), then per label one autograd pass over all parameters (retain_graph), PCGrad over
the K flattened gradients (seeded orders; a conflict is g_i' . g_j < -1e-10 |g_i| |g_j|),
their sum, and SGD (lr 0.1, momentum 0.9, weight decay 1e-4 on conv and linear weights).

--check loads gcl's initial parameters, batch, sampled locations and projection orders (float64),
runs one step in float64 and compares the combined gradient with gcl's: prints the largest
difference relative to the largest gradient entry and exits non-zero above --tolerance (default
1e-4; the two agree to about 1e-12).
Timing prints `torch_step model=<m> mitigation=<l> threads=<t> steps=<n> median_s=<x> min_s=<y>
cpu_s=<c> peak_mb=<z> params=<P> torch=<version> device=<d>` (wall times, the median CPU time of
the process per step, the peak resident memory). On cuda every step ends with
torch.cuda.synchronize(), so a step's wall time holds its kernels; the batch, the sampled
locations and the projection orders are drawn on the host as on the cpu and copied once.
"""
import argparse
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

MODELS = {"demo": (3, 64), "deep": (4, 128)}  # depth, image size
BASE, IMAGES, LABELS, SAMPLES, TAU, ANCHOR_RATIO, EPS = 16, 16, 3, 16, 0.1, 0.5, 1e-10
IMAGE_HIDDEN, IMAGE_OUT, PIXEL_HIDDEN, PIXEL_OUT = 128, 96, 64, 48


def block(cin, cout):
    return tnn.Sequential(tnn.Conv2d(cin, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.LeakyReLU(0.01),
                          tnn.Conv2d(cout, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.LeakyReLU(0.01))


class Pretrain(tnn.Module):
    def __init__(self, depth):
        super().__init__()
        self.depth = depth
        self.blocks = tnn.ModuleList([block(1 if l == 0 else BASE << (l - 1), BASE << l) for l in range(depth + 1)])
        c = BASE << depth
        self.fc1, self.fc2 = tnn.Linear(c, IMAGE_HIDDEN), tnn.Linear(IMAGE_HIDDEN, IMAGE_OUT)
        self.conv1, self.conv2 = tnn.Conv2d(c, PIXEL_HIDDEN, 1), tnn.Conv2d(PIXEL_HIDDEN, PIXEL_OUT, 1)

    def forward(self, x):
        for l in range(self.depth):
            x = F.max_pool2d(self.blocks[l](x), 2)
        f = self.blocks[self.depth](x)
        image = F.normalize(self.fc2(F.relu(self.fc1(f.mean(dim=(2, 3))))), dim=1)
        pixel = F.normalize(self.conv2(F.relu(self.conv1(f))), dim=1)
        return image, pixel, f

    def gcl_order(self):
        """The parameters in gcl's registration (flat arena) order."""
        out = []
        for b in self.blocks:
            out += [b[0].weight, b[1].weight, b[1].bias, b[3].weight, b[4].weight, b[4].bias]
        return out + [self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                      self.conv1.weight, self.conv1.bias, self.conv2.weight, self.conv2.bias]


def supcon(sim, positive):
    """SupCon (L_out) from a similarity matrix and a boolean positive mask (diagonal excluded)."""
    A = sim.shape[0]
    eye = torch.eye(A, dtype=torch.bool)
    logits = (sim / TAU).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    n_pos = positive.sum(1)
    per_anchor = -torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(1) / n_pos.clamp(min=1)
    counted = n_pos > 0
    return per_anchor[counted].mean() if counted.any() else sim.sum() * 0


def masks(meta, locations_count):
    """Positive masks per label: images [K, 2B, 2B] and sampled pixels [K, A, A]."""
    N = meta.shape[1]
    B = N // 2
    view = torch.arange(N) % B
    same_image = view[:, None] == view[None, :]
    eye = torch.eye(N, dtype=torch.bool)
    image = [((meta[m][:, None] == meta[m][None, :]) | same_image) & ~eye for m in range(meta.shape[0])]
    S = locations_count
    n_of, s_of = torch.arange(N * S) // S, torch.arange(N * S) % S
    same_loc = s_of[:, None] == s_of[None, :]
    other_map = n_of[:, None] != n_of[None, :]
    pixel = [image[m][n_of][:, n_of] & same_loc & other_map for m in range(meta.shape[0])]
    return image, pixel


def kept_anchors(scores):
    """The top half of the anchors by score, ties to the lower index (gcl's GradFilter rule)."""
    A = scores.shape[0]
    keep = int(np.floor(ANCHOR_RATIO * A + 0.5))  # llround
    order = torch.sort(scores, descending=True, stable=True).indices[:keep]
    kept = torch.zeros(A, dtype=torch.bool)
    kept[order] = True
    return kept


def losses_and_pairs(model, x, image_masks, pixel_masks, locations):
    """Forward, per-label image losses, per-label pixel similarity matrices and their masked pair grads."""
    image, pixel, f = model(x)
    K = len(image_masks)
    d, c = image.shape[1] // K, pixel.shape[1] // K
    l_img = [supcon((u := F.normalize(image[:, m * d:(m + 1) * d], dim=1)) @ u.T, image_masks[m]) for m in range(K)]
    (g_f,) = torch.autograd.grad(sum(l_img), f, retain_graph=True)
    N, C = f.shape[0], f.shape[1]
    S = locations.shape[0]
    guidance = g_f.flatten(2)[:, :, locations].permute(0, 2, 1).reshape(N * S, C).norm(dim=1)
    sims, pair_grads = [], []
    for m in range(K):
        part = pixel[:, m * c:(m + 1) * c].flatten(2)[:, :, locations].permute(0, 2, 1).reshape(N * S, c)
        u = F.normalize(part, dim=1)
        sim = u @ u.T
        l_pix = supcon(sim, pixel_masks[m])
        (g_s,) = torch.autograd.grad(l_pix, sim, retain_graph=True)
        kept = kept_anchors(g_s.abs().sum(1) * guidance)
        sims.append(sim)
        pair_grads.append(g_s * kept[:, None])
    return l_img, sims, pair_grads


def pcgrad(G, orders):
    """PCGrad over the rows of G [K, P] in the given orders; returns the sum of the projected rows."""
    K = G.shape[0]
    norms2 = (G * G).sum(1)
    out = torch.zeros_like(G[0])
    for i in range(K):
        g = G[i].clone()
        for j in orders[i]:
            d = torch.dot(g, G[j])
            if d < -EPS * torch.sqrt(norms2[i] * norms2[j]):
                g -= d / norms2[j] * G[j]
        out += g
    return out


def step_gradient(model, params, x, image_masks, pixel_masks, locations, orders, mitigation):
    l_img, sims, pair_grads = losses_and_pairs(model, x, image_masks, pixel_masks, locations)
    K = len(l_img)
    if mitigation == "none":
        grads = torch.autograd.grad(l_img + sims, params, [torch.ones(())] * K + pair_grads)
        return torch.cat([g.reshape(-1) for g in grads])
    rows = []
    for m in range(K):
        grads = torch.autograd.grad([l_img[m], sims[m]], params, [torch.ones(()), pair_grads[m]], retain_graph=m + 1 < K)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return pcgrad(torch.stack(rows), orders)


def make_optimizer(model):
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    return torch.optim.SGD([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}],
                           lr=0.1, momentum=0.9)


def load_gcl_parameters(params, directory):
    flat = np.load(f"{directory}/params.npy")
    table = np.load(f"{directory}/params_table.npy")
    if len(table) != len(params):
        sys.exit(f"gcl_step.py: gcl has {len(table)} parameters, the PyTorch model {len(params)}")
    for p, row in zip(params, table):
        shape = tuple(int(v) for v in row[2:2 + row[1]])
        if shape != tuple(p.shape):
            sys.exit(f"gcl_step.py: parameter shape {shape} in gcl, {tuple(p.shape)} in PyTorch")
        with torch.no_grad():
            p.copy_(torch.from_numpy(flat[row[0]:row[0] + p.numel()].reshape(shape)))
    return flat.size


def check(directory, tolerance, mitigation):
    torch.set_default_dtype(torch.float64)
    images = torch.from_numpy(np.load(f"{directory}/images.npy"))
    meta = torch.from_numpy(np.load(f"{directory}/meta.npy"))
    locations = torch.from_numpy(np.load(f"{directory}/locations.npy"))
    orders = np.load(f"{directory}/orders.npy").tolist()
    depth = {64: 3, 128: 4}[images.shape[-1]]
    model = Pretrain(depth).double()
    params = model.gcl_order()
    P = load_gcl_parameters(params, directory)
    image_masks, pixel_masks = masks(meta, locations.shape[0])
    g = step_gradient(model, params, images, image_masks, pixel_masks, locations, orders, mitigation)
    ref = torch.from_numpy(np.load(f"{directory}/grad.npy"))
    if ref.numel() != P or g.numel() != P:
        sys.exit(f"gcl_step.py --check: gradient sizes differ: gcl {ref.numel()}, PyTorch {g.numel()}, P {P}")
    diff = (g - ref).abs().max().item() / ref.abs().max().item()
    cosine = torch.nn.functional.cosine_similarity(g, ref, dim=0).item()
    ok = diff <= tolerance
    print(f"gcl_step.py --check {directory}: P = {P}, mitigation {mitigation}, max |g_torch - g_gcl| / max |g_gcl| = "
          f"{diff:.2e} (tolerance {tolerance:.0e}), cosine {cosine:.8f}: {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


def timing(args):
    depth, size = MODELS[args.model]
    device = torch.device(args.device)
    torch.manual_seed(7)
    model = Pretrain(depth)
    generator = torch.Generator().manual_seed(7)  # host draws, as gcl's
    x = torch.randn(2 * IMAGES, 1, size, size, generator=generator)
    x[IMAGES:] = x[:IMAGES] + 0.1 * x[IMAGES:]
    values = torch.stack([torch.randint(0, v, (IMAGES,), generator=generator) for v in (4, 4, 2)])
    meta = torch.cat([values, values], dim=1)
    torch.set_default_device(device)  # the step's own tensors (masks, identities) on the device
    model = model.to(device)
    params = model.gcl_order()
    optimizer = make_optimizer(model)
    x = x.to(device)
    h = size >> depth
    image_masks, pixel_masks = masks(meta.to(device), SAMPLES)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seconds, cpu_seconds = [], []
    for step in range(args.warmup + args.steps):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        locations = torch.sort(torch.randperm(h * h, generator=generator, device="cpu")[:SAMPLES]).values.to(device)
        orders = [[j for j in torch.randperm(LABELS, generator=generator, device="cpu").tolist() if j != i]
                  for i in range(LABELS)]
        g = step_gradient(model, params, x, image_masks, pixel_masks, locations, orders, args.mitigation)
        offset = 0
        for p in params:
            p.grad = g[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
        optimizer.step()
        sync()
        if step >= args.warmup:
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch_step model={args.model} mitigation={args.mitigation} threads={torch.get_num_threads()} "
          f"steps={args.steps} median_s={statistics.median(seconds):.4f} min_s={min(seconds):.4f} "
          f"cpu_s={statistics.median(cpu_seconds):.4f} peak_mb={peak:.1f} "
          f"params={sum(p.numel() for p in params)} torch={torch.__version__} device={device.type}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="demo")
    parser.add_argument("--mitigation", choices=["parameters", "none"], default="parameters")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--check", metavar="DIR")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    return check(args.check, args.tolerance, args.mitigation) if args.check else timing(args)


if __name__ == "__main__":
    sys.exit(main())
