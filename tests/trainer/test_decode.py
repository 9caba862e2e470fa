"""The fixed-shape decoder samples what the reference decoder samples, step after step (issue 38)."""

import torch
from micro import make_trainer


def _run(base_model, run_dir, decode: str, steps: int) -> tuple[list, list]:
    trainer = make_trainer(base_model, run_dir, f"rollout.decode={decode}")
    batches = []
    collect = trainer.rollout

    def recording(step):
        batch = collect(step)
        batches.append(batch)
        return batch

    trainer.rollout = recording
    metrics = [trainer.train_step(step) for step in range(1, steps + 1)]
    return batches, metrics


def test_a_static_decoder_run_samples_the_eager_runs_tokens_at_every_step(base_model, tmp_path):
    """Same weights and seed: the same tokens at each of three RL steps, with behaviour
    log-probs equal up to float summation order (the cache is longer and masked)."""
    eager, eager_metrics = _run(base_model, tmp_path / "eager", "eager", 3)
    static, static_metrics = _run(base_model, tmp_path / "static", "static", 3)
    for e, s in zip(eager, static, strict=True):
        assert torch.equal(s.input_ids, e.input_ids) and torch.equal(s.response_mask, e.response_mask)
        torch.testing.assert_close(s.old_log_prob, e.old_log_prob, rtol=0, atol=1e-5)
    assert static_metrics[-1]["rollout/success_rate"] == eager_metrics[-1]["rollout/success_rate"]
