"""Training data distilled from teachers: the SFT, SFT-LLM, GRPO and evaluation splits (`python -m leser.distill`).

`teachers.py`: the rules teacher and an OpenAI-compatible endpoint; `splits.py`: query splits, rejection sampling
through the LESER reward, ms-swift JSONL.
"""
