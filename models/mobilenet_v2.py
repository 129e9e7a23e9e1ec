"""Reference MobileNetV2 (Sandler et al. 2018), architecturally identical to
torchvision.models.mobilenet_v2 (same module names): inverted residual blocks
with 1x1 expansion, 3x3 depthwise conv and linear 1x1 projection, ReLU6,
224x224 RGB input, 1000 classes. Seeded random weights: Kaiming convolutions,
N(0, 0.01) classifier as in torchvision, and BatchNorm statistics calibrated on
random images (see _common.py).
"""
import torch
from torch import nn

try:  # part of the `models` package
    from ._common import calibrate_batchnorm, kaiming_init, random_images, seeded
except ImportError:  # models/ itself on sys.path (tests/python/conftest.py)
    from _common import calibrate_batchnorm, kaiming_init, random_images, seeded


def _make_divisible(v, divisor=8):
    """Rounds channel counts to a multiple of `divisor`, never down by more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU(nn.Sequential):
    """Conv (no bias, 'same' padding) + BatchNorm + ReLU6; torchvision's Conv2dNormActivation."""

    def __init__(self, in_planes, out_planes, kernel_size=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ConvBNReLU(inp, hidden_dim, kernel_size=1)] if expand_ratio != 1 else []
        layers += [
            ConvBNReLU(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),  # depthwise
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),  # linear projection
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # expansion t, output channels c, repeats n, first stride s
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        input_channel = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        features = [ConvBNReLU(3, input_channel, stride=2)]
        for t, c, n, s in self.SETTING:
            output_channel = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(ConvBNReLU(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def build(seed=0):
    """The eval-mode model with seeded random weights."""
    with seeded(seed):
        model = MobileNetV2()
        kaiming_init(model)
        fc = model.classifier[1]
        nn.init.normal_(fc.weight, 0, 0.01)
        nn.init.zeros_(fc.bias)
        residual = [m.conv[-1] for m in model.modules() if isinstance(m, InvertedResidual) and m.use_res_connect]
        return calibrate_batchnorm(model, torch.randn(2, 3, 96, 96), residual)


def example_inputs(batch=1, seed=0, size=224):
    """(x,): float32 [batch, 3, size, size], standard normal (as normalised images)."""
    return random_images(batch, size, size, seed)
