"""Reference MLP: 784 -> 512 -> 256 -> 10 with ReLU, seeded random weights."""
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, sizes=(784, 512, 256, 10)):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(torch.flatten(x, 1))


def build(sizes=(784, 512, 256, 10), seed=0):
    torch.manual_seed(seed)
    return MLP(sizes).eval()


def example_input(batch=8, features=784, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, features, generator=g)
