"""Data parallelism over task groups (spear.trainer.parallel), run as two CPU processes with gloo.

The sharded update must give the single-process update, and a two-process
``accelerate`` run must keep its replicas identical while logging one global batch.
"""

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from transformers import Qwen2Config, Qwen2ForCausalLM

from spear.trainer.actor import LossSettings, UpdateBatch, policy_update
from spear.trainer.config import load_config
from spear.trainer.parallel import DataParallel

LOSS = LossSettings(
    mode="vanilla",  # Clip-Cov draws random tokens per micro-batch: equal only in distribution
    agg_mode="token-mean",
    clip_low=0.2,
    clip_high=0.28,
    clip_c=10.0,
    cov_ratio=0.2,
    cov_lb=-10.0,
    cov_ub=10.0,
    kl_coef=0.1,
    entropy_coeff=0.01,
    norm_length=None,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
    )
    return Qwen2ForCausalLM(config)


def random_batch(rows: int = 13, prompt: int = 5, response: int = 7) -> UpdateBatch:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 64, (rows, prompt + response), generator=g)
    mask = (torch.rand(rows, response, generator=g) > 0.3).float()
    mask[3] = 0.0  # a row without valid tokens, as filters produce
    attention = torch.ones(rows, prompt + response, dtype=torch.long)
    return UpdateBatch(
        input_ids=ids,
        attention_mask=attention,
        position_ids=attention.cumsum(-1) - 1,
        prompt_length=prompt,
        response_mask=mask,
        old_log_prob=(-torch.rand(rows, response, generator=g) * 3) * mask,
        advantages=torch.randn(rows, 1, generator=g) * mask,
    )


def update(model, parallel=None):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return policy_update(
        model,
        optimizer,
        random_batch(),
        LOSS,
        mini_batch_size=6,  # mini-batches of 6, 6, 1 rows: uneven micro-batch shares
        micro_batch_size=2,
        epochs=2,
        generator=torch.Generator().manual_seed(0),
        parallel=parallel,
    )


def _sharded_update_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    model = tiny_model()
    metrics = update(model, DataParallel(rank, world))
    torch.save({"params": model.state_dict(), "metrics": metrics}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_shard_splits_rows_contiguously_and_completely():
    shards = [DataParallel(r, 3).shard(4, 14) for r in range(3)]
    assert shards == [(4, 7), (7, 10), (10, 14)]
    assert DataParallel(1, 4).shard(0, 2) == (0, 1)
    assert DataParallel(0, 4).shard(0, 2) == (0, 0)  # a process may get no rows of a mini-batch
    # in micro-batch units: 7 rows = blocks of 2, 2, 2, 1 -> 2 blocks each
    assert [DataParallel(r, 2).shard(0, 7, unit=2) for r in range(2)] == [(0, 4), (4, 7)]
    assert [DataParallel(r, 3).shard(0, 3, unit=2) for r in range(3)] == [(0, 0), (0, 2), (2, 3)]


def test_two_process_update_equals_single_process_update(tmp_path):
    single = tiny_model()
    expected = update(single)
    mp.spawn(_sharded_update_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name, value in single.state_dict().items():
        torch.testing.assert_close(
            ranks[0]["params"][name], value, atol=2e-5, rtol=1e-4
        )  # summation order only
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name])  # replicas identical
    got = ranks[0]["metrics"]
    assert got["optimizer_steps"] == expected["optimizer_steps"] == 6.0  # 3 mini-batches x 2 epochs
    assert got["pg_loss"] == pytest.approx(expected["pg_loss"], rel=1e-4)
    assert got["grad_norm"] == pytest.approx(expected["grad_norm"], rel=1e-4)


def _train_worker(rank: int, world: int, port: int, overrides: list[str], out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    from spear.trainer.loop import Trainer
    from spear.trainer.run import train

    fit = Trainer.fit

    def fit_and_keep(self, **kwargs):  # each process's own replica after training
        summary = fit(self, **kwargs)
        torch.save(self.model.state_dict(), Path(out) / f"final{rank}.pt")
        return summary

    Trainer.fit = fit_and_keep
    train(load_config("grpo", overrides), run_dir=Path(out) / "run", quiet=True)


def test_accelerate_two_process_run_keeps_replicas_identical(tmp_path):
    sizes = {"vocab_size": 300, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1}
    from spear.trainer.embedded import build_embedded

    build_embedded(
        tmp_path / "base",
        "household",
        {"num_receptacles": 4, "num_distractors": 0, "max_turns": 2},
        {**sizes, "intermediate_size": 64},
    )
    overrides = [
        f"model.path={tmp_path / 'base'}",
        "steps=2",
        "env.name=household",
        "env.options={num_receptacles: 4, num_distractors: 0, max_turns: 2}",
        "rollout.tasks_per_step=4",
        "rollout.group_size=2",
        "rollout.max_new_tokens=8",
        "actor.mini_batch_size=8",
        "actor.micro_batch_size=4",
        "eval.every=0",
        "eval.final_episodes=2",
        "checkpoint.every=2",
        "logging.tensorboard=false",
        "logging.plots=false",
    ]
    mp.spawn(_train_worker, args=(2, free_port(), overrides, str(tmp_path)), nprocs=2, join=True)
    finals = [torch.load(tmp_path / f"final{r}.pt") for r in range(2)]
    for name in finals[0]:
        assert torch.equal(finals[0][name], finals[1][name]), name
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "rollout/success_rate" in x]
    assert [x["step"] for x in steps] == [1, 2]  # logged once, by the main process
    assert all(x["rollout/episodes"] == 8 for x in steps)  # the global batch: 4 tasks x 2 copies
    assert (tmp_path / "run" / "final_model" / "config.json").is_file()


def test_sharded_launch_modes_are_refused_by_name():
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from spear.trainer.config import ConfigError

    fsdp = SimpleNamespace(distributed_type=DistributedType.FSDP, num_processes=2, process_index=0)
    with pytest.raises(ConfigError, match="FSDP is not supported"):
        DataParallel.from_accelerator(fsdp)
    single = SimpleNamespace(distributed_type=DistributedType.NO, num_processes=1, process_index=0)
    assert DataParallel.from_accelerator(single) is None
