"""The configs of the training commands: ``align`` (:class:`LPPOConfig`), ``sft`` (:class:`SFTConfig`)
and ``train-rm`` (:class:`RMTrainConfig`). Their command-line options are built from these fields
(:mod:`layersafe.config`), and fields marked ``resume=True`` are the settings a ``--resume`` run
must keep. This module imports no torch, so ``layersafe CMD --help`` stays fast.
"""

from __future__ import annotations

import warnings
from dataclasses import InitVar, dataclass, fields
from typing import ClassVar, Literal

from ..config import CACHE_HELP, DTYPE_HELP, PICKLE_HELP, CacheMode, DeprecatedOptionWarning, DType, check_fields, opt, resume_keys
from ..config import SYSTEM_PROMPT_HELP, TEMPLATE_HELP, Template
from ..errors import UserError

LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
REFUSAL_TARGET = "I'm sorry, but I can't help with that."
BENIGN_TEMPLATE = "Sure, I'm happy to help. Here is a clear and helpful answer to your question."

Method = Literal["lppo", "distill"]
KLEstimator = Literal["k1", "k3"]  # = layersafe.rl.ppo.KL_ESTIMATORS
LRSchedule = Literal["constant", "linear"]
LogWith = Literal["none", "tensorboard", "wandb"]
DecodeCache = Literal["auto", "keep", "release"]
RolloutWeights = Literal["auto", "merged", "adapter"]


# ============================================================================================
# align (L-PPO / layer-consistency distillation)
# ============================================================================================

@dataclass
class LPPOConfig:
    """Every knob of ``layersafe align`` (TRL-style: one dataclass, defaults, help in metadata)."""

    # --- model, data, layers, reward ------------------------------------------------------
    model: str = opt("tiny-random-llava", "HF id / local folder of a supported VLM (tiny-random-llava and the other built-in tiny-random-* models = offline checks)", resume=True)
    data: str = opt("advbench-images", "training prompts: built-in dataset or .jsonl/.csv (id, prompt, image, harmful); held-out CP goals are always removed", resume=True)
    benign_data: str | None = opt(None, ".jsonl/.csv of benign prompts (image optional: a benign photo is paired), e.g. XSTest prompts (contrast_* rows dropped); optional reference answers for the answer reward: answer (one string) or answers (a list in .jsonl; in .csv 'a|b' or a JSON list)", resume=True)
    benign_fraction: float = opt(0.5, "share of each rollout batch drawn from --benign-data", min=0, max=1, resume=True)
    limit: int | None = opt(None, "use only the first N training prompts", min=1, resume=True)
    layers: str = opt("default", "layer spec (N, A-B, all, default, lists); several layers = one sampled per prompt", resume=True)
    layer_weights: str | None = opt(None, "comma list of sampling weights, one per layer of --layers (default uniform)", resume=True)
    layers_from_scan: str | None = opt(None, "scan run folder: train the top-k layers of its metrics.csv by ASR, weighted by ASR", resume=True)
    top_k: int = opt(3, "with --layers-from-scan: how many layers", min=1, resume=True)
    rank_by: str = opt("asr", "with --layers-from-scan: the metrics.csv column that ranks and weights the layers "
                       "(asr = the headline; asr_llamaguard, asr_refusal, ... for one judge's)", resume=True)
    method: Method = opt("lppo", "repair method: lppo (clipped PPO on --reward, the paper's eq. 10) or distill (layer-consistency distillation: the model at --teacher-layer teaches the LoRA student at --layers; no reward, docs/lppo.md)", resume=True)
    teacher_layer: str = opt("default", "with --method distill: the encoder layer whose features the teacher (adapter disabled) sees; must not be among --layers", resume=True)
    anchor_fraction: float = opt(0.25, "with --method distill: share of each batch drawn at the teacher layer itself (student and teacher see the same features), holding the default layer in place", min=0, max_exclusive=1, resume=True)
    anchor_answers: bool = opt(False, "with --method distill: rows with reference answers (visual questions) are always drawn at the teacher layer, so the student is never taught to answer them from early-layer features (it reads default-layer features differently afterwards)", resume=True)
    reward: str = opt("refusal", "refusal | answer (VQA accuracy on benign rows with reference answers, else 0) | rm:PATH | llamaguard:ID | judge:NAME | weighted sum 'W*A+W*B', e.g. refusal+answer", resume=True)
    silent_reward: float = opt(-2.0, "the whole reward of an empty or degenerate response, whatever --reward says; must be below a harmful compliance (-1) so silence never pays (docs/lppo.md, reward table)", max_exclusive=-1, why="below a harmful compliance, so silence never pays", resume=True)
    out: str = opt("runs/align", "output folder")
    # --- rollout ---------------------------------------------------------------------------
    steps: int = opt(200, "PPO iterations (rollout + update)", min=1)
    batch_size: int = opt(16, "rollouts per step per process (global batch = this x processes)", min=1, resume=True)
    mini_batch_size: int = opt(4, "sequences per gradient step per process (global = this x processes)", min=1, resume=True)
    ppo_epochs: int = opt(4, "passes over each rollout batch", min=1, resume=True)
    max_new_tokens: int = opt(64, "response length limit", min=1, resume=True)
    temperature: float = opt(1.0, "sampling temperature; log-probs use logits/T too", min_exclusive=0, why="PPO needs a sampling policy", resume=True)
    cache: CacheMode = opt("auto", "rollout " + CACHE_HELP)
    decode_cache: DecodeCache = opt("auto", "the static-cache decoder's KV cache and CUDA graph between steps: keep (built "
                                    "once, replayed every step), release (freed after each rollout, rebuilt and "
                                    "re-captured every step), auto (keep on a GPU from the second step on when the "
                                    "cache fits next to the memory the learning phase used; docs/lppo.md)")
    rollout_weights: RolloutWeights = opt("auto", "the weights rollouts decode with: merged (the LoRA delta added into a "
                                          "copy of the adapted weights: one matmul per layer instead of peft's LoRA "
                                          "kernels, one more copy of those weights in memory while decoding), adapter "
                                          "(peft's LoRA path, as the training forward), auto (merged on a GPU when the "
                                          "copy fits, decided at the first rollout; docs/lppo.md)")
    fuse_kernels: bool = opt(False, "rollouts through the static-cache decoder run each language-model layer's "
                             "RMSNorms, rotary embedding and SiLU-times-up as torch.compile'd kernels "
                             "(Llama/Mistral/Qwen2/Qwen3 decoders; others unfused with a warning; the first "
                             "rollout compiles; docs/lppo.md)")
    prefix_reuse: bool = opt(True, "rollouts through the static-cache decoder (LLaVA-1.5): a process's rows that share "
                             "an image at a layer compute their common prompt start (system prompt + image "
                             "tokens) once, each row only its own text (--no-prefix-reuse: every row whole; "
                             "docs/lppo.md)")
    # --- PPO -------------------------------------------------------------------------------
    gamma: float = opt(1.0, "discount γ (eq. 6)", min=0, max=1, resume=True)
    lam: float = opt(0.95, "GAE λ (eq. 6)", min=0, max=1, resume=True)
    clip_range: float = opt(0.2, "policy ratio clip ε (eq. 8)", min_exclusive=0, resume=True)
    clip_range_value: float | None = opt(0.2, "value clip ε_v around the rollout values (none = off)", min=0, resume=True)
    vf_coef: float = opt(0.1, "value loss coefficient c1 (eq. 9)", min=0, resume=True)
    ent_coef: float = opt(0.0, "entropy bonus coefficient", resume=True)
    ptx_coef: float = opt(0.0, "PPO-ptx (Ouyang et al. 2022): add this x the NLL of the reference answers of benign rows (answer/answers columns) to every minibatch's loss; 0 = off", min=0, resume=True)
    ptx_layer: str = opt("default", "encoder layer whose features the PPO-ptx answers are learned on (default: the model's default layer)", resume=True)
    kl_coef: float = opt(0.05, "KL penalty η (eq. 5); initial value if adaptive", min=0, resume=True)
    kl_estimator: KLEstimator = opt("k1", "per-token KL estimator: k1 (log-ratio) or k3", resume=True)
    adaptive_kl: bool = opt(False, "adapt η towards --kl-target (Ziegler et al. 2019)", resume=True)
    kl_target: float = opt(6.0, "adaptive KL: target per-sequence KL", min_exclusive=0, resume=True)
    kl_horizon: int = opt(10000, "adaptive KL: horizon in samples", min=1, resume=True)
    whiten_advantages: bool = opt(True, "normalise advantages per rollout batch", resume=True)
    whiten_rewards: bool = opt(False, "rescale per-token rewards (no mean shift) before GAE", resume=True)
    missing_eos_penalty: float = opt(-1.0, "added to the score of responses with no stop token (0 = off)", resume=True)
    max_grad_norm: float = opt(1.0, "gradient-norm clip", min_exclusive=0, resume=True)
    target_approx_kl: float | None = opt(None, "stop this step's PPO epochs once an epoch's approx-KL exceeds this", min_exclusive=0, resume=True)
    # --- optimisation ---------------------------------------------------------------------
    learning_rate: float = opt(1e-5, "AdamW learning rate (policy and value head)", min_exclusive=0, resume=True)
    weight_decay: float = opt(0.0, "AdamW weight decay", min=0, resume=True)
    lr_schedule: LRSchedule = opt("constant", "constant | linear (decay to 0 over --steps)", resume=True)
    warmup_steps: int = opt(0, "linear warm-up steps", min=0, resume=True)
    # --- model adaptation -------------------------------------------------------------------
    full_finetune: bool = opt(False, "train all LM weights instead of LoRA (reference = frozen copy: 2x memory)", resume=True)
    lora_r: int = opt(16, "LoRA rank", min=1, resume=True)
    lora_alpha: int = opt(32, "LoRA alpha", min=1, resume=True)
    lora_dropout: float = opt(0.0, "LoRA dropout (0 keeps rollout and training forwards identical)", min=0, max_exclusive=1, resume=True)
    lora_target_modules: str = opt(LORA_TARGETS, "LM linear layers that get LoRA (language model only)", resume=True)
    family_recompute: bool = opt(False, "recompute in the backward pass the layers the family's adapter names "
                                 "(Llama 3.2 Vision: its cross-attention layers; less memory, same results; "
                                 "may be added on --resume)")
    dtype: DType = opt("auto", DTYPE_HELP, resume=True)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N (accelerate launch sets it per process)")
    shard_model: bool = opt(False, "under torchrun / accelerate launch: shard the language model's decoder layers over "
                            "the processes (torch FSDP2) instead of a whole copy per process, for a model bigger than "
                            "one GPU; rollouts decode with stock generate, synchronized (docs/scale.md)", resume=True)
    # --- run management --------------------------------------------------------------------
    seed: int = opt(0, "seed: data order, layer sampling, generation", resume=True)
    save_every: int = opt(50, "checkpoint every N steps (and at the end)", min=1)
    keep_checkpoints: int = opt(2, "how many recent checkpoints to keep", min=1)
    resume: bool = opt(False, "continue from the last checkpoint in --out (settings that change a step must be the same)")
    merge: bool = opt(False, "also save OUT/merged: adapter merged, loads with plain transformers")
    log_with: LogWith = opt("none", "none | tensorboard | wandb (JSONL/CSV always)")
    reward_batch_size: int = opt(16, "batch size of reward-model / judge calls", min=1)
    allow_pickle: bool = opt(False, PICKLE_HELP)
    template: Template = opt("hf", TEMPLATE_HELP, resume=True)
    system_prompt: str | None = opt(None, SYSTEM_PROMPT_HELP, resume=True)

    def validate(self) -> None:
        check_fields(self)  # types, choices, finite numbers, the ranges declared above
        if self.batch_size % self.mini_batch_size:
            raise UserError(f"--batch-size {self.batch_size} must be a multiple of --mini-batch-size {self.mini_batch_size}")
        from .rewards import parse_reward_spec

        parse_reward_spec(self.reward)  # a malformed --reward fails before any model loads
        if self.shard_model:
            bad = [o for o, on in (("--full-finetune", self.full_finetune), ("--merge", self.merge),
                                   ("--cache static", self.cache == "static"),
                                   ("--rollout-weights merged", self.rollout_weights == "merged")) if on]
            if bad:
                raise UserError(f"--shard-model cannot be combined with {', '.join(bad)} (a frozen reference copy and "
                                "merged models or weights are whole; the CUDA-graph decoder cannot replay FSDP's "
                                "gathers: docs/scale.md)")
        if self.full_finetune and self.rollout_weights == "merged":
            raise UserError("--rollout-weights merged adds the LoRA delta to the weights; --full-finetune has no "
                            "adapter: leave --rollout-weights at auto")
        if self.method == "distill" and self.layers_from_scan is None and self.layers.strip() == "default":
            raise UserError("--method distill repairs layers other than the teacher (default) layer: give --layers "
                            "(e.g. 0-8) or --layers-from-scan")

    def check_launch(self) -> None:
        """--shard-model needs a multi-process launch (torchrun / accelerate launch set WORLD_SIZE)."""
        import os

        if self.shard_model and int(os.environ.get("WORLD_SIZE", "1")) < 2:
            raise UserError("--shard-model shards the model over the processes of a torchrun / accelerate launch; "
                            "this is one process (drop --shard-model, or launch several)")


# ============================================================================================
# sft
# ============================================================================================

@dataclass
class SFTConfig:
    """Every knob of ``layersafe sft`` (supervised safety fine-tuning baseline)."""

    model: str = opt("tiny-random-llava", "HF id / local folder of a supported VLM (default: tiny random LLaVA)", resume=True)
    data: str = opt("advbench-images", "dataset spec or .jsonl/.csv", resume=True)
    layers: str = opt("default", "layers whose features training uses (sampled per example)", resume=True)
    out: str = opt("runs/sft", "output folder (new or empty unless --resume)")
    steps: int = opt(100, "optimizer steps", min=1)
    batch_size: int = opt(8, "examples per step (of the whole launch: N processes share it, docs/scale.md)", min=1, resume=True)
    learning_rate: float = opt(2e-4, "AdamW learning rate", min_exclusive=0, resume=True)
    lora_r: int = opt(16, "LoRA rank", min=1, resume=True)
    lora_alpha: int = opt(32, "LoRA alpha", min=1, resume=True)
    lora_dropout: float = opt(0.0, "LoRA dropout", min=0, max_exclusive=1, resume=True)
    lora_target_modules: str = opt(LORA_TARGETS, "LM linear layers that get LoRA (language model only)", resume=True)
    family_recompute: bool = opt(False, "recompute in the backward pass the layers the family's adapter names "
                                 "(Llama 3.2 Vision: its cross-attention layers; less memory, same results; "
                                 "may be added on --resume)")
    refusal: str = opt(REFUSAL_TARGET, "refusal target for harmful prompts", resume=True)
    benign_template: str = opt(BENIGN_TEMPLATE, "target for benign prompts without a response column", resume=True)
    limit: int | None = opt(None, "use only the first N samples", min=1, resume=True)
    seed: int = opt(0, "seed: data order, layer sampling, LoRA init", resume=True)
    dtype: DType = opt("auto", DTYPE_HELP, resume=True)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")
    save_every: int = opt(50, "checkpoint every N steps (and at the end)", min=1)
    resume: bool = opt(False, "continue from the last checkpoint in OUT (settings that change a step must be the same)")
    allow_pickle: bool = opt(False, PICKLE_HELP)
    template: Template = opt("hf", TEMPLATE_HELP, resume=True)
    system_prompt: str | None = opt(None, SYSTEM_PROMPT_HELP, resume=True)

    def validate(self) -> None:
        check_fields(self)
        if not self.refusal.strip() or not self.benign_template.strip():
            raise UserError("--refusal and --benign-template must not be empty")


# ============================================================================================
# train-rm
# ============================================================================================

Bf16 = Literal["auto", "yes", "no"]


@dataclass
class RMTrainConfig:
    """Every knob of ``layersafe train-rm``. ``lr=`` still works (deprecated: ``learning_rate``)."""

    base: str = opt("gpt2", "HF hub id or local folder of the backbone, loaded as AutoModelForSequenceClassification(num_labels=1); causal (GPT-2, Llama, ...) or encoder (BERT, ...) models both work", resume=True)
    data: str = opt("", "preference data (see layersafe.data.preferences)", resume=True)
    out: str = opt("", "output folder (must be empty unless --resume)")
    eval_data: str | None = opt(None, "separate evaluation pairs (same formats as --data); default: hold out --eval-size pairs of --data", resume=True)
    eval_size: int = opt(500, "pairs held out of --data for evaluation, whole prompts at a time (0: none)", min=0, resume=True)
    limit: int | None = opt(None, "use only the first N pairs of --data", min=1, resume=True)
    max_length: int = opt(512, "tokens per text including EOS; longer dialogues lose their beginning", min=1, resume=True)
    batch_size: int = opt(8, "pairs per optimizer step", min=1, resume=True)
    micro_batch_size: int | None = opt(None, "pairs per forward pass; smaller than --batch-size accumulates gradients (default: --batch-size)", min=1, resume=True)
    epochs: float = opt(1.0, "passes over the training pairs", min_exclusive=0, resume=True)
    steps: int | None = opt(None, "optimizer steps (overrides --epochs)", min=1, resume=True)
    learning_rate: float = opt(1e-5, "AdamW learning rate", min_exclusive=0, resume=True, deprecated=("--lr",))
    weight_decay: float = opt(0.0, "AdamW weight decay on matrices", min=0, resume=True)
    warmup_steps: int = opt(0, "linear warm-up steps", min=0, resume=True)
    scheduler: str = opt("linear", "transformers LR schedule: linear, cosine, constant, ...", resume=True)
    max_grad_norm: float = opt(1.0, "gradient-norm clip, 0 = off", min=0, resume=True)
    margin: float = opt(0.0, "constant margin m the chosen reward must win by; added to a per-row `margin` column", resume=True)
    center_coef: float = opt(0.0, "reward-centering weight λ on (r_w + r_l)², keeps rewards near zero mean (0.01 is common)", min=0, resume=True)
    keep_dropout: bool = opt(False, "train with the backbone's dropout (default: dropout off)", resume=True)
    eval_every: int = opt(100, "steps between evaluations; 0: start and end only", min=0)
    save_every: int = opt(100, "steps between checkpoints for --resume; 0: none", min=0)
    keep_checkpoints: int = opt(1, "how many recent checkpoints to keep", min=1)
    log_every: int = opt(10, "steps per train_log.jsonl line", min=1)
    eval_batch_size: int = opt(32, "texts per scoring call", min=1)
    seed: int = opt(0, "seed for the eval split, batch order, head init and dropout", resume=True)
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")
    bf16: Bf16 = opt("auto", "bf16 autocast; auto = on CUDA only")
    trust_remote_code: bool = opt(False, "allow model code from the hub (off by default)")
    allow_pickle: bool = opt(False, PICKLE_HELP)
    resume: bool = opt(False, "continue from the latest checkpoint in OUT (same settings)")
    lr: InitVar[float | None] = None  # deprecated spelling of learning_rate (one release)

    # Changing these between a run and its --resume would silently change what is trained.
    RESUME_KEYS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self, lr: float | None) -> None:
        if lr is not None:
            warnings.warn("RMTrainConfig(lr=...) is deprecated; use learning_rate", DeprecatedOptionWarning, stacklevel=3)
            self.learning_rate = lr

    def validate(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


RMTrainConfig.RESUME_KEYS = resume_keys(RMTrainConfig)
