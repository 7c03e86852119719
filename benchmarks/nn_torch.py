#!/usr/bin/env python3
"""PyTorch timings of the models in benchmarks/nn_unet.cpp (same architecture, batch, threads).

    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/nn_torch.py [threads]

Prints the median wall time in ms of: U-Net forward; U-Net forward + backward; the pre-training
model's forward + 1 backward and forward + 4 backward passes (retain_graph, one gradient per pass).
"""
import statistics
import sys
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F

BATCH, SIZE, DEPTH, BASE, CLASSES = 4, 128, 4, 16, 4
IMAGE_HIDDEN, IMAGE_OUT, PIXEL_HIDDEN, PIXEL_OUT = 128, 64, 128, 64


def width(level):
    return BASE << level


def block(cin, cout):
    return tnn.Sequential(tnn.Conv2d(cin, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.LeakyReLU(0.01),
                          tnn.Conv2d(cout, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.LeakyReLU(0.01))


class Encoder(tnn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = tnn.ModuleList([block(1 if l == 0 else width(l - 1), width(l)) for l in range(DEPTH + 1)])

    def forward(self, x):
        skips = []
        for l in range(DEPTH):
            x = self.blocks[l](x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return self.blocks[DEPTH](x), skips


class UNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.ups = tnn.ModuleList([tnn.ConvTranspose2d(width(l + 1), width(l), 2, stride=2) for l in range(DEPTH)])
        self.blocks = tnn.ModuleList([block(2 * width(l), width(l)) for l in range(DEPTH)])
        self.head = tnn.Conv2d(BASE, CLASSES, 1)

    def forward(self, x):
        h, skips = self.encoder(x)
        for l in reversed(range(DEPTH)):
            h = self.blocks[l](torch.cat([skips[l], self.ups[l](h)], dim=1))
        return self.head(h)


class Pretrain(tnn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.fc1, self.fc2 = tnn.Linear(width(DEPTH), IMAGE_HIDDEN), tnn.Linear(IMAGE_HIDDEN, IMAGE_OUT)
        self.conv1, self.conv2 = tnn.Conv2d(width(DEPTH), PIXEL_HIDDEN, 1), tnn.Conv2d(PIXEL_HIDDEN, PIXEL_OUT, 1)

    def forward(self, x):
        f, _ = self.encoder(x)
        image = F.normalize(self.fc2(F.relu(self.fc1(f.mean(dim=(2, 3))))), dim=1)
        pixel = F.normalize(self.conv2(F.relu(self.conv1(f))), dim=1)
        return image, pixel


def median_ms(fn, repeats=10):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x = torch.randn(BATCH, 1, SIZE, SIZE)
    unet, pretrain = UNet(), Pretrain()
    params = list(pretrain.parameters())
    dy = torch.full((BATCH, CLASSES, SIZE, SIZE), 1e-3)

    def unet_forward():  # with autograd recording, as in training (gcl's forward always keeps its caches)
        unet(x)

    def unet_forward_backward():
        unet.zero_grad()
        unet(x).backward(dy)

    def pretrain_k(k):
        def run():
            image, pixel = pretrain(x)
            for m in range(k):
                torch.autograd.grad([image, pixel], params, [torch.full_like(image, 1e-2), torch.full_like(pixel, 1e-3)],
                                    retain_graph=m + 1 < k)
        return run

    print(f"threads {threads}")
    print(f"unet_forward_ms {median_ms(unet_forward):.1f}")
    print(f"unet_forward_backward_ms {median_ms(unet_forward_backward):.1f}")
    print(f"pretrain_forward_1_backward_ms {median_ms(pretrain_k(1)):.1f}")
    print(f"pretrain_forward_4_backward_ms {median_ms(pretrain_k(4)):.1f}")


if __name__ == "__main__":
    main()
