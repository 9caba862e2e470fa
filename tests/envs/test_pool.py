"""EnvPool: batched reset/step, in-process and in worker processes, with failing environments."""

from __future__ import annotations

import os
import signal
import time

import pytest

from spear.envs.actions import format_react, parse_react
from spear.envs.base import Env, StepResult, step_info
from spear.envs.pool import EnvPool

RAISE_SEED, HANG_SEED, EXIT_SEED, PID_SEED = 666, 777, 888, 999


class CountingEnv(Env):
    """Count from ``seed`` up to ``seed + 3`` with the action ``increment``.

    Some seeds misbehave on purpose: ``RAISE_SEED`` raises on the second step,
    ``HANG_SEED`` never returns from its first step, ``EXIT_SEED`` kills its
    process on the first step and ``PID_SEED`` shows its process id (so a
    replayed episode in a restarted worker cannot reach the same observation).
    """

    name = "counting"
    action_format = "react"
    max_turns = 6

    def reset(self, seed: int) -> tuple[str, dict]:
        self.seed, self.count, self.turn = seed, seed, 0
        self.instruction = f"count to {seed + 3}"
        return self._observation(), {"instruction": self.instruction}

    def _observation(self) -> str:
        suffix = f" (pid {os.getpid()})" if self.seed == PID_SEED else ""
        return f"the counter shows {self.count}{suffix}"

    @property
    def admissible_actions(self) -> list[str]:
        return ["increment", "wait"]

    def step(self, action_text: str) -> StepResult:
        self.turn += 1
        if self.seed == RAISE_SEED and self.turn == 2:
            raise RuntimeError("boom on step 2")
        if self.seed == HANG_SEED:
            time.sleep(3600)
        if self.seed == EXIT_SEED:
            os._exit(3)
        parsed = parse_react(action_text, self.admissible_actions)
        if parsed.invalid:
            return StepResult(
                f"invalid: {parsed.error}", 0.0, self.turn >= self.max_turns, step_info(invalid_action=True)
            )
        if parsed.action == "increment":
            self.count += 1
        won = self.count == self.seed + 3
        done = won or self.turn >= self.max_turns
        return StepResult(
            self._observation(),
            10.0 if won else 0.0,
            done,
            step_info(won=won, score=float(won), tool_calls=1),
        )

    def solver(self) -> str:
        return format_react("increment", "count up")


class BrokenEnv(CountingEnv):
    def __init__(self, split: str = "train") -> None:
        raise ValueError("cannot build this environment")


INCREMENT = format_react("increment", "up")


def play(pool: EnvPool, seeds: list[int], actions: list[str]) -> list[list[StepResult | None]]:
    """Reset with ``seeds`` then step every unfinished slot with ``actions`` in turn."""
    resets = pool.reset(seeds)
    done = [r.failed for r in resets]
    history = []
    for action in actions:
        results = pool.step([None if d else action for d in done])
        history.append(results)
        done = [d or (r is not None and r.done) for d, r in zip(done, results, strict=True)]
    return history


def as_tuples(history: list[list[StepResult | None]], slots: list[int]) -> list:
    return [
        [None if r is None else (r.observation, r.reward, r.done, r.info) for r in (step[s] for s in slots)]
        for step in history
    ]


def test_in_process_pool_plays_a_counting_game() -> None:
    with EnvPool(CountingEnv, 3) as pool:
        assert (pool.action_format, pool.max_turns, len(pool)) == ("react", 6, 3)
        resets = pool.reset([1, 1, 5])
        assert [r.observation for r in resets] == ["the counter shows 1"] * 2 + ["the counter shows 5"]
        assert resets[2].instruction == "count to 8" and resets[2].admissible_actions == ["increment", "wait"]
        results = pool.step([INCREMENT, None, format_react("wait")])
        assert results[1] is None
        assert results[0].observation == "the counter shows 2" and not results[0].done
        assert results[2].observation == "the counter shows 5"
        assert results[0].info["admissible_actions"] == ["increment", "wait"]
        pool.step([INCREMENT, None, None])
        final = pool.step([INCREMENT, None, None])[0]
        assert (final.reward, final.done, final.info["won"]) == (10.0, True, True)


def test_an_env_that_raises_fails_only_its_slot_in_process() -> None:
    with EnvPool(CountingEnv, 3) as pool:
        history = play(pool, [1, RAISE_SEED, 2], [INCREMENT] * 3)
        failed = history[1][1]
        assert failed.done and failed.info["failed"] and "boom on step 2" in failed.info["env_error"]
        assert history[2][1] is None  # the caller stops stepping a done slot
        assert [history[2][s].info["won"] for s in (0, 2)] == [True, True]
        # Stepping a failed slot again keeps failing until it is reset.
        again = pool.step([None, INCREMENT, None])[1]
        assert again.info["failed"] and "failed earlier" in again.info["env_error"]
        assert not pool.reset([1, 1, 1])[1].failed
        assert pool.step([None, INCREMENT, None])[1].observation == "the counter shows 2"


def test_process_mode_matches_in_process_mode_for_a_deterministic_env() -> None:
    seeds = [3, 3, 4, 10, 0]
    actions = [INCREMENT, format_react("wait"), "garbage \x00 你好", INCREMENT, INCREMENT]
    with EnvPool(CountingEnv, 5) as local, EnvPool(CountingEnv, 5, workers=2) as remote:
        assert remote.workers == 2 and remote.action_format == "react"
        assert [r.observation for r in local.reset(seeds)] == [r.observation for r in remote.reset(seeds)]
        expected = as_tuples(play(local, seeds, actions), list(range(5)))
        assert as_tuples(play(remote, seeds, actions), list(range(5))) == expected


def test_raising_hanging_and_exiting_envs_in_workers_leave_other_slots_intact() -> None:
    # Shards: worker 0 holds slots 0-2, worker 1 holds slots 3-5. Worker 1 hangs on
    # slot 3 and then dies on slot 5; slot 4 shares its process and must survive.
    seeds = [1, RAISE_SEED, 2, HANG_SEED, 3, EXIT_SEED]
    healthy = [0, 2, 4]
    with EnvPool(CountingEnv, 6) as local:
        expected = as_tuples(play(local, [1, 1, 2, 1, 3, 1], [INCREMENT] * 3), healthy)
    with EnvPool(CountingEnv, 6, workers=2, step_timeout_s=1.0) as pool:
        start = time.monotonic()
        history = play(pool, seeds, [INCREMENT] * 3)
        assert time.monotonic() - start < 20
        assert as_tuples(history, healthy) == expected
        raised, hung, exited = history[1][1], history[0][3], history[0][5]
        assert "boom on step 2" in raised.info["env_error"]
        assert "did not answer within 1.0s" in hung.info["env_error"]
        assert "process died" in exited.info["env_error"]
        assert all(r.done and r.info["failed"] for r in (raised, hung, exited))
        # The restarted worker serves new episodes normally.
        pool.reset([5] * 6)
        assert [r.observation for r in pool.step([INCREMENT] * 6)] == ["the counter shows 6"] * 6


def test_a_replay_that_reaches_another_state_fails_the_slot() -> None:
    # Slot 0 shows its pid; once slot 1 kills the shared worker, slot 0 cannot be restored.
    with EnvPool(CountingEnv, 3, workers=1, step_timeout_s=5.0) as pool:
        pool.reset([PID_SEED, EXIT_SEED, 4])
        first = pool.step([INCREMENT] * 3)
        assert first[0].observation.startswith("the counter shows 1000 (pid")
        assert "process died" in first[1].info["env_error"]
        assert first[2].observation == "the counter shows 5"
        second = pool.step([INCREMENT, None, INCREMENT])
        assert second[0].info["failed"] and "different state" in second[0].info["env_error"]
        assert second[2].observation == "the counter shows 6" and not second[2].info.get("failed")


def test_a_worker_killed_while_idle_is_restarted_and_its_episodes_replayed() -> None:
    seeds = [2, 7]
    with EnvPool(CountingEnv, 2) as local:
        expected = as_tuples(play(local, seeds, [INCREMENT] * 3), [0, 1])
    with EnvPool(CountingEnv, 2, workers=1) as pool:
        pool.reset(seeds)
        history = [pool.step([INCREMENT, INCREMENT])]
        process = pool._workers[0].process  # as if the OS killed it between two turns
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        history += [pool.step([INCREMENT, INCREMENT]) for _ in range(2)]
        assert as_tuples(history, [0, 1]) == expected


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        EnvPool(CountingEnv, 0)
    with pytest.raises(ValueError, match="workers"):
        EnvPool(CountingEnv, 2, workers=-1)
    with pytest.raises(ValueError, match="step_timeout_s"):
        EnvPool(CountingEnv, 2, step_timeout_s=0)
    with pytest.raises(ValueError, match="unknown environment"):
        EnvPool("no-such-env", 2)
    with EnvPool(CountingEnv, 2) as pool, pytest.raises(ValueError, match="seeds"):
        pool.reset([1])
    with pytest.raises(RuntimeError, match="cannot build this environment"):
        EnvPool(BrokenEnv, 2, workers=1)
