"""Reference ResNet-50 (He et al. 2016), architecturally identical to
torchvision.models.resnet50 (Bottleneck v1.5: the stride sits in the 3x3 conv;
same module names, so torchvision state dicts load): 224x224 RGB input, 1000
classes. Seeded random weights: Kaiming convolutions and BatchNorm statistics
calibrated on random images (see _common.py) so activations stay well-scaled.

BasicBlock and ResNet also serve ResNet-18/34 backbones (pose_resnet.py).
"""
import torch
from torch import nn

try:  # part of the `models` package
    from ._common import calibrate_batchnorm, kaiming_init, random_images, seeded
except ImportError:  # models/ itself on sys.path (tests/python/conftest.py)
    from _common import calibrate_batchnorm, kaiming_init, random_images, seeded


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride: v1.5), 1x1 expand by 4 (ResNet-50/101/152)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


# depth -> (block, blocks per stage), as in torchvision.
DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    def __init__(self, depth=50, num_classes=1000):
        super().__init__()
        block, layers = DEPTHS[depth]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        """The backbone: stem and the four stages, [B, 3, H, W] -> [B, C, H/32, W/32]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def init_weights(model):
    """Kaiming convolutions, torch-default Linear, BN calibrated on a small random batch
    (2x3x96x96: per-channel statistics hardly depend on the resolution). Call inside `seeded`."""
    kaiming_init(model)
    residual = [m.bn3 if isinstance(m, Bottleneck) else m.bn2 for m in model.modules()
                if isinstance(m, (Bottleneck, BasicBlock))]
    return calibrate_batchnorm(model, torch.randn(2, 3, 96, 96), residual)


def build(seed=0, depth=50):
    """The eval-mode model with seeded random weights; depth 18/34/50/101/152."""
    with seeded(seed):
        return init_weights(ResNet(depth))


def example_inputs(batch=1, seed=0, size=224):
    """(x,): float32 [batch, 3, size, size], standard normal (as normalised images)."""
    return random_images(batch, size, size, seed)
