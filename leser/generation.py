"""Generation backends for evaluation: batched transformers on CPU, vLLM when a GPU is present.

Both take the same chat messages (from leser.prompts.build_messages, as stored in the split files) and apply
the checkpoint's own chat template, so a completion depends on the model and the sampling seed, not the backend's
prompt handling. torch, transformers and vllm are imported inside functions so that importing this module is free.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.5  # the paper's evaluation temperature (Table 2: 5 runs at T = 0.5)
    max_new_tokens: int = 256
    top_p: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class GenerationResult:
    texts: list[str]
    seconds: float
    new_tokens: int

    @property
    def queries_per_s(self) -> float:
        return len(self.texts) / self.seconds if self.seconds > 0 else float("inf")


_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def _hub_cache_folder(model_id: str) -> Path | None:
    """The local snapshot of Hugging Face model `model_id` (e.g. meta-llama/Llama-3.2-3B-Instruct, as `make sft`
    downloads it for the GPU recipes), or None when it is not in the cache; never downloads."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # no huggingface_hub: nothing can be cached; the caller's error says what to pass
        return None
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except OSError:  # LocalEntryNotFoundError (a FileNotFoundError): not in the cache
        return None


def resolve_checkpoint(path: str | Path) -> Path:
    """The model folder to load: `path` itself when it holds config.json (or adapter_config.json), else the
    newest `checkpoint-<step>` below it (ms-swift writes `OUT/v<N>-<date>/checkpoint-<step>`): highest step, then
    newest modification time; a Hugging Face id (`owner/name`, not a folder here) is its snapshot in the local
    cache. Raises FileNotFoundError naming `path` when none exists."""
    root = Path(path)
    if (root / "config.json").is_file() or (root / "adapter_config.json").is_file():
        return root
    if not root.exists() and _HUB_ID.fullmatch(str(path)):
        cached = _hub_cache_folder(str(path))
        if cached is not None and (cached / "config.json").is_file():
            return cached
        raise FileNotFoundError(
            f"{path}: not a folder here, and not a Hugging Face model in the local cache (download it, e.g. by "
            "`make sft`, or give a model folder)"
        )
    candidates = [
        p for p in root.glob("**/checkpoint-*") if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)
    ]
    if not candidates:
        raise FileNotFoundError(f"{root}: no config.json and no checkpoint-<step> folder below it")
    return max(candidates, key=lambda p: (int(p.name.split("-")[1]), p.stat().st_mtime))


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def release_memory() -> None:
    """Free what dropped models still hold: collect any reference cycle that would keep their tensors until a later
    GC pass, and return PyTorch's cached CUDA blocks to the device, so that the next model, or a vLLM engine sizing
    itself by free memory, can have them. torch is only consulted when already loaded."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class TransformersGenerator:
    """Batched sampling with transformers: left padding, the checkpoint's chat template, one seed per run."""

    def __init__(self, model_dir: str | Path, batch_size: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = resolve_checkpoint(model_dir)
        self.batch_size = batch_size
        # trust_remote_code=False: a checkpoint folder is data, never code to run
        self.tokenizer = AutoTokenizer.from_pretrained(
            self.model_dir, padding_side="left", trust_remote_code=False
        )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if (self.model_dir / "adapter_config.json").is_file():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(self.model_dir).merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(
                self.model_dir, dtype=torch.float32, trust_remote_code=False
            )
        # On a GPU without vLLM (e.g. a machine where only transformers is installed) generate there: float32 as on
        # the CPU, so a checkpoint samples from the same distribution on both.
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()

    def close(self) -> None:
        """Drop the model and tokenizer and free their memory; this generator cannot generate afterwards."""
        self.model = self.tokenizer = None
        release_memory()

    def generate(
        self, conversations: list[Messages], sampling: SamplingConfig, progress: bool = True
    ) -> GenerationResult:
        import torch
        from tqdm import tqdm

        prompts = [
            self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
            for m in conversations
        ]
        # Longest prompts first: batches hold prompts of similar length (less padding) and OOM shows up early.
        lengths = [len(self.tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        texts: list[str] = [""] * len(prompts)
        new_tokens = 0
        torch.manual_seed(sampling.seed)
        start = time.perf_counter()
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        for batch in tqdm(
            batches, desc=f"generate {self.model_dir.name}", unit="batch", disable=not progress
        ):
            encoded = self.tokenizer(
                [prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            kwargs = {"do_sample": sampling.temperature > 0, "max_new_tokens": sampling.max_new_tokens}
            if sampling.temperature > 0:
                kwargs |= {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0}
            with torch.inference_mode():
                output = self.model.generate(**encoded, **kwargs, pad_token_id=self.tokenizer.pad_token_id)
            completions = output[:, encoded.input_ids.shape[1] :]
            for row, i in enumerate(batch):
                ids = completions[row]
                new_tokens += int((ids != self.tokenizer.pad_token_id).sum())
                texts[i] = self.tokenizer.decode(ids, skip_special_tokens=True)
        return GenerationResult(texts, time.perf_counter() - start, new_tokens)


class VLLMGenerator:
    """The same prompts through vLLM (GPU). Sampling seeds are per request, so a run is reproducible."""

    def __init__(self, model_dir: str | Path, gpu_memory_utilization: float = 0.5):
        from vllm import LLM

        self.model_dir = resolve_checkpoint(model_dir)
        self.llm = LLM(model=str(self.model_dir), gpu_memory_utilization=gpu_memory_utilization, seed=0)

    def close(self) -> None:
        """Shut the engine down and free its weights and KV cache; this generator cannot generate afterwards.

        vLLM's V1 engine core owns the GPU memory (in a child process by default) and is stopped by its own
        `shutdown`, which otherwise runs only when garbage collection finalizes the engine; `LLM.shutdown` is used
        where the installed vLLM has it."""
        llm, self.llm = self.llm, None
        if llm is not None:
            engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            shutdown = getattr(llm, "shutdown", None) or getattr(engine_core, "shutdown", None)
            if shutdown is not None:
                shutdown()
            del llm, engine_core, shutdown
        release_memory()

    def generate(
        self, conversations: list[Messages], sampling: SamplingConfig, progress: bool = True
    ) -> GenerationResult:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                seed=sampling.seed * 1_000_003 + i,
            )
            for i in range(len(conversations))
        ]
        start = time.perf_counter()
        outputs = self.llm.chat(conversations, params, use_tqdm=progress)
        seconds = time.perf_counter() - start
        texts = [o.outputs[0].text for o in outputs]
        return GenerationResult(texts, seconds, sum(len(o.outputs[0].token_ids) for o in outputs))


def load_generator(model_dir: str | Path, backend: str = "auto", batch_size: int = 8):
    """`backend`: "transformers", "vllm", or "auto" (vLLM when a GPU and vLLM are present, else transformers)."""
    resolve_checkpoint(model_dir)  # a wrong folder fails here, before seconds of importing torch
    if backend == "auto":
        # vLLM when a GPU is present and vLLM is installed; otherwise transformers (on the GPU when there is one)
        backend = "vllm" if gpu_available() and importlib.util.find_spec("vllm") else "transformers"
    if backend == "vllm":
        return VLLMGenerator(model_dir)
    if backend == "transformers":
        return TransformersGenerator(model_dir, batch_size=batch_size)
    raise ValueError(f"unknown generation backend {backend!r}: expected auto, transformers or vllm")
