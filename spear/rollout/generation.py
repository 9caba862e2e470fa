"""Batched sampling with a KV cache, written as a plain decode loop.

The rollout engine needs three things ``model.generate`` does not hand back
cheaply: the *exact* sampled token ids, the behaviour log-probability of every
sampled token, and stop strings cut at a token boundary. The loop here is the
textbook one: left-pad the prompts, prefill once into a dynamic KV cache, then
feed one token per active row per step, dropping finished rows from the cache.

Log-probabilities (spec 2.2 step 7):

* ``logprobs`` are ``log_softmax(logits)`` of the raw logits, i.e. the policy at
  temperature 1.0. This is what verl recomputes as ``old_log_prob`` before the
  update, so the RL ratio pi_theta / pi_old compares like with like whatever
  temperature the rollout sampled at.
* ``sampling_logprobs`` are the log-probabilities under the distribution the
  token was actually drawn from (temperature and top-p applied; 0.0 for greedy).
  They equal ``logprobs`` when temperature == 1 and top_p == 1.

Three decoders run the same loop (``decode``, docs/ROLLOUT.md):

* ``eager`` (the reference): a dynamic cache (:class:`ReservedCache`) that grows by one
  column a step and drops finished rows, so every forward pass computes only live rows.
* ``static``: a preallocated ``StaticCache`` whose shape is fixed for the whole call
  (rows rounded up to a power of two, columns to a multiple of 128): finished and
  filler rows keep decoding and are ignored. Fixed shapes are what a compiler needs.
* ``compiled``: ``static`` with the decode step under ``torch.compile`` (CUDA graphs
  on a GPU, ``mode="reduce-overhead"``), compiled once per model and shape bucket.

All three sample from the live rows' logits only, so the generator draws the same
random numbers, and the same tokens come out; log-probs agree up to float summation
order (attention over a longer, masked cache; a larger batch), tested to 1e-5.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import DynamicCache, PreTrainedTokenizerBase, StaticCache
from transformers.cache_utils import DynamicLayer

FinishReason = Literal["eos", "stop", "length"]
DECODERS: tuple[str, ...] = ("eager", "static", "compiled")
CACHE_COLUMNS = 128  # a static cache's length is rounded up to a multiple of this


@dataclass
class Generation:
    """One row's output: sampled ids, their log-probs, and why sampling ended."""

    token_ids: list[int]
    logprobs: list[float]
    sampling_logprobs: list[float]
    finish_reason: FinishReason


class StopChecker:
    """Detects stop strings by decoding only the tail of a row.

    A token can complete a stop string only if its own text holds the string's
    last character (or is a partial UTF-8 byte, which decodes to U+FFFD); only
    then is the tail decoded. A stop string of L bytes spans at most L tokens,
    because every token is at least one byte.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase | None, stop: Sequence[str]) -> None:
        self.stop = tuple(s for s in stop if s)
        if self.stop and tokenizer is None:
            raise ValueError("stop strings need a tokenizer to decode the generated tail")
        self.tokenizer = tokenizer
        self.last_chars = {s[-1] for s in self.stop} | {"\ufffd"}
        self.tail_tokens = max((len(s.encode("utf-8")) for s in self.stop), default=0)
        self._pieces: dict[int, str] = {}

    def _piece(self, token_id: int) -> str:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self.tokenizer.decode([token_id], skip_special_tokens=False)  # type: ignore[union-attr]
            self._pieces[token_id] = piece
        return piece

    def completes(self, token_ids: list[int]) -> bool:
        """True when the last token of ``token_ids`` completes a stop string."""
        if not self.stop or not token_ids:
            return False
        piece = self._piece(token_ids[-1])
        if not any(c in piece for c in self.last_chars):
            return False
        tail = self.tokenizer.decode(token_ids[-self.tail_tokens :], skip_special_tokens=False)  # type: ignore[union-attr]
        return any(s in tail for s in self.stop)


class ReservedLayer(DynamicLayer):
    """A ``DynamicLayer`` that appends in place into reserved room instead of concatenating.

    ``DynamicLayer.update`` copies the whole cache at every new token (``torch.cat``),
    which made up about half of a CPU decode step at 300 tokens of context. Here the
    first update allocates its length plus ``reserve`` columns and later tokens are
    written into them; ``keys`` / ``values`` are views of the filled part, so attention
    sees exactly the tensors the concatenating layer would hold (same values, same
    length: the outputs are bit for bit the same, tested). Beyond the reserve the
    room doubles.
    """

    def __init__(self, reserve: int) -> None:
        super().__init__()
        self.reserve = reserve
        self.length = 0

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if self.length == 0:
            self.key_room = _room(key_states, new + self.reserve)
            self.value_room = _room(value_states, new + self.reserve)
        elif self.length + new > self.key_room.shape[-2]:
            grow = max(self.key_room.shape[-2], new)
            self.key_room = torch.cat([self.key_room, _room(self.key_room, grow)], dim=-2)
            self.value_room = torch.cat([self.value_room, _room(self.value_room, grow)], dim=-2)
        self.key_room[:, :, self.length : self.length + new] = key_states
        self.value_room[:, :, self.length : self.length + new] = value_states
        self.length += new
        self._view()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.length:
            self.key_room, self.value_room = self.key_room[indices], self.value_room[indices]
            self._view()

    def _view(self) -> None:
        self.keys = self.key_room[:, :, : self.length]
        self.values = self.value_room[:, :, : self.length]


def _room(like: torch.Tensor, columns: int) -> torch.Tensor:
    """Uninitialised ``[B, H, columns, D]`` storage shaped and typed like ``like``."""
    return like.new_empty((*like.shape[:2], columns, like.shape[-1]))


class ReservedCache(DynamicCache):
    """A ``DynamicCache`` of :class:`ReservedLayer` layers with ``reserve`` columns of room."""

    def __init__(self, reserve: int) -> None:
        super().__init__()
        self.layer_class_to_replicate = functools.partial(ReservedLayer, reserve)


def left_pad(
    prompts: Sequence[Sequence[int]], pad_token_id: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad ``prompts``; return (input_ids, attention_mask, position_ids).

    Position ids count real tokens only, so a left-padded row sees the same
    positions as it would unpadded (padding positions get 0; they are masked).
    """
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if len(prompt):
            ids[row, width - len(prompt) :] = torch.as_tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to -inf every logit outside the smallest set of mass >= ``top_p`` (nucleus)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= top_p  # the most likely token always has mass_before == 0: kept
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def cache_argument(model: torch.nn.Module) -> str:
    """The name under which the model's ``forward`` takes the KV cache.

    transformers 5 renamed ``past_key_values`` to ``cache``; the old name warns and
    is due to be removed (in 5.40), while releases before the rename only know it.
    A peft wrapper forwards ``**kwargs``, so the wrapped model's signature decides.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def prefill(
    model: torch.nn.Module, prompts: Sequence[Sequence[int]], pad_token_id: int, cache: DynamicCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the prompts through the model once; return (last logits, attention mask, next positions).

    Identical prompts (the G copies of a task on their first turn) are computed
    once and their cache rows repeated, which divides the prefill cost by G.
    """
    device = next(model.parameters()).device
    first_index: dict[tuple[int, ...], int] = {}
    inverse = [first_index.setdefault(tuple(p), len(first_index)) for p in prompts]
    unique = [list(p) for p in first_index]
    input_ids, attention_mask, positions = left_pad(unique, pad_token_id, device)
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{cache_argument(model): cache},
    ).logits[:, -1, :]
    if len(unique) < len(prompts):
        expand = torch.tensor(inverse, device=device)
        cache.batch_select_indices(expand)
        logits, attention_mask, positions = logits[expand], attention_mask[expand], positions[expand]
    return logits, attention_mask, positions[:, -1] + 1


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick one token per row; return (tokens, log-prob at T=1, log-prob under the sampler)."""
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    if temperature == 0.0:
        tokens = logits.argmax(dim=-1)
        sampled_logp = torch.zeros(tokens.shape, dtype=logp.dtype, device=logp.device)
    else:
        plain = temperature == 1.0 and top_p >= 1.0
        sampler_logp = logp if plain else torch.log_softmax(top_p_filter(logits / temperature, top_p), dim=-1)
        tokens = torch.multinomial(sampler_logp.exp(), 1, generator=generator).squeeze(-1)
        sampled_logp = sampler_logp.gather(-1, tokens[:, None]).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1), sampled_logp


def _check_args(n_rows: int, budgets: list[int], temperature: float, top_p: float) -> None:
    if len(budgets) != n_rows:
        raise ValueError(f"max_new_tokens has {len(budgets)} entries for {n_rows} prompts")
    if any(b < 1 for b in budgets):
        raise ValueError("max_new_tokens must be >= 1 for every row")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


class EagerDecoder:
    """The reference decoder: a dynamic cache that drops finished rows (module docstring)."""

    def __init__(
        self, model: torch.nn.Module, prompts: Sequence[Sequence[int]], pad_token_id: int, max_new_tokens: int
    ) -> None:
        self.model = model
        self.cache = ReservedCache(max_new_tokens)
        self.cache_kwarg = cache_argument(model)
        self.first_logits, self.attention_mask, self.next_positions = prefill(
            model, prompts, pad_token_id, self.cache
        )

    def step(self, tokens: torch.Tensor, keep: list[int]) -> torch.Tensor:
        """Feed ``tokens`` ``[n]`` (one per live row), keep the rows at positions ``keep``;
        return the next logits of the kept rows ``[len(keep), V]``."""
        if len(keep) < tokens.shape[0]:
            index = torch.tensor(keep, device=tokens.device)
            self.cache.batch_select_indices(index)
            tokens, self.attention_mask = tokens[index], self.attention_mask[index]
            self.next_positions = self.next_positions[index]
        self.attention_mask = torch.cat(
            [self.attention_mask, self.attention_mask.new_ones((len(keep), 1))], dim=1
        )
        logits = self.model(
            input_ids=tokens[:, None],
            attention_mask=self.attention_mask,
            position_ids=self.next_positions[:, None],
            use_cache=True,
            **{self.cache_kwarg: self.cache},
        ).logits[:, -1, :]
        self.next_positions = self.next_positions + 1
        return logits


_COMPILED: weakref.WeakKeyDictionary[torch.nn.Module, Callable] = weakref.WeakKeyDictionary()


def compiled_forward(model: torch.nn.Module) -> Callable:
    """``model.forward`` under ``torch.compile``, made once per model and reused by every call.

    On a GPU the decode step is captured as a CUDA graph (``reduce-overhead``): one
    launch instead of hundreds of small kernels. Each shape bucket is compiled once;
    the recompile limit is raised so that a run's few buckets all stay compiled.
    """
    forward = _COMPILED.get(model)
    if forward is None:
        cuda = next(model.parameters()).device.type == "cuda"
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        forward = torch.compile(model.forward, mode="reduce-overhead" if cuda else None, dynamic=False)
        _COMPILED[model] = forward
    return forward


class StaticDecoder:
    """A fixed-shape decoder over a ``StaticCache`` (module docstring), eager or compiled.

    The batch holds ``rows`` slots (the prompts, then copies of the first prompt as
    filler) and the cache ``columns`` positions; a live row keeps its slot, a finished
    row's slot is fed padding, and only the live slots' logits are returned.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        prompts: Sequence[Sequence[int]],
        pad_token_id: int,
        max_new_tokens: int,
        *,
        compiled: bool,
    ) -> None:
        n = len(prompts)
        self.rows = 1 << (n - 1).bit_length()
        width = max(len(p) for p in prompts)
        columns = -(-(width + max_new_tokens) // CACHE_COLUMNS) * CACHE_COLUMNS
        device = next(model.parameters()).device
        padded = list(prompts) + [prompts[0]] * (self.rows - n)
        input_ids, prompt_mask, positions = left_pad(padded, pad_token_id, device)
        self.attention_mask = torch.zeros((self.rows, columns), dtype=torch.long, device=device)
        self.attention_mask[:, :width] = prompt_mask
        self.cache = StaticCache(config=model.config, max_cache_len=columns)
        self.cache_kwarg = cache_argument(model)
        self.pad_token_id = pad_token_id
        self.forward = compiled_forward(model) if compiled else model
        self.first_logits = model(  # the prefill is not compiled: its width changes every call
            input_ids=input_ids,
            attention_mask=self.attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kwarg: self.cache},
        ).logits[:n, -1, :]
        self.column = width
        self.next_positions = positions[:, -1] + 1
        self.slots = torch.arange(n, device=device)  # the slot of each live row

    def step(self, tokens: torch.Tensor, keep: list[int]) -> torch.Tensor:
        """As :meth:`EagerDecoder.step`."""
        if len(keep) < tokens.shape[0]:
            index = torch.tensor(keep, device=tokens.device)
            tokens, self.slots = tokens[index], self.slots[index]
        input_ids = torch.full((self.rows, 1), self.pad_token_id, dtype=torch.long, device=tokens.device)
        input_ids[self.slots, 0] = tokens
        self.attention_mask[:, self.column] = 1
        logits = self.forward(
            input_ids=input_ids,
            attention_mask=self.attention_mask,
            position_ids=self.next_positions[:, None],
            use_cache=True,
            **{self.cache_kwarg: self.cache},
        ).logits
        self.column += 1
        self.next_positions = self.next_positions + 1
        return logits[self.slots, -1, :]


def generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int | Sequence[int],
    pad_token_id: int,
    eos_token_ids: Sequence[int] = (),
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: Sequence[str] = (),
    tokenizer: PreTrainedTokenizerBase | None = None,
    generator: torch.Generator | None = None,
    decode: str = "eager",
) -> list[Generation]:
    """Sample continuations of ``prompts`` (token id lists) in one batched decode loop.

    A row ends at an EOS id (kept, reason ``eos``), when a token completes a stop
    string (that token is kept, reason ``stop``), or after its ``max_new_tokens``
    (an int, or one budget per row; reason ``length``). ``temperature == 0`` is
    greedy decoding. ``generator`` makes sampling reproducible; it must live on
    the model's device. ``decode`` picks the decoder (:data:`DECODERS`, module docstring).
    """
    if not prompts:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if decode not in DECODERS:
        raise ValueError(f"decode must be one of {DECODERS}, got {decode!r}")
    budgets = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    _check_args(len(prompts), budgets, temperature, top_p)
    checker = StopChecker(tokenizer, stop)
    eos = set(int(t) for t in eos_token_ids)
    # compiled graphs are traced outside inference mode (what torch.compile and CUDA graphs support best)
    with torch.inference_mode() if decode == "eager" else torch.no_grad():
        if decode == "eager":
            decoder: EagerDecoder | StaticDecoder = EagerDecoder(model, prompts, pad_token_id, max(budgets))
        else:
            decoder = StaticDecoder(model, prompts, pad_token_id, max(budgets), compiled=decode == "compiled")
        logits = decoder.first_logits
        active = list(range(len(prompts)))  # original row of each live row
        outputs = [Generation([], [], [], "length") for _ in prompts]
        while True:
            tokens, logp, sampled_logp = sample_next(logits, temperature, top_p, generator)
            still_active: list[int] = []
            for pos, (row, token, lp, slp) in enumerate(
                zip(active, tokens.tolist(), logp.tolist(), sampled_logp.tolist(), strict=True)
            ):
                out = outputs[row]
                out.token_ids.append(token)
                out.logprobs.append(lp)
                out.sampling_logprobs.append(slp)
                if token in eos:
                    out.finish_reason = "eos"
                elif checker.completes(out.token_ids):
                    out.finish_reason = "stop"
                elif len(out.token_ids) >= budgets[row]:
                    out.finish_reason = "length"
                else:
                    still_active.append(pos)
            if not still_active:
                return outputs
            logits = decoder.step(tokens, still_active)
            active = [active[p] for p in still_active]
