"""Where models come from: local folders only, checked before anything loads.

spear never downloads a model. Every command that takes a model path (``spear train
--model``, ``spear eval --model``, ``spear sft --model``, ``spear compare --model``, the
config key ``model.path``) and every checkpoint it reloads goes through
:func:`check_model_dir`, so a typo or a folder that holds no model is reported in one
sentence, instead of transformers taking the path for a Hub repository id and failing
deep inside its client ("Repo id must use alphanumeric chars ...").
"""

from __future__ import annotations

import json
from pathlib import Path

NO_DOWNLOAD = "spear loads models from local folders only; no download is attempted"
CONFIG_FILE = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


class ModelPathError(ValueError):
    """A model path that does not exist or holds no loadable model (the CLI exits with code 2)."""


def _hint(path: Path) -> str:
    """What the user probably meant, for folders that hold something else spear writes."""
    if (path / "final_model" / CONFIG_FILE).is_file():
        return f"; a spear run directory keeps its trained model in {path / 'final_model'}"
    if (path / "sft_model" / CONFIG_FILE).is_file():
        return f"; the cold-started model of this folder is {path / 'sft_model'}"
    if (path / "adapter_config.json").is_file():
        return "; it holds a LoRA adapter only (spear saves the merged model beside it, without '_adapter')"
    return ""


def check_model_dir(path: str | Path) -> Path:
    """``path`` as a Path if it is a folder holding a Hugging Face model and tokenizer.

    A model folder needs ``config.json``, weights (``model.safetensors``,
    ``pytorch_model.bin`` or the index of a sharded checkpoint) and tokenizer files
    (``tokenizer.json``, ``tokenizer.model``, ``vocab.json`` or ``vocab.txt``). Raises
    :class:`ModelPathError` saying which of these is missing, or that the path does not
    exist; nothing is ever looked up on the Hugging Face Hub.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelPathError(f"model path {path} does not exist ({NO_DOWNLOAD})")
    if not path.is_dir():
        raise ModelPathError(
            f"model path {path} is a file, not a model folder ({NO_DOWNLOAD}; pass the folder "
            "that holds config.json, the weights and the tokenizer)"
        )
    missing = []
    if not (path / CONFIG_FILE).is_file():
        missing.append(CONFIG_FILE)
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append("weights (model.safetensors, pytorch_model.bin or a sharded index)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json, tokenizer.model, vocab.json or vocab.txt)")
    if missing:
        raise ModelPathError(
            f"model path {path} holds no model: it has no {', no '.join(missing)} "
            f"({NO_DOWNLOAD}){_hint(path)}"
        )
    _check_readable(path)
    return path


def _check_readable(path: Path) -> None:
    """``config.json`` parses and every safetensors file's header is whole and covers the file
    (reads headers only): a damaged download or copy fails here in one line, not deep in
    ``from_pretrained``."""
    from safetensors import safe_open

    try:
        json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelPathError(f"model path {path}: {CONFIG_FILE} is not valid JSON ({exc})") from None
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as exc:  # SafetensorError and OSError: the file is damaged or unreadable
            raise ModelPathError(
                f"model path {path}: {weights.name} is damaged or incomplete ({exc}); copy or save it again"
            ) from None
