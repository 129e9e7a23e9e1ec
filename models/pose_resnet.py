"""Reference SimpleBaseline pose estimation network (Xiao et al. 2018, "Simple
Baselines for Human Pose Estimation and Tracking", PoseResNet): a ResNet
backbone without avgpool/fc, three ConvTranspose2d(256, k=4, s=2, p=1,
output_padding=0, no bias) + BatchNorm + ReLU upsampling layers and a final
1x1 conv to 17 COCO joint heatmaps. Input [B, 3, 256, 192], output
[B, 17, 64, 48] (a quarter of the input resolution when it divides by 32).
Depth 50 by default; 18 (BasicBlock) makes a cheap test version. Seeded random
weights: Kaiming convolutions and deconvolutions, a unit-gain N(0, 1/256) final
layer, BatchNorm statistics calibrated on random images (see _common.py).
"""
from torch import nn

try:  # part of the `models` package
    from ._common import random_images, seeded
    from .resnet50 import ResNet, init_weights
except ImportError:  # models/ itself on sys.path (tests/python/conftest.py)
    from _common import random_images, seeded
    from resnet50 import ResNet, init_weights

NUM_JOINTS = 17


class PoseResNet(ResNet):
    """Module names follow the original code: conv1 ... layer4, deconv_layers, final_layer."""

    def __init__(self, depth=50, num_joints=NUM_JOINTS, deconv_filters=(256, 256, 256)):
        super().__init__(depth)
        del self.avgpool, self.fc
        layers = []
        for planes in deconv_filters:
            layers += [nn.ConvTranspose2d(self.inplanes, planes, kernel_size=4, stride=2, padding=1,
                                          output_padding=0, bias=False),
                       nn.BatchNorm2d(planes),
                       nn.ReLU(inplace=True)]
            self.inplanes = planes
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(self.inplanes, num_joints, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        return self.final_layer(self.deconv_layers(self.features(x)))


def build(seed=0, depth=50):
    """The eval-mode model with seeded random weights; depth 18/34/50/101/152."""
    with seeded(seed):
        model = init_weights(PoseResNet(depth))
        # Unit-gain heatmap layer (Kaiming fan_out would scale its 17 outputs up ~4x).
        nn.init.normal_(model.final_layer.weight, 0.0, model.final_layer.in_channels ** -0.5)
        return model


def example_inputs(batch=1, seed=0, height=256, width=192):
    """(x,): float32 [batch, 3, height, width], standard normal (as normalised images)."""
    return random_images(batch, height, width, seed)
