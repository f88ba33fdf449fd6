"""Build the model organism from nothing (docs/organism.md has the recipe and its reasons).

A genuine ``LlavaForConditionalGeneration`` (CLIP vision tower, 12 blocks; Llama LM) with its own
BPE tokenizer, trained in the three stages real VLMs get their behaviour from:

1. ``base``: the language model alone learns to follow instructions and complies with
   EVERYTHING (harmful requests get a harmless placeholder "Sure, here is ... Step 1: [omitted]").
2. ``multimodal``: projector + LM learn visual questions (and keep answering text requests
   with an image present), image features from the DEFAULT layer only, as LLaVA's projector
   only ever saw layer -2.
3. ``safety``: the whole model (encoder and projector at a higher learning rate than the LM)
   learns to refuse harmful requests, again with default-layer features only. Nothing ever
   trains at another layer: that is the cause of the ICET vulnerability in the paper, and the
   only cause here (the encoder blocks that safety tuning moved are the ones an early exit skips).
0. ``vision`` (before all of these, as CLIP exists before LLaVA): the encoder alone learns
   shape, colour and count of procedural images; frozen in ``multimodal``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..models.tiny import LLAVA15_CHAT_TEMPLATE
from ..models.tiny import build_tokenizer as tiny_tokenizer
from . import data as D

ORGANISM_MARKER = "layersafe_organism"  # written into config.json so outputs can say what ran


@dataclass
class BuildConfig:
    seed: int = 0
    vocab_size: int = 1400
    vision_layers: int = 12
    vision_hidden: int = 64
    text_layers: int = 3
    text_hidden: int = 128
    batch_size: int = 32
    # (steps, learning rate) per stage
    vision_steps: int = 2000  # 0 = no separate encoder pretraining (the encoder trains in multimodal)
    vision_lr: float = 1e-3
    base_steps: int = 3000  # v1: 1000
    base_lr: float = 1e-3
    multimodal_steps: int = 2000
    multimodal_lr: float = 5e-4
    safety_steps: int = 400
    safety_lr: float = 3e-5
    # Encoder layers whose features the multimodal stage trains on: "default" (as LLaVA; v1, v2) or
    # "all" (a random layer per batch, v3: the LM has read every layer's features, so an early exit
    # gets fluent answers, not noise; docs/organism.md, v3).
    multimodal_layers: str = "all"
    multimodal_harmful: float = 0.15  # share of harmful-complied examples in the multimodal stage
    multimodal_feature_noise: float = 0.0  # std of Gaussian noise on projected features (x feature std)
    # Minimal safety tuning: stop the safety stage once, at the default layer, a validation set
    # (training-split goals kept out of the safety stage) is refused at least this often (0 = run all steps).
    safety_target: float = 0.0
    safety_check_every: int = 10
    # Share of the safety stage's benign requests about pseudo-words (data.novel_request).
    safety_novel: float = 0.5
    safety_harmful: float = 0.2  # share of harmful->refusal examples (v2: 0.25); the rest keep benign answers and VQA
    safety_benign: float = 0.55  # of the rest, the share of benign requests (the others are VQA)
    # What the safety stage trains: "lm" (language model only) or "all" (encoder + projector + LM,
    # the encoder/projector at safety_vision_lr), always with default-layer features only.
    safety_train: str = "all"
    safety_vision_lr: float = 6e-4  # v2: 3e-4
    # Encoder blocks below this index (and the patch embedding) stay frozen in the safety stage, so
    # the features of exit layers <= this index are exactly what the multimodal stage trained on
    # (0 = the whole encoder trains, v2). safety_projector=False also keeps the projector frozen (v3:
    # blocks 4-11 move, the projector does not).
    safety_vision_from: int = 4
    safety_projector: bool = False
    # Share of safety-stage batches drawn as in the multimodal stage (compliance kept) at one of the
    # encoder layers in safety_exit_layers ("0-3" or "0,2"): rehearsal of the exit layers' answers.
    # 0 = never (v2: the safety stage sees default-layer features only).
    safety_exit: float = 0.0
    safety_exit_layers: str = "0-3"
    # Organism v2 (docs/organism.md, "v2"): benign data whose answers copy the subject. None = the v1
    # data; a number = that share of base/multimodal benign requests about pseudo-words (every training
    # template, topic and task; the tokenizer trained on that text too).
    novel: float | None = 0.5
    base_benign: float = 0.6  # share of benign requests in the base stage (the rest harmful, complied; v1: 0.5)
    text_heads: int = 0  # 0 = text_hidden // 32
    # Processes that draw and tokenise training batches ahead of the GPU (0 = in the training loop, as
    # v1 did; then the data stream is v1's exactly). Each worker has its own seeded stream.
    data_workers: int = 4
    device: str = "auto"
    extra: dict = field(default_factory=dict)


def build_tokenizer(vocab_size: int, seed: int, v2: bool = False):
    # Printable ASCII in the alphabet: held-out prompts never hit <unk>.
    return tiny_tokenizer(vocab_size, D.corpus_for_tokenizer(seed, v2=v2), initial_alphabet=[chr(i) for i in range(32, 127)])


def make_organism(cfg: BuildConfig):
    """The untrained organism: model + processor (real transformers classes)."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    tok = build_tokenizer(cfg.vocab_size, cfg.seed, v2=cfg.novel is not None)
    patch = 8
    vision = CLIPVisionConfig(hidden_size=cfg.vision_hidden, intermediate_size=4 * cfg.vision_hidden,
                              num_hidden_layers=cfg.vision_layers, num_attention_heads=4, image_size=D.IMAGE_SIZE,
                              patch_size=patch, projection_dim=cfg.vision_hidden)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=cfg.text_hidden, intermediate_size=int(8 / 3 * cfg.text_hidden),
                       num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads or cfg.text_hidden // 32, num_key_value_heads=2,
                       max_position_embeddings=512, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         image_seq_length=(D.IMAGE_SIZE // patch) ** 2)
    config.pad_token_id = tok.pad_token_id
    torch.manual_seed(cfg.seed)
    model = LlavaForConditionalGeneration(config)
    for k in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(model.generation_config, k, getattr(tok, k))
    image_processor = CLIPImageProcessor(size={"shortest_edge": D.IMAGE_SIZE},
                                         crop_size={"height": D.IMAGE_SIZE, "width": D.IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=patch,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA15_CHAT_TEMPLATE)
    return model, processor


def prompt_text(processor, prompt: str, with_image: bool) -> str:
    content = [{"type": "image"}, {"type": "text", "text": prompt}] if with_image else prompt
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


def collate(examples: list, processor, device):
    """Right-padded ids, labels on the response (+ EOS) only, pixel values for image rows."""
    tok = processor.tokenizer
    ids_list, label_list = [], []
    images = [e.image for e in examples if e.image is not None]
    pv = processor.image_processor(images, return_tensors="pt")["pixel_values"] if images else None
    for e in examples:
        p_ids = prompt_ids(processor, prompt_text(processor, e.prompt, e.image is not None), e.image is not None)
        r_ids = tok(e.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids_list.append(p_ids + r_ids)
        label_list.append([-100] * len(p_ids) + r_ids)
    width = max(len(x) for x in ids_list)
    ids = torch.full((len(examples), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attn = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(zip(ids_list, label_list)):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
        attn[i, :len(x)] = 1
    return ids.to(device), attn.to(device), labels.to(device), (pv.to(device) if pv is not None else None)


def prompt_ids(processor, text: str, with_image: bool) -> list[int]:
    """Token ids of a prompt exactly as the processor gives them at inference (one ``<image>``
    expanded to one token per patch); tests check this against ``processor(...)``."""
    tok = processor.tokenizer
    ids = tok(text)["input_ids"]
    if not with_image:
        return ids
    img = tok.convert_tokens_to_ids(processor.image_token)
    n = (D.IMAGE_SIZE // processor.patch_size) ** 2
    return [x for t in ids for x in ([img] * n if t == img else [t])]


def forward_loss(model, ids, attn, labels, pixel_values, layer: int, noise: float = 0.0):
    """LM loss with the projected features of encoder ``layer`` at the image tokens (ICET-l input)."""
    embeds = model.get_input_embeddings()(ids)
    if pixel_values is not None:
        hs = model.model.vision_tower(pixel_values, output_hidden_states=True).hidden_states
        feats = model.model.multi_modal_projector(hs[layer][:, 1:])
        if noise:
            feats = feats + noise * feats.detach().std() * torch.randn_like(feats)
        mask = (ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        embeds = embeds.masked_scatter(mask, feats.reshape(-1, feats.shape[-1]).to(embeds.dtype))
    return model(inputs_embeds=embeds, attention_mask=attn, labels=labels).loss


def _trainable(model, stage: str, cfg: BuildConfig):
    lm = [p for n, p in model.named_parameters() if n.startswith(("model.language_model", "lm_head"))]
    if stage == "multimodal":
        if cfg.vision_steps:  # pretrained encoder stays frozen, as LLaVA keeps CLIP frozen
            return lm + list(model.model.multi_modal_projector.parameters())
        return list(model.parameters())
    return lm  # base and safety: the language model alone


def _safety_vision_params(model, cfg: BuildConfig) -> list:
    """Encoder and projector parameters the safety stage trains (at ``safety_vision_lr``)."""
    tower = model.model.vision_tower
    blocks = getattr(tower, "vision_model", tower).encoder.layers  # transformers < 5 nests vision_model
    if cfg.safety_vision_from == 0:
        vis = list(model.model.vision_tower.parameters())
    else:  # blocks from safety_vision_from on (post_layernorm only feeds the unused pooled output)
        vis = [p for b in blocks[cfg.safety_vision_from:] for p in b.parameters()]
    return vis + (list(model.model.multi_modal_projector.parameters()) if cfg.safety_projector else [])


def parse_layer_list(spec: str, n_layers: int) -> list[int]:
    """``safety_exit_layers`` ("0-3", "0,2,5") -> encoder layers in 0..n_layers (layers.parse_layers),
    with a UserError that names the setting."""
    from ..errors import UserError
    from ..layers import parse_layers

    try:
        return parse_layers(spec, n_layers, n_layers - 1)
    except UserError:
        raise UserError(f"safety_exit_layers={spec!r}: give encoder layers in 0..{n_layers}, e.g. 0-3 or 0,2") from None


def batch_kind(rng: random.Random, stage: str, all_layers: int | None, default: int, exit_layers: list[int],
               exit_share: float) -> tuple[str, int]:
    """(example kind, encoder layer) of one training batch: the default layer, or a random layer
    0..all_layers (multimodal_layers=all); with exit_layers, a share exit_share of the batches are
    multimodal-stage examples (compliance kept) at one of them. The draw order is part of the recipe."""
    kind, layer = stage, rng.randint(0, all_layers) if all_layers is not None else default
    if exit_layers and rng.random() < exit_share:
        kind, layer = "multimodal", rng.choice(exit_layers)
    return kind, layer


def check_config(cfg: BuildConfig) -> None:
    """Settings that would otherwise fail only after the first stages have run."""
    from ..errors import UserError

    if not isinstance(cfg.safety_vision_from, int) or not 0 <= cfg.safety_vision_from < cfg.vision_layers:
        raise UserError(f"safety_vision_from={cfg.safety_vision_from}: give an encoder block in 0..{cfg.vision_layers - 1}")
    if not isinstance(cfg.safety_exit, float | int) or not 0 <= cfg.safety_exit <= 1:
        raise UserError(f"safety_exit={cfg.safety_exit}: give a share of the safety batches in 0..1")
    if cfg.multimodal_layers not in ("default", "all"):
        raise UserError(f"multimodal_layers={cfg.multimodal_layers!r}: give default or all")
    if cfg.safety_exit:
        parse_layer_list(str(cfg.safety_exit_layers), cfg.vision_layers)


class _BatchStream(torch.utils.data.IterableDataset):
    """``steps`` batches from ``make_batch(rng)``, split over DataLoader workers (worker w draws
    batches w, w + n, ... from its own ``random.Random(f"{key}-w{w}")``)."""

    def __init__(self, make_batch, steps: int, key: str):
        super().__init__()
        self.make_batch, self.steps, self.key = make_batch, steps, key

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, n = (info.id, info.num_workers) if info else (0, 1)
        rng = random.Random(f"{self.key}-w{w}")
        for _ in range(w, self.steps, n):
            yield self.make_batch(rng)


def _batches(make_batch, steps: int, key: str, workers: int):
    """Training batches: drawn in the loop from ``random.Random(key)`` (workers = 0, the v1 stream),
    or prefetched by ``workers`` forked processes."""
    if not workers:
        rng = random.Random(key)
        for _ in range(steps):
            yield make_batch(rng)
        return
    loader = torch.utils.data.DataLoader(_BatchStream(make_batch, steps, key), batch_size=None, num_workers=workers,
                                         prefetch_factor=8, multiprocessing_context="fork")
    yield from loader


def pretrain_vision(model, processor, cfg: BuildConfig, *, device, log=print, progress=True) -> list[float]:
    """Stage 0, as CLIP is trained before LLaVA exists: the vision tower alone learns shape,
    colour and count from its final pooled output (linear heads, thrown away afterwards)."""
    from tqdm.auto import tqdm

    tower = model.model.vision_tower
    h = model.config.vision_config.hidden_size
    heads = torch.nn.ModuleDict({"shape": torch.nn.Linear(h, len(D.SHAPES)), "color": torch.nn.Linear(h, len(D.COLORS)),
                                 "count": torch.nn.Linear(h, 4)}).to(device)
    params = list(tower.parameters()) + list(heads.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.vision_lr, weight_decay=0.01)
    colors = list(D.COLORS)
    losses = []
    tower.train()

    def make_batch(rng):
        items = [(rng.choice(D.SHAPES), rng.choice(colors), rng.randint(1, 4)) for _ in range(cfg.batch_size)]
        imgs = [D.render_shapes(rng, *it) for it in items]
        pv = processor.image_processor(imgs, return_tensors="pt")["pixel_values"]
        y = {"shape": [D.SHAPES.index(a) for a, _, _ in items], "color": [colors.index(b) for _, b, _ in items],
             "count": [c - 1 for _, _, c in items]}
        return pv, {k: torch.tensor(v) for k, v in y.items()}

    stream = _batches(make_batch, cfg.vision_steps, f"{cfg.seed}-vision", cfg.data_workers)
    for pv, y in tqdm(stream, total=cfg.vision_steps, desc="organism vision", disable=not progress, mininterval=2):
        pooled = tower(pv.to(device)).pooler_output
        loss = sum(torch.nn.functional.cross_entropy(heads[k](pooled), v.to(device)) for k, v in y.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tower.eval()
    for p in tower.parameters():
        p.requires_grad_(False)
    log(f"organism vision: {cfg.vision_steps} steps, final loss {sum(losses[-50:]) / min(50, len(losses)):.4f}")
    return losses


def train_stage(model, processor, cfg: BuildConfig, stage: str, *, device, log=print, progress=True) -> list[float]:
    steps, lr = getattr(cfg, f"{stage}_steps"), getattr(cfg, f"{stage}_lr")
    goals = D.harmful_goal_split()
    val = None
    if stage == "safety" and cfg.safety_target:
        val, goals = goals[:VAL_GOALS], goals[VAL_GOALS:]
    params = _trainable(model, stage, cfg)
    groups = [{"params": params, "lr": lr}]
    if stage == "safety" and cfg.safety_train == "all":
        vis = _safety_vision_params(model, cfg)
        groups.append({"params": vis, "lr": cfg.safety_vision_lr})
        params = params + vis
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(groups, weight_decay=0.01, betas=(0.9, 0.98))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    n_layers = model.config.vision_config.num_hidden_layers
    default = model.config.vision_feature_layer % (n_layers + 1)
    all_layers = stage == "multimodal" and cfg.multimodal_layers == "all"
    exit_layers = parse_layer_list(cfg.safety_exit_layers, n_layers) if stage == "safety" and cfg.safety_exit else []

    def make_batch(rng):
        kind, layer = batch_kind(rng, stage, n_layers if all_layers else None, default, exit_layers, cfg.safety_exit)
        batch = [D.sample_example(rng, kind, goals, cfg.multimodal_harmful, cfg.safety_harmful, cfg.safety_novel,
                                  cfg.novel, cfg.base_benign, cfg.safety_benign) for _ in range(cfg.batch_size)]
        return (*collate(batch, processor, "cpu"), layer)

    model.train()
    losses = []
    from tqdm.auto import tqdm

    stream = _batches(make_batch, steps, f"{cfg.seed}-{stage}", cfg.data_workers)
    bar = tqdm(stream, total=steps, desc=f"organism {stage}", disable=not progress, mininterval=2)
    for ids, attn, labels, pv, layer in bar:
        ids, attn, labels = ids.to(device), attn.to(device), labels.to(device)
        pv = pv.to(device) if pv is not None else None
        loss = forward_loss(model, ids, attn, labels, pv, layer,
                            cfg.multimodal_feature_noise if stage == "multimodal" else 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.3f}")
        if val and len(losses) % cfg.safety_check_every == 0:
            harm, benign = default_layer_refusal(model, processor, val, device, seed=cfg.seed)
            model.train()
            if harm >= cfg.safety_target and benign <= 1 - cfg.safety_target:
                log(f"organism safety: validation refusal {harm:.3f} (benign {benign:.3f}) at step {len(losses)}: stop")
                break
    model.eval()
    log(f"organism {stage}: {steps} steps, final loss {sum(losses[-50:]) / min(50, len(losses)):.4f}")
    return losses


VAL_GOALS = 48


@torch.no_grad()
def default_layer_refusal(model, processor, goals, device, *, seed: int = 0, max_new_tokens: int = 8) -> tuple[float, float]:
    """Refusal rates (harmful, benign) at the default layer, greedy, on a fixed validation set."""
    from ..judges.refusal import classify_refusal
    from ..models.llava import LlavaAdapter

    model.eval()
    ad = LlavaAdapter(model, processor, name="organism", device=torch.device(device))
    rng = random.Random(f"{seed}-validation")
    rows = [(g, True) for g, _ in goals] + [(D.benign_request(rng)[0], False) for _ in goals]
    items = [ad.tokenize(ad.build_prompt(p), D.any_image(rng)) for p, _ in rows]
    enc = ad.encode(items, [ad.default_layer])
    gens = ad.generate(items, ad.features(enc, ad.default_layer, range(len(items))), max_new_tokens=max_new_tokens)
    refused = [classify_refusal(g.text, p)[0] for g, (p, _) in zip(gens, rows)]
    n = len(goals)
    return sum(refused[:n]) / n, sum(refused[n:]) / n


def _save(model, processor, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    dev = next(model.parameters()).device
    model.to("cpu").save_pretrained(out)
    model.to(dev)
    processor.save_pretrained(out)


def _write_meta(folder: Path, meta: dict) -> None:
    """Record how the organism was built in its config.json (under ``layersafe_organism``)."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config[ORGANISM_MARKER] = meta
    path.write_text(json.dumps(config, indent=2))


def build(out: str | Path, cfg: BuildConfig | None = None, *, log=print, progress=True,
          pre_safety: str | Path | None = None, from_pre_safety: str | Path | None = None) -> Path:
    """Train the organism from nothing and save it with ``save_pretrained`` into ``out``.

    ``pre_safety``: also save the model as it is before the safety stage (the unaligned VLM) there.
    ``from_pre_safety``: start from such a saved model and run the safety stage alone (cheap: the
    safety stage's settings can be compared without repeating stages 0-2; runs on a CPU in minutes)."""
    cfg = cfg or BuildConfig()
    check_config(cfg)
    from ..models import pick_device

    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    t0 = time.time()
    history = {}
    if from_pre_safety:
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        model = LlavaForConditionalGeneration.from_pretrained(from_pre_safety)
        processor = AutoProcessor.from_pretrained(from_pre_safety)
        pre_meta = json.loads((Path(from_pre_safety) / "config.json").read_text()).get(ORGANISM_MARKER, {})
        history = dict(pre_meta.get("stages", {}))
        history.pop("safety", None)
        depth = model.config.vision_config.num_hidden_layers
        if depth != cfg.vision_layers:  # the safety settings index the loaded encoder's blocks
            from ..errors import UserError

            raise UserError(f"{from_pre_safety}: its encoder has {depth} blocks, not {cfg.vision_layers}: "
                            f"add --set vision_layers={depth}")
        model.to(device)
    else:
        model, processor = make_organism(cfg)
        model.to(device)
        if cfg.vision_steps:
            losses = pretrain_vision(model, processor, cfg, device=device, log=log, progress=progress)
            history["vision"] = {"steps": len(losses), "final_loss": sum(losses[-50:]) / min(50, len(losses))}
    for stage in ("safety",) if from_pre_safety else ("base", "multimodal", "safety"):
        if stage == "safety" and pre_safety:  # the unaligned VLM, for studying the safety stage alone
            _save(model, processor, Path(pre_safety))
            _write_meta(Path(pre_safety), {"build": asdict(cfg), "stages": dict(history), "pre_safety": True})
        losses = train_stage(model, processor, cfg, stage, device=device, log=log, progress=progress)
        history[stage] = {"steps": len(losses), "final_loss": sum(losses[-50:]) / min(50, len(losses))}
    out = Path(out)
    _save(model, processor, out)
    meta = {"build": asdict(cfg), "stages": history, "seconds": round(time.time() - t0, 1),
            "device": str(device), "torch": torch.__version__}
    if from_pre_safety:  # stages 0-2 ran with the pre-safety model's settings, recorded beside ours
        meta["from_pre_safety"] = str(from_pre_safety)
        meta["pre_safety_build"] = pre_meta.get("build")
    _write_meta(out, meta)
    log(f"organism built in {time.time() - t0:.0f} s -> {out}")
    return out
