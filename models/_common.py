"""Helpers shared by the reference models: seeded construction and BatchNorm
statistics that keep activations well-scaled.

Randomly initialised networks with eval-mode BatchNorm (running_mean 0,
running_var 1) do not normalise anything: activation scales drift layer by
layer and ResNet-50's output explodes. `calibrate_batchnorm` instead sets each
BN layer's running statistics from the activations it actually sees on random
data, then perturbs them mildly (variance x U[0.5, 1.5], small mean shift) and
randomises the affine parameters near (1, 0), so that BN folding in a compiler
is exercised with non-trivial per-channel scales and shifts while every layer's
output stays of order one.
"""
import contextlib

import torch
from torch import nn


@contextlib.contextmanager
def seeded(seed):
    """Runs the block with torch's CPU RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def kaiming_init(model):
    """torchvision's initialisation: Kaiming-normal (fan_out, ReLU) convolutions, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@torch.no_grad()
def calibrate_batchnorm(model, calibration_input, residual_bns=()):
    """Sets every BatchNorm's running statistics from its input on `calibration_input`
    (one eval-mode forward pass, layers calibrated in execution order so each one
    sees the perturbed statistics of those before it), then perturbs them mildly.
    `residual_bns`, the last BatchNorm of each residual branch, get small gains
    (U[0.1, 0.3]), as in trained networks (and torchvision's zero_init_residual):
    the identity path dominates, so the output is not rounding noise accumulated
    over fifty layers of branches at full gain, and BF16 inference stays as close
    to FP32 as it is for trained weights. Uses torch's global RNG: call inside `seeded`."""
    small = {id(bn) for bn in residual_bns}
    def pre_hook(bn, args):
        x = args[0]
        dims = [d for d in range(x.dim()) if d != 1]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        c = mean.numel()
        bn.running_var.copy_(var * torch.empty(c).uniform_(0.5, 1.5) + bn.eps)
        bn.running_mean.copy_(mean + 0.1 * var.sqrt() * torch.randn(c))
        bn.weight.copy_(torch.empty(c).uniform_(*((0.1, 0.3) if id(bn) in small else (0.8, 1.2))))
        bn.bias.copy_(0.1 * torch.randn(c))

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    handles = [bn.register_forward_pre_hook(pre_hook) for bn in bns]
    try:
        model.eval()(calibration_input)
    finally:
        for h in handles:
            h.remove()
    return model


def random_images(batch, height, width, seed):
    """(x,): float32 [batch, 3, height, width], standard normal like normalised images."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, height, width, generator=g),)


@torch.no_grad()
def init_transformer(model, std=0.02, weight_scale=lambda name: 1.0):
    """BERT/GPT-2 initialisation: N(0, std * weight_scale(module name)) Linear and Embedding
    weights; biases N(0, std) and LayerNorm (1 + N(0, std), N(0, std)) rather than exactly
    0 and 1 so that a compiler dropping them is caught. Call inside `seeded`."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std * weight_scale(name))
        if isinstance(m, nn.LayerNorm):
            m.weight.normal_(1.0, std)
        if isinstance(m, (nn.Linear, nn.LayerNorm)):
            nn.init.normal_(m.bias, 0.0, std)
    return model
