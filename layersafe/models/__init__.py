"""Load a supported VLM behind its family adapter."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..safeload import check_local_folder, check_weights, first_line, load_errors, load_hint, weights_kwargs
from .base import Encoded, Generation, VLMAdapter  # noqa: F401
# Each family module registers its adapter on import (``@register``: its ``architectures`` and
# ``model_types``); a new family is one module and one line here.
from . import gemma3, idefics3, llava, llava_next, mllama, qwen2_5_vl  # noqa: F401
from .registry import ADAPTERS, MODEL_TYPES  # noqa: F401  (architecture -> class; model_type -> architecture)

TINY_ALIAS = "tiny-random-llava"  # the embedded default: built on the fly, random weights
ORGANISM_ALIAS = "organism"  # the trained model organism shipped in the package (docs/organism.md)
# Its weights are package data (layersafe/organism/weights, = layersafe.organism.weights_path()); the
# path is spelled out here so that models/ does not import the organism package, which sits above it.
ORGANISM_WEIGHTS = Path(__file__).resolve().parent.parent / "organism" / "weights"


def supported() -> str:
    return ", ".join(sorted(ADAPTERS))


def tiny_aliases() -> list[str]:
    """The built-in tiny random models: ``tiny-random-llava`` and one per other family (models/tiny_families.py)."""
    from .tiny_families import BUILDERS

    return [TINY_ALIAS, *BUILDERS]


def resolve_model_path(model: str) -> tuple[str, bool]:
    """Map a built-in alias to its cached folder (built on first use). Returns (path_or_id, is_tiny_random)."""
    if model == TINY_ALIAS:
        from .tiny import default_tiny_path

        return str(default_tiny_path()), True
    if model.startswith("tiny-random-"):
        from .tiny_families import BUILDERS, tiny_family_path

        if model in BUILDERS:
            return str(tiny_family_path(model)), True
    if model == ORGANISM_ALIAS:
        return str(ORGANISM_WEIGHTS), False
    return model, False


def _architecture(config) -> str:
    archs = getattr(config, "architectures", None) or []
    for a in archs:
        if a in ADAPTERS:
            return a
    mt = getattr(config, "model_type", None)
    if mt in MODEL_TYPES:
        return MODEL_TYPES[mt]
    found = archs[0] if archs else mt
    if getattr(config, "vision_config", None) is None and any(a.endswith("ForCausalLM") for a in archs):
        raise UserError(f"{found!r} is a text-only language model (no image encoder), so there are no encoder "
                        f"layers to scan; give a vision-language model: {supported()}")
    raise UserError(f"unsupported architecture {found!r}; layersafe supports: {supported()}")


def pick_device(device: str | None):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"bad --device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu")
    return dev


def pick_dtype(dtype: str | None, device):
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in table:
        raise UserError(f"bad --dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return table[dtype]


def load_vlm(model: str, *, dtype: str | None = "auto", device: str | None = "auto",
             device_map: str | None = None, trust_remote_code: bool = False, adapter: str | None = None,
             allow_pickle: bool = False) -> VLMAdapter:
    """Load ``model`` (HF hub id, local folder, or ``tiny-random-llava``) and its processor.
    Weights load from safetensors only unless ``allow_pickle`` (pickle files can run code)."""
    from transformers import AutoConfig, AutoProcessor
    import transformers

    path, _ = resolve_model_path(model)
    check_local_folder(path, "model")
    if Path(path).exists() and not (Path(path) / "config.json").is_file():
        raise UserError(f"{path} has no config.json; pass a folder saved with save_pretrained or a hub id")
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"cannot load model {model!r}: {first} -- give a hub id reachable from here (or already in the "
            "Hugging Face cache) or a local folder saved with save_pretrained"
        ) from None
    arch = _architecture(config)
    cls = ADAPTERS[arch]
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    model_cls = getattr(transformers, arch)
    check_weights(path, allow_pickle, "model")
    kwargs = dict(dtype=torch_dtype, trust_remote_code=trust_remote_code, **weights_kwargs(allow_pickle))
    if device_map:
        kwargs["device_map"] = device_map
    try:
        vlm = model_cls.from_pretrained(path, **kwargs)
        with _processor_context(path):
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (*load_errors(), ImportError) as e:  # corrupt pickles/safetensors too (--allow-pickle)
        first = first_line(e)
        hint = (" -- install the missing package (Qwen2.5-VL's processor needs torchvision: "
                "pip install torchvision matching your torch)") if isinstance(e, ImportError) else load_hint(first, allow_pickle, path=path)
        raise UserError(f"cannot load model or processor from {model!r}: {first}{hint}") from None
    if adapter:  # a peft adapter (e.g. from `layersafe align`), merged so the family adapter sees a plain model
        from peft import PeftModel

        from .peft_quiet import peft_wrap

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise UserError(f"--adapter {adapter}: no adapter_config.json there; give a peft adapter folder")
        check_weights(adapter, allow_pickle, "--adapter")
        try:
            with peft_wrap():  # peft's own read of a deprecated transformers attribute (models/peft_quiet.py)
                vlm = PeftModel.from_pretrained(vlm, adapter).merge_and_unload()
        except load_errors() as e:
            raise UserError(f"cannot load --adapter {adapter}: {type(e).__name__}: {first_line(e)}; "
                            "re-save the adapter with save_pretrained") from None
    if not device_map:
        vlm = vlm.to(dev)
    vlm.eval()
    return cls(vlm, processor, name=model, device=dev)


def _processor_context(path: str):
    """The tiny random Qwen2.5-VL loads without torchvision (its video processor is never used);
    every other model loads as is."""
    import contextlib

    cfg_file = Path(path) / "config.json"
    if cfg_file.is_file() and '"layersafe_tiny_random"' in cfg_file.read_text() and '"qwen2_5_vl"' in cfg_file.read_text():
        from .tiny_families import qwen_processor_without_torchvision

        return qwen_processor_without_torchvision()
    return contextlib.nullcontext()


def context_length(config) -> int | None:
    """Positions a (language) model was trained for, from its config (None when it does not say)."""
    for c in (getattr(config, "text_config", None), config):
        for k in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            v = getattr(c, k, None) if c is not None else None
            if isinstance(v, int) and v > 0:
                return v
    return None


def model_identity(adapter: VLMAdapter, model: str) -> dict:
    """What run.json records about the model: enough to tell two runs' models apart."""
    cfg = adapter.model.config
    raw = {}
    path, tiny = resolve_model_path(model)
    cfg_file = Path(path) / "config.json"
    if cfg_file.is_file():
        raw = json.loads(cfg_file.read_text())
    return {
        "name": model,
        "path": path,
        "family": adapter.family,
        "architecture": type(adapter.model).__name__,
        "commit": getattr(cfg, "_commit_hash", None),
        "tiny_random": bool(tiny or "layersafe_tiny_random" in raw),
        "organism": "layersafe_organism" in raw,
        "dtype": str(next(adapter.model.parameters()).dtype).replace("torch.", ""),
        "num_layers": adapter.num_layers,
        "default_layer": adapter.default_layer,
        "vision_feature_select_strategy": getattr(cfg, "vision_feature_select_strategy", None),
        "n_parameters": sum(p.numel() for p in adapter.model.parameters()),
    }
