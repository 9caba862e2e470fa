"""Copy warm-up: teach a from-scratch model to copy before it imitates the expert.

An agent copies all the time: a product's words from the instruction into a search,
an option value into ``click[...]``, a question's numbers into a program, the tool's
output into ``\\boxed{}``. A transformer copies with *induction heads* (attend to the
token after an earlier occurrence of the current one), which small models form only
after many optimizer steps with a dense copying signal; the demonstrations give a few
copied tokens per turn. So, before the cold start's SFT (``sft.copy_steps`` > 0), the
embedded model trains on sequences made of the demonstrations' own tokens::

    [window of `context` tokens of a demonstration] [a span of that window, repeated]

with the loss on the repeated span's tokens after its first (the first one is the
cue: from then on each token is the one that followed in the window). The vocabulary
and text are the environment's, only the task is pure copying (docs/DESIGN.md,
"Copy warm-up").

``context`` (``sft.copy_context``) should cover how far back an agent copies from: a
prompt's question or instruction sits a few hundred tokens before the response.

With whole numbers as tokens (``model.embedded.number_tokens``) each number token is rare
in the demonstrations, so the warm-up would copy the few it sees. ``number_ids``
(``sft.copy_random_numbers``) replaces every number token of a window by one drawn
uniformly from all of them, so each is copied a few hundred times (docs/envs/math.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from spear.trainer.actor import UpdateBatch
from spear.trainer.sft import sft_optimizer, sft_step

COPY_SPAN = (4, 16)  # the repeated span's length in tokens, both ends included
COPY_BATCH = 16


def copy_examples(
    rows: list[torch.Tensor],
    batch_size: int,
    generator: torch.Generator,
    *,
    context: int,
    number_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of copy sequences and their loss mask.

    ``rows``: 1-D token id tensors of real (unpadded) text, each at least ``context`` long.
    Returns ``input_ids`` and ``loss_mask``, both ``(batch_size, context + COPY_SPAN[1])``;
    a sequence whose span is shorter than the longest is right-padded with its own last
    token and masked there. ``loss_mask[b, t]`` marks the positions whose *next* token is
    a copied one (the span's tokens after its cue). ``number_ids`` (1-D, sorted): when
    given, each of these tokens in the window is replaced by a uniformly drawn one of them.
    """
    low, high = COPY_SPAN
    width = context + high
    input_ids = torch.zeros(batch_size, width, dtype=torch.long)
    loss_mask = torch.zeros(batch_size, width, dtype=torch.bool)
    for b in range(batch_size):
        row = rows[int(torch.randint(len(rows), (1,), generator=generator))]
        start = int(torch.randint(len(row) - context + 1, (1,), generator=generator))
        window = row[start : start + context]
        if number_ids is not None:
            window = _random_numbers(window, number_ids, generator)
        length = int(torch.randint(low, high + 1, (1,), generator=generator))
        at = int(torch.randint(context - length + 1, (1,), generator=generator))
        span = window[at : at + length]
        sequence = torch.cat([window, span])
        input_ids[b, : len(sequence)] = sequence
        input_ids[b, len(sequence) :] = sequence[-1]
        # position p predicts token p + 1: the span's tokens 1.. sit at context + 1 ..
        loss_mask[b, context : context + length - 1] = True
    return input_ids, loss_mask


def _random_numbers(
    window: torch.Tensor, number_ids: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``window`` with each token in ``number_ids`` replaced by a uniformly drawn one of them."""
    is_number = torch.isin(window, number_ids)
    drawn = number_ids[torch.randint(len(number_ids), (int(is_number.sum()),), generator=generator)]
    return window.masked_scatter(is_number, drawn)


def copy_warmup(
    model: torch.nn.Module,
    data: UpdateBatch,
    *,
    steps: int,
    lr: float,
    context: int,
    seed: int = 0,
    number_ids: torch.Tensor | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """``steps`` AdamW steps of cross-entropy on copied tokens; returns the loss per step.

    ``data``: the demonstrations (their left-padded ``input_ids`` and ``attention_mask``,
    prompt and response); rows shorter than the copy context are not used. The optimiser
    is the SFT's (:func:`~spear.trainer.sft.sft_optimizer`). ``number_ids``: see
    :func:`copy_examples`.
    """
    if steps < 1 or context < 1 or not lr > 0:
        raise ValueError(f"steps, context and lr must be positive, got {steps}, {context}, {lr}")
    rows = [ids[mask.bool()] for ids, mask in zip(data.input_ids, data.attention_mask, strict=True)]
    rows = [row for row in rows if len(row) >= context]
    if not rows:
        raise ValueError(f"copy warm-up needs demonstration rows of at least copy_context={context} tokens")
    optimizer, scheduler = sft_optimizer(model, lr, steps)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        input_ids, loss_mask = copy_examples(
            rows, COPY_BATCH, generator, context=context, number_ids=number_ids
        )
        logits = model(input_ids=input_ids, use_cache=False).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[loss_mask], input_ids[:, 1:][loss_mask[:, :-1]])
        losses.append(sft_step(model, optimizer, scheduler, loss))
        if progress is not None:
            progress(step + 1, steps, losses[-1])
    model.eval()
    return losses
