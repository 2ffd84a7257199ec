"""Inference backends with one interface: ``backend(x) -> logits`` on a normalised float batch
(N, C, S, S), and ``backend.meta`` (labels, preprocess, temperature, model name).

``open_backend(path)`` picks by extension: ``.onnx`` -> onnxruntime, anything else -> torch.
An ONNX file written by ``resemotenet export`` describes itself; one from elsewhere needs its
labels and preprocessing passed in (``labels=``, ``size=``, ``channels=``, ``mean=``, ``std=``,
the ``--labels/--size`` style options), and the error says which of them is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..card import MetaView, ModelCard, complete_meta, meta_from_props
from ..utils.errors import CheckpointError, ConfigError, DataError, import_extra
from ..utils.runtime import native_bf16

META_KEY = "resemotenet"  # ONNX metadata_props key holding the same JSON as a checkpoint's meta


class _Backend:
    """What every backend offers beside ``backend(x) -> logits``: its model card, the card's
    ``transforms()``, and ``predict(crops)`` (calibrated probabilities for uint8 face crops)."""

    card: ModelCard | None

    @property
    def meta(self) -> Mapping[str, Any]:
        """The card's metadata as a read-only dict (older spelling; read ``card`` instead)."""
        return self.card.view() if self.card is not None else MetaView()

    def transforms(self) -> Any:
        if self.card is None:
            raise CheckpointError("this model has no model card (labels, preprocessing)")
        return self.card.transforms()

    def predict(self, crops: Any) -> np.ndarray:
        from ..metrics import softmax

        logits = self(self.transforms()(crops))  # type: ignore[operator]
        return softmax(logits.float().numpy(), self.card.temperature).astype(np.float32)  # type: ignore[union-attr]


SHORTCUTS = ("labels", "size", "channels", "mean", "std")  # metadata given by hand for a bare ONNX file


class _FileBackend(_Backend):
    """Shared by the engines that run an exported ONNX file: metadata from the file, completed by
    ``overrides`` (a partial meta dict) and the keyword shortcuts (``SHORTCUTS``), which win."""

    def _describe(
        self,
        path: Path,
        props: dict[str, str],
        overrides: dict[str, Any] | None,
        shortcuts: dict[str, Any],
        outputs: int | None,
    ) -> None:
        unknown = sorted(set(shortcuts) - set(SHORTCUTS))
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; valid: {', '.join(SHORTCUTS)}")
        meta = _file_meta(path, props)
        meta.update(overrides or {})
        given = {k: shortcuts.get(k) for k in SHORTCUTS}
        self.card = ModelCard.from_meta(_complete(path, meta, self.input_shape, **given), str(path))
        if outputs is not None and outputs != len(self.card.labels):
            raise CheckpointError(
                f"{path}: the model has {outputs} outputs but {len(self.card.labels)} "
                f"labels were given ({list(self.card.labels)})"
            )


class TorchBackend(_Backend):
    """Eager PyTorch. The model runs in eval mode, in channels_last (oneDNN's fastest convolution
    layout on CPU, see benchmarks/inference.py) and, with ``fuse=True``, from a copy whose
    batch norms are folded into the convolutions before them (same outputs to ~1e-6, fewer
    passes over memory: see benchmarks/predict_speed.py). A model torch.fx cannot trace is used
    unfused."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", fuse: bool = True):
        from ..utils.runtime import resolve_device

        self.device = resolve_device(device)
        card = getattr(model, "card", None)
        if card is None and getattr(model, "pretrained_cfg", None):  # a module given its metadata by hand
            card = ModelCard.from_meta(model.pretrained_cfg, "model")
        self.card: ModelCard | None = card
        model = model.eval()
        if fuse:
            model = _fuse_conv_bn(model)
        self.model = model.to(self.device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        return self.model(x).float().cpu()


class OnnxBackend(_FileBackend):
    """onnxruntime CPU session; labels and preprocessing come from the file's metadata, or from
    explicit overrides when it has none (``overrides`` is a partial meta dict; the keyword
    arguments are the command-line style shortcuts and win over both)."""

    def __init__(
        self, path: str | Path, overrides: dict[str, Any] | None = None, threads: int | None = None, **shortcuts: Any
    ):
        from ..utils.ort import ort_session

        path = Path(path)
        self.session = ort_session(path, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        # (C, S, S) when the file fixes them, else None per axis
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape[1:])
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        out_dim = self.session.get_outputs()[0].shape[-1]
        self._describe(
            path,
            self.session.get_modelmeta().custom_metadata_map,
            overrides,
            shortcuts,
            out_dim if isinstance(out_dim, int) else None,
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, self.input_shape)
        arr = x.detach().cpu().numpy().astype("float32", copy=False)
        return _by_fixed_batch(arr, self.fixed_batch, lambda a: self.session.run(None, {self.input_name: a})[0])


ENGINES = ("auto", "onnxruntime", "openvino")
ENGINE_ENV = "RESEMOTENET_ONNX_ENGINE"  # the engine for .onnx files when the caller names none


class OpenVinoBackend(_FileBackend):
    """OpenVINO CPU runtime on the same exported ONNX file, behind the same interface as
    ``OnnxBackend`` (same metadata, same overrides, same shape check). ``precision`` is 'fp32'
    (the default everywhere, so results do not depend on the machine) or 'bf16', accepted only
    where OpenVINO reports native bf16 (AVX512_BF16 / AMX); ``hint`` is OpenVINO's performance
    hint, LATENCY (one request at a time, as the predictor runs) or THROUGHPUT."""

    def __init__(
        self,
        path: str | Path,
        overrides: dict[str, Any] | None = None,
        threads: int | None = None,
        *,
        precision: str = "fp32",
        hint: str = "LATENCY",
        **shortcuts: Any,
    ):
        ov = import_extra("openvino", "openvino")
        import threading

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX file not found")
        core = ov.Core()
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if precision == "bf16" and not native_bf16(core):
            raise ConfigError(
                "precision 'bf16' needs a CPU with native bf16 (AVX512_BF16 or AMX); "
                f"OpenVINO reports {core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}"
            )
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise CheckpointError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
        pshape = model.inputs[0].get_partial_shape()
        self.input_shape = tuple(d.get_length() if d.is_static else None for d in list(pshape)[1:])
        self.fixed_batch = pshape[0].get_length() if pshape[0].is_static else None
        out_dim = model.outputs[0].get_partial_shape()[-1]
        self._describe(
            path, _ov_props(model), overrides, shortcuts, out_dim.get_length() if out_dim.is_static else None
        )
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else "bf16",
            "PERFORMANCE_HINT": hint.upper(),
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise CheckpointError(f"{path}: OpenVINO could not compile it ({str(exc).splitlines()[0][:200]})") from exc
        self.precision = precision
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request; serve may call from several threads

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x, self.input_shape)
        arr = x.detach().cpu().numpy().astype("float32", copy=False)

        def run(a: np.ndarray) -> np.ndarray:
            with self._lock:
                out = self._request.infer({0: a})
                return next(iter(out.values())).copy()  # the request reuses its output buffer

        return _by_fixed_batch(arr, self.fixed_batch, run)


class AutoBackend(_Backend):
    """Both engines on one ONNX file, each call sent to the one measured faster on this CPU for
    its batch size: a single face, or a batch (timed at ``probe_batch``). The two are timed once,
    when the backend opens (a warm-up and the median of ``probe_runs`` calls each, on a constant
    input of the model's shape); ``choice`` says what was picked and ``timings`` the medians
    (seconds). The CPUs measured so far differ (README: onnxruntime ahead at batch 1 on some,
    OpenVINO ahead at batch 64 on all), so the choice is measured, not assumed."""

    def __init__(
        self,
        path: str | Path,
        overrides: dict[str, Any] | None = None,
        threads: int | None = None,
        *,
        probe_batch: int = 32,
        probe_runs: int = 7,
        **shortcuts: Any,
    ):
        first = OnnxBackend(path, overrides, threads, **shortcuts)
        self.engines: dict[str, OnnxBackend | OpenVinoBackend] = {"onnxruntime": first}
        try:
            self.engines["openvino"] = OpenVinoBackend(path, overrides, threads, **shortcuts)
        except (CheckpointError, RuntimeError, OSError):
            pass  # a graph OpenVINO cannot compile: onnxruntime alone, which opened it
        self.card, self.input_shape = first.card, first.input_shape
        spec = self.card.preprocess
        self.timings: dict[str, dict[str, float]] = {}
        self.choice: dict[str, str] = {}
        for key, n in (("single", 1), ("batch", max(2, probe_batch))):
            x = torch.zeros(n, spec.channels, spec.size, spec.size)
            times = {}
            for name, be in self.engines.items():
                try:
                    times[name] = _median_call(be, x, probe_runs)
                except Exception:  # an engine that cannot run this batch is not a candidate
                    continue
            self.timings[key] = times
            self.choice[key] = min(times, key=times.__getitem__) if times else "onnxruntime"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.engines[self.choice["single" if x.shape[0] == 1 else "batch"]](x)


def _median_call(backend: Any, x: torch.Tensor, runs: int) -> float:
    import time

    backend(x)  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        backend(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _ov_props(model: Any) -> dict[str, str]:
    """ONNX ``metadata_props`` as OpenVINO keeps them: the model's rt_info under 'framework'."""
    try:
        framework = model.get_rt_info()["framework"]
        return {k: v.astype(str) for k, v in framework.items()}
    except (KeyError, RuntimeError, TypeError, AttributeError):
        return {}


def _by_fixed_batch(arr: np.ndarray, fixed: int | None, run: Any) -> torch.Tensor:
    """``run`` on the whole batch, or, for a file whose batch axis is fixed at 1 (common in files
    exported elsewhere), one face at a time; any other fixed batch must be matched exactly."""
    if fixed is None or fixed == len(arr):
        return torch.from_numpy(np.asarray(run(arr)))
    if fixed == 1:
        return torch.from_numpy(np.concatenate([np.asarray(run(arr[i : i + 1])) for i in range(len(arr))]))
    raise DataError(f"the ONNX model takes batches of exactly {fixed}, got {len(arr)}")


def _check_batch(x: torch.Tensor, want: tuple[int | None, ...]) -> None:
    if x.dim() != 4 or any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
        raise DataError(
            f"input batch is {tuple(x.shape)}, the ONNX model expects (N, "
            f"{', '.join('?' if w is None else str(w) for w in want)})"
        )


def open_onnx(path: str | Path, engine: str | None = None, **kw: Any) -> OnnxBackend | OpenVinoBackend | AutoBackend:
    """An ONNX file on the named engine. ``engine`` None reads ``$RESEMOTENET_ONNX_ENGINE`` and
    falls back to 'auto': with both onnxruntime and OpenVINO installed, an ``AutoBackend`` (each
    call on the engine measured faster here for its batch size); with one of them, that one.
    ``kw`` go to the backend (``precision``/``hint`` are OpenVINO's only; bf16 or a THROUGHPUT
    hint makes 'auto' take OpenVINO alone)."""
    import importlib.util
    import os

    engine = (engine or os.environ.get(ENGINE_ENV) or "auto").lower()
    if engine not in ENGINES:
        raise ConfigError(f"unknown ONNX engine {engine!r}; valid: {', '.join(ENGINES)}")
    if engine == "auto":
        have_ort = importlib.util.find_spec("onnxruntime") is not None
        have_ov = importlib.util.find_spec("openvino") is not None
        ov_only = kw.get("precision") not in (None, "fp32") or kw.get("hint") not in (None, "LATENCY")
        if have_ort and have_ov and not ov_only:
            return AutoBackend(path, **{k: v for k, v in kw.items() if k not in ("precision", "hint")})
        engine = "openvino" if ov_only or not have_ort else "onnxruntime"
    if engine == "openvino":
        return OpenVinoBackend(path, **kw)
    for name in ("precision", "hint"):
        if kw.pop(name, None) not in (None, "fp32", "LATENCY"):
            raise ConfigError(f"{name} applies to the openvino engine only")
    return OnnxBackend(path, **kw)


def _fuse_conv_bn(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with each BatchNorm that follows a convolution folded
    into it, by torch's own fx pass (``torch.fx.experimental.optimization.fuse``; same outputs as
    the unfused model to ~1e-6); the model itself when torch.fx cannot trace it."""
    import warnings

    with warnings.catch_warnings():  # the module's own imports warn about torch.jit deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.fx.experimental.optimization import fuse
    from ..models.layers import live_convs, plain_convs

    copy = deepcopy(model)
    names = plain_convs(copy)  # fx fuses exact nn.Conv2d types; the live-tap skipping comes back after
    try:
        return live_convs(fuse(copy, inplace=True), names)
    except Exception:  # data-dependent control flow: keep the eager model
        return model


def _file_meta(path: Path, props: dict[str, str]) -> dict[str, Any]:
    return meta_from_props(props, str(path), META_KEY)


def _complete(path: Path, meta: dict[str, Any], shape: tuple[int | None, ...], **shortcuts: Any) -> dict[str, Any]:
    return complete_meta(meta, str(path), path.stem, shape, **shortcuts)


def open_backend(
    model: str | Path | nn.Module | None = None, **kw: Any
) -> TorchBackend | OnnxBackend | OpenVinoBackend | AutoBackend:
    """A backend for a checkpoint path, an ONNX path (by extension; ``engine`` = 'auto',
    'onnxruntime' or 'openvino', see ``open_onnx``; the other ``kw`` go to that backend), a loaded
    module, or None / a shipped name ('default', 'fast'). ``device`` applies to torch only."""
    device = kw.pop("device", "cpu")
    fuse = kw.pop("fuse", True)
    engine = kw.pop("engine", None)
    if isinstance(model, nn.Module):
        return TorchBackend(model, device, fuse)
    if model is not None and str(model).lower().endswith(".onnx"):
        return open_onnx(model, engine, **kw)
    from ..models import load_model

    return TorchBackend(load_model(model), device, fuse)


def read_card(model: str | Path | None = None) -> ModelCard:
    """The model card of a shipped name, a checkpoint, a safetensors or an ONNX file, read from
    the file's metadata alone: no inference session is opened, no model is built."""
    if model is not None and str(model).lower().endswith(".onnx"):
        path = Path(model)
        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX file not found")
        meta = _complete(path, _file_meta(path, _onnx_props(path)), (None, None, None), **dict.fromkeys(SHORTCUTS))
        return ModelCard.from_meta(meta, str(path))
    from ..models.checkpoint import load_checkpoint

    return load_checkpoint("default" if model is None else model).card


open_card = read_card  # the older name


def _onnx_props(path: Path) -> dict[str, str]:
    """An ONNX file's ``metadata_props`` from its protobuf (``onnx`` when installed), else from
    onnxruntime's reader (which does not run the graph either)."""
    try:
        import onnx
    except ImportError:
        from ..utils.ort import ort_session

        return dict(ort_session(path, 1).get_modelmeta().custom_metadata_map)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a damaged file
        raise CheckpointError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from exc
    return {p.key: p.value for p in proto.metadata_props}
