"""Models: the embedded default policy and tokenizer, and loading of HF checkpoints.

* :func:`build_tokenizer`: byte-level BPE + ChatML/Hermes chat template, trained on a corpus;
* :func:`build_model` / :func:`create_embedded`: a tiny Qwen2 saved in HF format;
* :func:`load_model_and_tokenizer`: load the embedded model or any causal LM checkpoint from a
  local folder, checked first by :func:`check_model_dir` (:class:`ModelPathError`; nothing is
  ever downloaded);
* :func:`load_starting_policy`: the shipped cold-started policy of an environment, verified
  against its manifest (:mod:`spear.models.shipped`).
"""

from spear.models.embedded import build_model, count_parameters, create_embedded, load_model_and_tokenizer
from spear.models.local import ModelPathError, check_model_dir
from spear.models.shipped import (
    StartingPolicyError,
    load_starting_policy,
    starting_policy_dir,
    verify_starting_policy,
)
from spear.models.tokenizer import build_tokenizer

__all__ = [
    "ModelPathError",
    "StartingPolicyError",
    "build_model",
    "build_tokenizer",
    "check_model_dir",
    "count_parameters",
    "create_embedded",
    "load_model_and_tokenizer",
    "load_starting_policy",
    "starting_policy_dir",
    "verify_starting_policy",
]
