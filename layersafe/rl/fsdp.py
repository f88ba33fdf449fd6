"""The language model sharded over a launch's processes (torch FSDP2, ``fully_shard``), for LoRA
training of models whose weights do not fit one GPU (docs/scale.md, "Bigger than one GPU").

Each decoder layer of the language model is one FSDP unit (its weights, LoRA included, are split
over the processes and gathered for its forward and backward); the wrapped VLM is the root unit.
Everything outside the decoder layers (vision tower, projector, embeddings, final norm, LM head)
stays whole on every process: the trainers call the encoder, the projector and the input
embeddings outside the VLM's forward (encode once, cache the features, build ``inputs_embeds``),
where FSDP would leave their weights sharded (docs/scale.md says what fails). The decoder layers
hold nearly all the weights (Vicuna-7B: 6.5 of 7.1 B), so this is what has to be sharded.

Gradients are averaged over the processes as under DDP, so the trainers' token-share weighting
(each process's loss × its share of the batch's target tokens × N) gives the one-process update.

``align`` (``--shard-model``) also decodes on the sharded model: every decode step runs every
decoder layer, which gathers its weights (a collective), so all processes must run the same number
of steps although their rows stop at different lengths (:func:`synced_generate`).
"""

from __future__ import annotations

import torch

from ..errors import UserError


def shard_language_model(root: torch.nn.Module, language_model: torch.nn.Module, device: torch.device, *,
                         fp32_units: tuple[torch.nn.Module, ...] = ()) -> None:
    """``fully_shard`` each decoder layer of ``language_model`` and then ``root`` (the peft model, or
    align's policy), leaving every parameter outside the decoder layers unsharded, all on ``device``
    (this process's GPU, or the CPU). The model may come loaded on the CPU: the parts outside the
    decoder layers are moved whole, and FSDP moves each decoder layer as it shards it, so no GPU ever
    holds more than one whole layer. ``fp32_units`` (align's value head) are units of their own that
    compute in fp32 whatever the base dtype; as units their gradients are averaged like the LoRA
    weights'. In place; call before the optimizer is built (the parameters become DTensors)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    import torch.distributed as dist

    layers = getattr(language_model, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not len(layers):
        raise UserError(f"{type(language_model).__name__} has no decoder-layer list (.layers) to shard")
    base = next(p.dtype for n, p in layers.named_parameters() if "lora_" not in n)
    # bf16 base + fp32 LoRA in one unit: gather and compute in the base dtype (FSDP2 all-gathers one
    # dtype per unit), reduce gradients in fp32.
    mp = (MixedPrecisionPolicy(param_dtype=base, reduce_dtype=torch.float32)
          if base in (torch.bfloat16, torch.float16) else MixedPrecisionPolicy())
    inside = {id(t) for m in (layers, *fp32_units) for t in (*m.parameters(), *m.buffers())}
    with torch.no_grad():
        for m in root.modules():  # what stays whole goes to the device now
            for t in (*m._parameters.values(), *m._buffers.values()):
                if t is not None and id(t) not in inside and t.device != device:
                    t.data = t.data.to(device)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    for layer in layers:
        fully_shard(layer, mesh=mesh, mp_policy=mp)
    for unit in fp32_units:
        fully_shard(unit, mesh=mesh, mp_policy=MixedPrecisionPolicy())
    fully_shard(root, mesh=mesh, mp_policy=mp,
                ignored_params={p for p in root.parameters() if id(p) not in inside})


def sharding_summary(model: torch.nn.Module) -> dict:
    """For run.json: how many parameters are sharded, and how many of them this process holds."""
    from torch.distributed.tensor import DTensor

    sharded = [p for p in model.parameters() if isinstance(p, DTensor)]
    return {"sharded_params": sum(p.numel() for p in sharded), "sharded_params_here": sum(p.to_local().numel() for p in sharded),
            "whole_params": sum(p.numel() for p in model.parameters() if not isinstance(p, DTensor))}


def full(t: torch.Tensor) -> torch.Tensor:
    """A (possibly sharded) tensor in full on this process (a collective for a DTensor)."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def full_trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable parameter in full, on the CPU, under its unsharded name. Every process must
    call it (one all-gather per sharded parameter); the LoRA weights only, never the base."""
    return {n: full(p.detach()).cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def full_optimizer_state(model: torch.nn.Module, optimizer) -> dict:
    """The optimizer state gathered in full on the CPU (keyed by parameter name); every process calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def sum_across(t: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over the processes (one all-reduce), as a detached copy."""
    import torch.distributed as dist

    t = t.detach().clone()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t


def load_full_trainable(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load what :func:`full_trainable` gathered (every process holds the full tensors: it read the
    checkpoint) into this process's shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))


def load_full_optimizer_state(model: torch.nn.Module, optimizer, state: dict) -> None:
    """Load what :func:`full_optimizer_state` gathered into this process's shards of the optimizer state."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def synced_generate(root: torch.nn.Module, model: torch.nn.Module, generate):
    """``generate()`` (an adapter's generate, which calls ``model.generate``) on the sharded model.

    - Stock ``generate`` gets ``synced_gpus=True``: a process whose rows have all stopped keeps
      running (and discarding) forward passes until every process's rows have, so every decoder
      layer gathers its weights the same number of times on every process. (transformers turns it
      on by itself only for a model it sharded; ``model`` is inside ``root``, which we sharded.)
    - The call runs inside ``root``'s forward (``root(generate)``: align's policy runs a callable
      it is given), so FSDP's root hooks frame the decoder layers' forwards as in training: the
      first forward through the root is the one that sets the sharded model up, and the all-gathers
      wait for the last optimizer step.
    """
    import functools

    model.generate = functools.partial(type(model).generate, model, synced_gpus=True)
    try:
        return root(generate)
    finally:
        del model.generate
