"""``layersafe trim``: export an early-exit checkpoint that plain transformers loads (docs/trim.md).

The image encoder keeps blocks 1..L (layer numbering of docs/design.md §3.1), the config says so and
the dropped blocks' weights are not saved, and the family's own settings make the language model read
exactly the layer-L features that ``layersafe scan --layers L`` fed it (docs/design.md §4.2):

* LLaVA, LLaVA-NeXT: ``vision_config.num_hidden_layers = L``, ``vision_feature_layer = -1``
  (``hidden_states[-1]`` of an L-block CLIP is ``h_L``; CLIP applies no norm to patch tokens);
* Gemma 3, Idefics3: ``vision_config.num_hidden_layers = L`` (SigLIP's stock output is
  ``post_layernorm(h_L)``, which is what the scan projects at every layer);
* Qwen2.5-VL: ``vision_config.depth = L`` (the merger then reads ``h_L`` and restores image order),
  ``fullatt_block_indexes`` limited to the kept blocks;
* Mllama: ``vision_config.num_hidden_layers = L`` (local stack) and every projector tap deeper than
  ``L`` pointed at block ``L`` (``intermediate_layers_indices``), which is the scan's early exit
  (``layernorm_post`` -> post-tile embedding -> global stack, deeper taps take ``h_L``).

A repair adapter is merged first (peft ``merge_and_unload``, as ``scan --adapter`` merges it). The
command then reloads the saved folder with the plain transformers class and checks that its stock image
features equal the layer-L features of the full model on a probe image before it moves the folder into
place; ``OUT/trim.json`` records that check and what the trim saves (encoder parameters, analytic
encoder FLOPs, measured encoder latency, full vs trimmed).

This module imports no torch at import time (``layersafe trim --help`` stays fast).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import PICKLE_HELP, DType, check_fields, opt
from .errors import UserError

TRIM_JSON = "trim.json"
TRIM_MARKER = "layersafe_trim"  # written into the trimmed config.json: what it was cut from
PROBE_IMAGE = "skimage:coffee"

# family -> the vision config key holding the encoder depth
_DEPTH_KEY = {"llava": "num_hidden_layers", "llava_next": "num_hidden_layers", "gemma3": "num_hidden_layers",
              "idefics3": "num_hidden_layers", "qwen2_5_vl": "depth", "mllama": "num_hidden_layers"}
# inputs of a processor output that are text, not pixels
_TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids", "cross_attention_mask")


@dataclass
class TrimConfig:
    """The options of ``layersafe trim`` (layersafe.config)."""

    model: str | None = opt(None, "HF hub id or local folder of a supported VLM, or organism / tiny-random-llava")
    layer: str | None = opt(None, "exit layer L to keep (1..num_layers; 'default' or a negative N count as in scan "
                            "--layers): the encoder keeps blocks 1..L and the LM reads layer L")
    out: str | None = opt(None, "output folder for the trimmed checkpoint (must be empty or not exist)")
    adapter: str | None = opt(None, "peft adapter folder (e.g. `layersafe align` OUT/adapter) merged into the weights "
                              "before trimming, as `scan --adapter` merges it")
    dtype: DType = opt("auto", "dtype of the merge and the saved weights: auto (the checkpoint's own dtype, else "
                       "float32), float32, bfloat16, float16")
    device: str = opt("cpu", "device for merging, the check and the latency measurement: cpu, cuda, cuda:N, auto")
    latency_repeats: int = opt(10, "encoder forwards timed per model (full, trimmed) after 2 warm-up runs; "
                               "0 skips the latency measurement", min=0)
    trust_remote_code: bool = opt(False, "allow model code from the hub (off by default)")
    allow_pickle: bool = opt(False, PICKLE_HELP)

    def validate(self) -> None:
        check_fields(self)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def add_parser(sub) -> None:
    from .config import add_options

    p = sub.add_parser(
        "trim", help="export an early-exit checkpoint: encoder blocks 1..L only, adapter merged, loads in transformers",
        description="Cut the image encoder after block L and save a standard Hugging Face checkpoint (config, "
                    "safetensors without the dropped blocks, processor and chat template) whose language model "
                    "reads exactly the layer-L features that `layersafe scan --layers L` fed it; a --adapter is "
                    "merged first. Verifies the saved folder against the full model, and prints and writes to "
                    "OUT/trim.json the encoder parameters, FLOPs per image and latency, full vs trimmed. "
                    "docs/trim.md.")
    add_options(p, TrimConfig, required=("model", "layer", "out"))
    p.set_defaults(func=cmd_trim)


def cmd_trim(a) -> int:
    from .config import config_from_args

    cfg = config_from_args(TrimConfig, a, required=("model", "layer", "out"))
    info = trim_model(cfg.model, cfg.layer, cfg.out, adapter=cfg.adapter, dtype=cfg.dtype, device=cfg.device,
                      latency_repeats=cfg.latency_repeats, trust_remote_code=cfg.trust_remote_code,
                      allow_pickle=cfg.allow_pickle, log=lambda m: print(m, file=sys.stderr))
    print(format_savings(info))
    print(f"trimmed checkpoint: {Path(cfg.out).resolve()}/ (config.json, model.safetensors, processor, {TRIM_JSON})")
    return 0


def format_savings(info: dict) -> str:
    """The savings table the command prints (also in docs/trim.md)."""
    s = info["savings"]
    lines = [f"{info['family']} trimmed at layer {info['layer']} of {info['num_layers']} "
             f"(keeps encoder blocks 1..{info['layer']}); check: max |diff| of layer-{info['layer']} features "
             f"{info['check']['max_abs_diff']:.2e} (passed)",
             f"{'':<28}{'full':>14}{'trimmed':>14}{'saved':>9}"]

    def row(name, full, trimmed, fmt):
        saved = 1 - trimmed / full if full else float("nan")
        lines.append(f"{name:<28}{fmt(full):>14}{fmt(trimmed):>14}{saved:>8.1%}")

    row("encoder parameters", s["encoder_params"]["full"], s["encoder_params"]["trimmed"], lambda v: f"{v:,}")
    row("model parameters", s["model_params"]["full"], s["model_params"]["trimmed"], lambda v: f"{v:,}")
    f = s["encoder_flops"]
    row(f"encoder GFLOPs per {f['unit'].split(' (')[0]}", f["full"] / 1e9, f["trimmed"] / 1e9, lambda v: f"{v:.4g}")
    lat = s.get("encoder_latency_ms")
    if lat:
        row(f"encoder latency ms ({lat['device']}, median)", lat["full"], lat["trimmed"], lambda v: f"{v:.3g}")
        row(f"encoder latency ms ({lat['device']}, min)", lat["full_min"], lat["trimmed_min"], lambda v: f"{v:.3g}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The library function
# --------------------------------------------------------------------------------------------

def trim_model(model: str, layer, out, adapter: str | None = None, *, dtype: str = "auto", device: str = "cpu",
               latency_repeats: int = 10, trust_remote_code: bool = False, allow_pickle: bool = False,
               log=print) -> dict:
    """Trim ``model`` at ``layer`` (``adapter`` merged first) into the empty or missing folder ``out``;
    returns what ``out/trim.json`` holds. Every user error is a :class:`UserError` raised before
    anything is written."""
    cfg = TrimConfig(model=model, layer=str(layer), out=str(out), adapter=adapter, dtype=dtype, device=device,
                     latency_repeats=latency_repeats, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    cfg.validate()
    out = Path(out)
    _check_out(out)
    from .models import load_vlm, resolve_model_path

    path, _ = resolve_model_path(model)
    torch_dtype = _saved_dtype(path, dtype, trust_remote_code)
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise UserError(f"--adapter {adapter}: no adapter_config.json there; give a peft adapter folder")
    _precheck_layer(path, cfg.layer, trust_remote_code)  # a bad --layer fails before the weights load
    vlm = load_vlm(model, dtype=torch_dtype, device=device, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    family = vlm.family
    if family not in _DEPTH_KEY:
        raise UserError(f"layersafe trim does not support the {family} family yet (its layer-L exit cannot be written "
                        f"in its stock config); supported: {', '.join(sorted(_DEPTH_KEY))} (docs/families.md)")
    L = _exit_layer(cfg.layer, vlm.num_layers, vlm.default_layer)
    if adapter:
        _merge_adapter(vlm, adapter, allow_pickle)
    import torch

    torch.manual_seed(0)
    probe_items, stock_inputs = _probe(vlm)
    with torch.no_grad():
        reference = _flat(vlm.features(vlm.encode([probe_items], [L]), L, [0]))
    full_params = _count(_encoder_module(vlm.model, family), family)
    full_model_params = sum(p.numel() for p in vlm.model.parameters())
    flops = encoder_flops(vlm.model.config, family, L)
    full_cfg = vlm.model.config.to_dict()

    tmp = out.with_name(f".{out.name}.trim-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        cut = EncoderCut(vlm.model, family, L)
        trimmed_params = _count(_encoder_module(vlm.model, family), family)
        trimmed_model_params = sum(p.numel() for p in vlm.model.parameters())
        lat = _latency(vlm.model, family, stock_inputs, latency_repeats, cut)
        log(f"saving the trimmed checkpoint (encoder blocks 1..{L}) ...")
        tmp.mkdir(parents=True)
        vlm.model.save_pretrained(tmp)
        _save_processor(path, tmp, trust_remote_code)
        model_cls = type(vlm.model)
        model_dtype = next(vlm.model.parameters()).dtype
        dev = vlm.device
        del vlm, cut
        _mark_config(tmp, model=model, layer=L, adapter=adapter, family=family, full_cfg=full_cfg)
        # The proof in the command itself: the saved folder, loaded as plain transformers loads it,
        # gives the full model's layer-L features (the scan's) on the probe image.
        trimmed = model_cls.from_pretrained(tmp, dtype=model_dtype, use_safetensors=True).to(dev).eval()
        with torch.no_grad():
            got = _flat(_stock_features(trimmed, family, stock_inputs))
        diff = float((got.float() - reference.float().to(got.device)).abs().max()) if got.shape == reference.shape else math.inf
        scale = float(reference.float().abs().max())
        tol = (1e-4 if model_dtype == torch.float32 else 3e-2) * max(1.0, scale)
        if not diff <= tol:
            raise RuntimeError(f"the trimmed checkpoint's image features differ from the layer-{L} features of the full "
                               f"model (max |diff| {diff:.3g}, shapes {tuple(got.shape)} vs {tuple(reference.shape)})")
        loaded_params = _count(_encoder_module(trimmed, family), family)
        if loaded_params != trimmed_params:
            raise RuntimeError(f"the saved encoder has {loaded_params} parameters, the cut one {trimmed_params}")
        info = {
            "model": model, "path": str(path), "family": family, "architecture": model_cls.__name__,
            "layer": L, "num_layers": full_cfg_depth(full_cfg, family), "adapter": adapter,
            "dtype": str(model_dtype).replace("torch.", ""),
            "config_changes": _config_changes(full_cfg, trimmed.config.to_dict()),
            "check": {"probe_image": PROBE_IMAGE, "max_abs_diff": diff, "tolerance": tol, "passed": True,
                      "what": "stock image features of the saved folder (plain transformers) vs the full model's "
                              "layer-L features as layersafe scan computes them"},
            "savings": {
                "encoder_params": {"full": full_params, "trimmed": trimmed_params},
                "model_params": {"full": full_model_params, "trimmed": trimmed_model_params},
                "encoder_flops": flops,
            },
        }
        if lat is not None:
            info["savings"]["encoder_latency_ms"] = {
                **lat, "device": str(dev), "batch": 1, "repeats": latency_repeats,
                "stat": "median (and min) of interleaved runs after 2 warm-up runs each",
                "what": "stock image-feature path (vision tower + projector) on the probe image"}
        from .versions import package_versions

        info["versions"] = package_versions()
        (tmp / TRIM_JSON).write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def full_cfg_depth(cfg: dict, family: str) -> int:
    return int(cfg["vision_config"][_DEPTH_KEY[family]])


# --------------------------------------------------------------------------------------------
# Checks before anything is written
# --------------------------------------------------------------------------------------------

def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out} is not empty; choose a new folder (trim never overwrites)")


def _exit_layer(spec: str, num_layers: int, default_layer: int) -> int:
    from .layers import parse_layers

    s = str(spec).strip()
    if s.lstrip("-").isdigit() and int(s) > num_layers:
        raise UserError(f"--layer {s} is beyond the encoder ({num_layers} blocks); give 1..{num_layers}")
    layers = parse_layers(s, num_layers, default_layer)
    if len(layers) != 1:
        raise UserError(f"--layer {s}: give one exit layer (1..{num_layers}), not {len(layers)}")
    if layers[0] == 0:
        raise UserError(f"--layer {s} keeps no encoder block (layer 0 = patch embeddings); give 1..{num_layers}")
    return layers[0]


def _precheck_layer(path: str, spec: str, trust_remote_code: bool) -> None:
    """The --layer check from the config alone (load_vlm reports a bad model or architecture itself)."""
    try:
        from transformers import AutoConfig

        from .models import ADAPTERS, _architecture

        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        family = ADAPTERS[_architecture(config)].family
        n = int(getattr(config.vision_config, _DEPTH_KEY[family]))
        default = n
        if family in ("llava", "llava_next") and isinstance(config.vision_feature_layer, int):
            v = config.vision_feature_layer
            default = v if v >= 0 else n + 1 + v
    except UserError:
        raise
    except Exception:  # noqa: BLE001 (checked again, with load_vlm's messages, once the model loads)
        return
    _exit_layer(spec, n, default)


def _saved_dtype(path: str, dtype: str, trust_remote_code: bool) -> str:
    """``auto`` = the dtype the checkpoint was saved in (a bf16 model stays bf16), else float32."""
    if dtype != "auto":
        return dtype
    cfg_file = Path(path) / "config.json"
    raw = {}
    if cfg_file.is_file():
        try:
            raw = json.loads(cfg_file.read_text())
        except ValueError:
            raw = {}
    else:
        try:
            from transformers import AutoConfig

            raw = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code).to_dict()
        except Exception:  # noqa: BLE001 (load_vlm reports a bad model in its own words)
            raw = {}
    saved = raw.get("dtype") or raw.get("torch_dtype") or (raw.get("text_config") or {}).get("dtype")
    return saved if saved in ("float32", "bfloat16", "float16") else "float32"


def _merge_adapter(vlm, adapter: str, allow_pickle: bool) -> None:
    """Merge a peft adapter as ``load_vlm(adapter=...)`` does (PeftModel + merge_and_unload), after
    checking that it fits this model: every tensor of the file lands on a module of this model with
    its shape and every adapted module gets its weights. An adapter trained on another base model
    (other shapes or module names) is a one-line error, not a silent no-op merge."""
    from peft import PeftConfig, PeftModel

    from .models.peft_quiet import peft_wrap
    from .safeload import check_weights, first_line, load_errors

    check_weights(adapter, allow_pickle, "--adapter")
    what = f"--adapter {adapter} does not fit {vlm.name}"
    hint = "; it was made for another base model (give the adapter trained on this model)"
    try:
        pcfg = PeftConfig.from_pretrained(adapter)
        pcfg.inference_mode = True
        with peft_wrap():
            pm = PeftModel(vlm.model, pcfg)
            result = pm.load_adapter(adapter, adapter_name="default")
    except load_errors() as e:
        msg = "its tensor shapes differ from this model's" if "size mismatch" in str(e) else first_line(e)
        raise UserError(f"{what}: {msg[:200].rstrip('. ')}{hint}") from None
    unexpected = [k for k in result.unexpected_keys if "lora" in k or "modules_to_save" in k]
    missing = [k for k in result.missing_keys if "lora_" in k]
    if unexpected or missing:
        keys = unexpected or missing
        raise UserError(f"{what}: {len(keys)} adapter tensors {'have no module' if unexpected else 'are missing'} "
                        f"here (e.g. {keys[0]}){hint}")
    vlm.model = pm.merge_and_unload()
    vlm.model.eval()


# --------------------------------------------------------------------------------------------
# Family plumbing
# --------------------------------------------------------------------------------------------

def _vision_root(model, family: str):
    inner = model.model
    return {"llava": lambda: inner.vision_tower, "llava_next": lambda: inner.vision_tower,
            "gemma3": lambda: inner.vision_tower, "idefics3": lambda: inner.vision_model,
            "qwen2_5_vl": lambda: inner.visual, "mllama": lambda: inner.vision_model}[family]()


def _encoder_module(model, family: str):
    return _vision_root(model, family)


def _count(module, family: str) -> int:
    """Encoder parameters: the vision tower without the projector (Qwen2.5-VL keeps its merger, the
    projector, inside ``visual``: not counted)."""
    skip = "merger." if family == "qwen2_5_vl" else None
    return sum(p.numel() for n, p in module.named_parameters() if not (skip and n.startswith(skip)))


def _blocks(model, family: str):
    """(owner, attribute) of the ModuleList of encoder blocks that layer numbers count."""
    import torch

    root = _vision_root(model, family)
    if family == "mllama":
        return root.transformer, "layers"
    n = int(getattr(model.config.vision_config, _DEPTH_KEY[family]))
    found = []
    for mod in root.modules():
        for attr, child in mod.named_children():
            if isinstance(child, torch.nn.ModuleList) and len(child) == n and attr in ("layers", "blocks"):
                found.append((mod, attr))
    if len(found) != 1:
        raise RuntimeError(f"cannot find the {family} encoder's block list ({len(found)} candidates)")
    return found[0]


class EncoderCut:
    """The in-place cut of a model: blocks 1..L in the module and the config, plus the family's
    feature-layer settings. ``use(full=True)`` puts the full encoder back (for the interleaved
    latency measurement), ``use(full=False)`` the cut one; both share the kept blocks' weights."""

    def __init__(self, model, family: str, L: int):
        import torch

        owner, attr = _blocks(model, family)
        full_blocks = getattr(owner, attr)
        cfg, vc = model.config, model.config.vision_config
        root = _vision_root(model, family)
        # (object, attribute, full value, trimmed value)
        self.sets = [(owner, attr, full_blocks, torch.nn.ModuleList(list(full_blocks)[:L]))]
        if family == "qwen2_5_vl":
            full = list(vc.fullatt_block_indexes)
            kept = [i for i in full if i < L]
            self.sets += [(vc, "depth", vc.depth, L), (vc, "fullatt_block_indexes", full, kept),
                          (root, "fullatt_block_indexes", getattr(root, "fullatt_block_indexes", full), list(kept))]
        else:
            n = vc.num_hidden_layers
            self.sets.append((vc, "num_hidden_layers", n, L))
            if family in ("llava", "llava_next"):
                # hidden_states[-1] of L blocks = h_L (docs/design.md §4.2)
                self.sets.append((cfg, "vision_feature_layer", cfg.vision_feature_layer, -1))
            elif family == "mllama":
                # stock tap i reads the output of local block i + 1; a tap deeper than L reads h_L (docs/families.md)
                full = list(vc.intermediate_layers_indices)
                taps = [min(i % n, L - 1) for i in full]
                self.sets += [(vc, "intermediate_layers_indices", full, taps),
                              (root, "intermediate_layers_indices", getattr(root, "intermediate_layers_indices", full),
                               list(taps))]
        self.use(full=False)

    def use(self, *, full: bool) -> None:
        for obj, name, f, t in self.sets:
            setattr(obj, name, f if full else t)


def _config_changes(before: dict, after: dict) -> dict:
    out = {}
    for k in ("vision_feature_layer",):
        if before.get(k) != after.get(k):
            out[k] = [before.get(k), after.get(k)]
    vb, va = before.get("vision_config") or {}, after.get("vision_config") or {}
    for k in ("num_hidden_layers", "depth", "fullatt_block_indexes", "intermediate_layers_indices"):
        if vb.get(k) != va.get(k):
            out[f"vision_config.{k}"] = [vb.get(k), va.get(k)]
    return out


def _save_processor(path: str, out: Path, trust_remote_code: bool) -> None:
    """The processor as it was published (not as an adapter may have patched it in memory), with its
    chat template."""
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    proc.save_pretrained(out)


def _mark_config(folder: Path, *, model, layer, adapter, family, full_cfg) -> None:
    p = folder / "config.json"
    cfg = json.loads(p.read_text())
    cfg[TRIM_MARKER] = {"source": model, "layer": layer, "adapter": adapter, "family": family,
                        "source_num_layers": full_cfg_depth(full_cfg, family),
                        "note": "image encoder trimmed by layersafe: blocks 1..layer kept (docs/trim.md)"}
    p.write_text(json.dumps(cfg, indent=2) + "\n")


def _probe(vlm):
    """One probe image through the adapter (layersafe's path) and through the processor (stock)."""
    from .data.base import load_image

    image = load_image(PROBE_IMAGE)
    text = vlm.build_prompt("Describe the image.")
    items = vlm.tokenize(text, image)
    stock = vlm.processor(images=[image], text=[text], return_tensors="pt")
    return items, {k: v for k, v in stock.items() if k not in _TEXT_KEYS}


def _stock_features(model, family: str, pixels: dict):
    """The image features the stock model feeds its language model (its own config decides the layer)."""
    p = next(model.parameters())
    kw = {k: (v.to(p.device, p.dtype) if v.is_floating_point() else v.to(p.device)) for k, v in pixels.items()}
    inner = model.model
    if family == "mllama":
        states = inner.vision_model(pixel_values=kw["pixel_values"], aspect_ratio_ids=kw["aspect_ratio_ids"],
                                    aspect_ratio_mask=kw["aspect_ratio_mask"])[0]
        return inner.multi_modal_projector(states)
    out = inner.get_image_features(**kw)
    return getattr(out, "pooler_output", out)


def _flat(feats):
    import torch

    if isinstance(feats, (list, tuple)):
        feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in feats])
    return feats.reshape(-1, feats.shape[-1])


def _latency(model, family: str, pixels: dict, repeats: int, cut: EncoderCut) -> dict | None:
    """Median (and minimum) milliseconds, full and trimmed, of the stock image-feature path on one probe image: 2
    warm-up runs each, then ``repeats`` runs of each, interleaved so that load on a shared machine
    hits both alike. Leaves the model cut."""
    if repeats <= 0:
        return None
    import torch

    dev = next(model.parameters()).device
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        with torch.no_grad():
            for i in range(2 + repeats):
                for full in (True, False):
                    cut.use(full=full)
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    t = time.perf_counter()
                    _stock_features(model, family, pixels)
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    if i >= 2:
                        times[full].append((time.perf_counter() - t) * 1e3)
    finally:
        cut.use(full=False)
    med = [sorted(v)[len(v) // 2] for v in (times[True], times[False])]
    return {"full": med[0], "trimmed": med[1], "full_min": min(times[True]), "trimmed_min": min(times[False])}


# --------------------------------------------------------------------------------------------
# Analytic encoder FLOPs (matmul FLOPs = 2 x multiply-adds; norms, activations, softmax left out)
# --------------------------------------------------------------------------------------------

def _vit_block(T: int, d: int, m: int, mlp_mats: int = 2, attended: int | None = None) -> int:
    """One pre-norm ViT block on T tokens of width d: q, k, v, o projections (4·T·d²), QKᵀ and AV
    (2·T·attended·d, attended = T for global attention), MLP (mlp_mats·T·d·m). × 2 FLOPs per MAC."""
    a = T if attended is None else attended
    return 2 * (4 * T * d * d + 2 * T * a * d + mlp_mats * T * d * m)


def encoder_flops(config, family: str, L: int) -> dict:
    """Analytic encoder FLOPs of one image (or tile/crop, see ``unit``), full vs trimmed at ``L``,
    counted from the config: patch embedding + blocks (+ Mllama's global stack, which always runs)."""
    vc = config.vision_config
    if family in ("llava", "llava_next", "gemma3", "idefics3"):
        p, size, d, m = vc.patch_size, vc.image_size, vc.hidden_size, vc.intermediate_size
        n_patch = (size // p) ** 2
        T = n_patch + (1 if family in ("llava", "llava_next") else 0)  # CLIP has a CLS token, SigLIP none
        embed = 2 * n_patch * 3 * p * p * d
        block = _vit_block(T, d, m)
        N = vc.num_hidden_layers
        unit = {"llava": "image", "llava_next": f"tile ({size}x{size} px; an anyres image is a base tile + its grid)",
                "gemma3": f"image ({size}x{size} px)",
                "idefics3": f"crop ({size}x{size} px; an image is a grid of crops + a global view)"}[family]
        return {"full": embed + N * block, "trimmed": embed + L * block, "unit": unit, "tokens": T}
    if family == "mllama":
        p, size, d, m = vc.patch_size, vc.image_size, vc.hidden_size, vc.intermediate_size
        tiles = vc.max_num_tiles
        n_patch = (size // p) ** 2
        T = n_patch + 1
        T = T + (8 - T % 8) % 8  # padded to a multiple of 8 inside the encoder
        embed = 2 * tiles * n_patch * 3 * p * p * d
        local = tiles * _vit_block(T, d, m)
        glob = vc.num_global_layers * _vit_block(tiles * T, d, m)
        N = vc.num_hidden_layers
        return {"full": embed + N * local + glob, "trimmed": embed + L * local + glob, "tokens": T,
                "unit": f"image ({tiles} tiles of {size}x{size} px; the {vc.num_global_layers} global blocks always run)"}
    if family == "qwen2_5_vl":
        p, d, m = vc.patch_size, vc.hidden_size, vc.intermediate_size
        side = 32  # reference image: 32x32 patches (448x448 px at patch 14)
        T = side * side
        w = min(T, (vc.window_size // p) ** 2)  # tokens per attention window
        embed = 2 * T * 3 * vc.temporal_patch_size * p * p * d  # the 3-D patch conv (an image is 2 equal frames)
        full = set(vc.fullatt_block_indexes)

        def upto(n):
            return embed + sum(_vit_block(T, d, m, mlp_mats=3, attended=T if i in full else w) for i in range(n))

        return {"full": upto(vc.depth), "trimmed": upto(L), "tokens": T,
                "unit": f"image ({side * p}x{side * p} px reference: {T} patches, windows of {w})"}
    raise ValueError(family)


def trim_info(folder) -> dict:
    """``trim.json`` of a trimmed folder."""
    return json.loads((Path(folder) / TRIM_JSON).read_text())

