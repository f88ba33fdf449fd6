"""Utility checks (issue 9): VQA-v2 accuracy, XSTest over-refusal and reward on benign questions,
per image-encoder layer, in the scan run format."""
