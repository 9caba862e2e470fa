"""Models come from local folders only: a bad path is named before transformers is asked."""

import shutil

import pytest

from spear.models import ModelPathError, check_model_dir, load_model_and_tokenizer, starting_policy_dir

SHIPPED = starting_policy_dir("household")


@pytest.fixture
def no_transformers(monkeypatch):
    """Any call into transformers' loaders (which would try the Hub for a non-folder) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("transformers was asked to load (and might have tried to download)")

    import spear.models.embedded as embedded

    monkeypatch.setattr(embedded.AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.setattr(embedded.AutoModelForCausalLM, "from_pretrained", refuse)


def test_a_missing_path_says_so_and_that_nothing_is_downloaded(tmp_path, no_transformers):
    for path in (tmp_path / "nowhere", "Qwen/Qwen2.5-1.5B-Instruct"):
        with pytest.raises(ModelPathError) as caught:
            load_model_and_tokenizer(path)
        assert str(caught.value) == (
            f"model path {path} does not exist "
            "(spear loads models from local folders only; no download is attempted)"
        )


def test_a_file_is_not_a_model_folder(tmp_path, no_transformers):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelPathError, match=r"is a file, not a model folder"):
        check_model_dir(tmp_path / "model.safetensors")


def test_a_folder_without_a_model_names_what_is_missing(tmp_path, no_transformers):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelPathError) as caught:
        load_model_and_tokenizer(empty)
    message = str(caught.value)
    assert message.startswith(f"model path {empty} holds no model: it has no config.json, no weights")
    assert "no tokenizer" in message and "no download is attempted" in message
    assert "does not exist" not in message

    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(SHIPPED / name, partial / name)
    with pytest.raises(ModelPathError, match=r"holds no model: it has no weights \(model\.safetensors"):
        check_model_dir(partial)
    shutil.copy(SHIPPED / "model.safetensors", partial / "model.safetensors")
    assert check_model_dir(partial) == partial


def test_a_run_directory_points_to_its_final_model(tmp_path, no_transformers):
    shutil.copytree(SHIPPED, tmp_path / "final_model")
    with pytest.raises(ModelPathError, match=r"keeps its trained model in .*final_model"):
        check_model_dir(tmp_path)


def test_an_unreadable_model_is_a_model_path_error(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED, broken)
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(ModelPathError, match=r"config.json is not valid JSON"):
        load_model_and_tokenizer(broken)  # found by the folder check, before transformers is asked


def test_a_real_folder_loads(no_transformers, monkeypatch):
    assert check_model_dir(str(SHIPPED)) == SHIPPED
    monkeypatch.undo()
    model, tokenizer = load_model_and_tokenizer(SHIPPED)
    assert tokenizer.pad_token is not None and model.config.model_type == "qwen2"
