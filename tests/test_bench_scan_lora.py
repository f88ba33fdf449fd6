"""benchmarks/bench_scan.py --decode-lora: the LoRA it adds is L-PPO's (language-model linears only,
non-zero B), so the timed decoder runs the same LoRA path as an L-PPO rollout."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_add_lora_targets_the_language_model_only_and_changes_the_output():
    from bench_scan import add_lora

    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import make_random_llava

    model, processor = make_random_llava(dtype=torch.float32, device=torch.device("cpu"), vision_layers=2,
                                         vision_hidden=32, text_layers=2, text_hidden=64, image_size=32,
                                         patch_size=16, initializer_range=0.5)
    ad = LlavaAdapter(model, processor, name="t", device=torch.device("cpu"))
    ids = torch.tensor([[1, 5, 7, 9]])
    before = model.get_decoder()(input_ids=ids).last_hidden_state
    assert add_lora(ad, 4) == 14  # 7 target linears x 2 decoder layers
    names = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert len(names) == 14 and all("language_model" in n for n in names)
    after = model.get_decoder()(input_ids=ids).last_hidden_state
    assert not torch.allclose(before, after)
