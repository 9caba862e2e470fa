"""Where a math policy's copies fail: teacher-forced accuracy on the expert's held-out conversations.

    .venv/bin/python scripts/math_copy_probe.py --model DIR [--episodes 60] [--threads 1]

The scripted expert (no noise) plays held-out problems ``0 .. episodes-1`` with the settings
``DIR`` was built with (its ``manifest.json``, written by scripts/build_starting_policy.py);
each of its responses is fed to the model teacher-forced, and a token counts as right when
the model's most likely next token is the expert's. Reported: every response token; the
number tokens of the first response (the program: the question's numbers when the program
pastes the question's line); and inside the final answer's ``\\boxed{...}``, the first token,
the later ones and whole answers. With ``code_answers`` the program answers and there is no
final-answer turn. docs/envs/math.md reads these numbers.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import replace
from typing import Any

import torch

from spear.models.embedded import load_model_and_tokenizer
from spear.models.shipped import read_manifest
from spear.rollout.batch import RolloutBatch
from spear.rollout.engine import RolloutEngine
from spear.trainer.loop import rollout_config
from spear.trainer.sft import NoisyExpert


def expert_batch(
    model: torch.nn.Module, tokenizer: Any, config: dict[str, Any], episodes: int
) -> RolloutBatch:
    """The expert's held-out conversations as a turn-layout batch (one row per response)."""
    # the build's own demonstration settings (the scripted expert does not sample), one row a turn
    settings = replace(rollout_config(config, group_size=1, temperature=1.0), layout="turn")
    options = {**config["env"]["options"], "split": "eval"}
    engine = RolloutEngine(model, tokenizer, settings, env_options=options)
    try:
        return engine.collect("math", list(range(episodes)), policy=NoisyExpert(0.0, keep_think=True))
    finally:
        engine.close()


def row_tokens(batch: RolloutBatch, i: int) -> tuple[list[int], int]:
    """Row ``i``'s prompt and response tokens without padding, and where the response starts."""
    p = batch.prompt_length
    prompt = batch.input_ids[i, :p][batch.attention_mask[i, :p].bool()]
    response = batch.responses[i][batch.response_mask[i].bool()]
    return torch.cat([prompt, response]).tolist(), len(prompt)


def boxed_span(texts: list[str], start: int) -> range:
    """Positions of the answer's tokens: after the last ``\\boxed`` token, up to its ``}``."""
    opens = [p for p in range(start, len(texts)) if "boxed" in texts[p]]
    if not opens:
        return range(0)
    end = next((p for p in range(opens[-1] + 1, len(texts)) if texts[p].startswith("}")), len(texts))
    first = opens[-1] + 1 + (texts[opens[-1] + 1 : opens[-1] + 2] == ["{"])  # "{" may be its own token
    return range(first, end)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model", required=True, help="a math policy folder with its manifest.json")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = read_manifest(args.model)["config"]
    if config["env"]["name"] != "math":
        raise SystemExit(f"{args.model} is a {config['env']['name']} policy; this probe reads math policies")
    model, tokenizer = load_model_and_tokenizer(args.model, dtype=torch.float32)
    batch = expert_batch(model, tokenizer, config, args.episodes)

    right, total = Counter(), Counter()
    for i in range(len(batch)):
        tokens, start = row_tokens(batch, i)
        with torch.no_grad():
            predicted = model(input_ids=torch.tensor([tokens])).logits[0].argmax(-1).tolist()
        hits = [predicted[p - 1] == tokens[p] for p in range(len(tokens))]  # hits[0] is unused
        texts = [tokenizer.decode([t]) for t in tokens]
        turn = "first response" if batch.turn_index[i] == 0 else "later responses"
        for p in range(start, len(tokens)):
            right[turn] += hits[p]
            total[turn] += 1
            if turn == "first response" and texts[p].strip().isdigit():
                right["numbers in the program"] += hits[p]
                total["numbers in the program"] += 1
        if turn == "later responses" and (span := boxed_span(texts, start)):
            for k, p in enumerate(span):
                key = "answer: first token" if k == 0 else "answer: later tokens"
                right[key] += hits[p]
                total[key] += 1
            right["answer: whole"] += all(hits[p] for p in span)
            total["answer: whole"] += 1

    print(f"{args.model}: the expert's conversations on {args.episodes} held-out problems, teacher-forced")
    for key in total:
        print(f"  {key:24s} {right[key]:5d}/{total[key]:<5d} = {right[key] / total[key]:.1%}")


if __name__ == "__main__":
    main()
