"""Shared vision pieces for the image rooms (cka, deepfeature, fmt).

- `datasets`: image splits from scikit-learn's bundled digits (the built-in default, no
  download) or from the standard local files of MNIST/Fashion-MNIST, CIFAR-10/100 and SVHN.
- `zoo`: width-scalable LeNet-5, ResNet-20, VGG-16-BN and PreAct-ResNet-18 classifiers that all
  expose `.features(x)` (penultimate representation) and `.classifier` (last linear).
- `train`: a plain classifier training loop with progress, checkpoints and resumption.
- `models`: the `small_cnn` entry of the `model` group (light: no torch at import).
- `featuremaps`: forward-hook access to conv feature maps (owned by the deepfeature/fmt room).

Nothing here imports torch at package import time, so `celine ls` stays fast.
"""

from celine.vision import models as _models  # noqa: E402,F401  (registers small_cnn)
