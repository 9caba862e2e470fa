"""A batch of environment instances stepped together (docs/ROLLOUT.md).

The rollout engine plays B task seeds x G copies at once (spec 2.2 step 1). An
:class:`EnvPool` holds those ``num_envs`` instances and steps them as a batch::

    pool = EnvPool("household", 16, env_options={"split": "train"})
    resets = pool.reset([7] * 8 + [9] * 8)          # one EnvReset per slot
    results = pool.step([text_a, None, text_c, ...])  # None: slot inactive, skipped

``workers=0`` keeps the environments in this process (cheap environments).
``workers>0`` shards them over worker processes (``forkserver``/``spawn``,
talking through pipes), for costly or fragile environments (TextWorld); a
script doing so needs the usual ``if __name__ == "__main__":`` guard.

An environment that raises, or (with workers) takes longer than
``step_timeout_s`` or kills its process, fails *its slot only*: the slot's
result has ``done=True``, ``info["failed"] = True`` and ``info["env_error"]``;
the rollout masks that trajectory out of the loss and the batch goes on. A hung
or dead worker is killed and restarted with fresh environments, and the other
live slots of its shard are restored by replaying ``reset(seed)`` plus their
past actions (environments are deterministic given the seed and the actions);
a slot whose replayed observation differs from the recorded one fails too.
In-process mode cannot pre-empt a hung environment: use workers for those.

A return value that breaks the protocol (``reset`` not returning ``(str, dict)``, ``step``
not returning a :class:`~spear.envs.base.StepResult` with every key of ``INFO_KEYS``) is a
bug in the environment that would fail every slot: it raises
:class:`~spear.envs.base.EnvProtocolError` in the caller, also from a worker process.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from spear.envs import _resolve
from spear.envs.base import (
    Env,
    EnvProtocolError,
    StepResult,
    check_reset_result,
    check_step_result,
    step_info,
)

_ERROR_CHARS = 500
_TRACEBACK_CHARS = 20_000
_START_TIMEOUT_S = 120.0
_JOIN_TIMEOUT_S = 5.0


@dataclass
class EnvReset:
    """What resetting one slot gave: the first observation and episode metadata.

    The metadata (instruction, admissible actions, tool schemas) is copied out of
    the environment so the caller never needs the environment object, which may
    live in another process.
    """

    observation: str
    info: dict[str, Any]
    instruction: str = ""
    admissible_actions: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    failed: bool = False
    error: str | None = None


@dataclass(frozen=True)
class EnvSpec:
    """Static facts about the pool's environment class."""

    name: str
    action_format: str
    max_turns: int
    prompt_role: str | None = None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]


def _traceback_text(exc: BaseException) -> str:
    """The full traceback of an environment's exception (what its author needs to fix it)."""
    return "".join(traceback.format_exception(exc))[-_TRACEBACK_CHARS:]


def failed_step(message: str, detail: str | None = None) -> StepResult:
    """The result of a slot whose environment failed (spec: masked out of the loss);
    ``detail``: the exception's traceback, kept as ``info["env_traceback"]``."""
    extra = {"env_traceback": detail} if detail else {}
    return StepResult("", 0.0, True, step_info(env_error=message, failed=True, **extra))


def failed_reset(message: str, detail: str | None = None) -> EnvReset:
    info = {"env_error": message, "failed": True, **({"env_traceback": detail} if detail else {})}
    return EnvReset("", info, failed=True, error=message)


def _admissible(env: Env) -> list[str] | None:
    actions = env.admissible_actions
    return None if actions is None else list(actions)


def run_reset(env: Env, seed: int) -> EnvReset:
    """Reset one environment, turning an exception it raises into a failed slot; a return
    value that breaks the protocol raises :class:`EnvProtocolError` (every slot would fail)."""
    try:
        returned = env.reset(seed)
    except Exception as exc:
        return failed_reset(_error_text(exc), _traceback_text(exc))
    observation, info = check_reset_result(env, returned)
    try:
        return EnvReset(
            observation=observation,
            info=dict(info),
            instruction=str(info.get("instruction", env.instruction)),
            admissible_actions=_admissible(env),
            tools=env.tools,
        )
    except Exception as exc:
        return failed_reset(_error_text(exc), _traceback_text(exc))


def run_step(env: Env, action: str) -> StepResult:
    """Step one environment; add the admissible actions of the new state to ``info``. An
    exception fails the slot; a return value that breaks the protocol raises
    :class:`EnvProtocolError`."""
    try:
        returned = env.step(action)
    except Exception as exc:
        return failed_step(_error_text(exc), _traceback_text(exc))
    result = check_step_result(env, returned)
    try:
        info = dict(result.info)
        if "admissible_actions" not in info and env.admissible_actions is not None:
            info["admissible_actions"] = _admissible(env)
        return StepResult(str(result.observation), float(result.reward), bool(result.done), info)
    except Exception as exc:
        return failed_step(_error_text(exc), _traceback_text(exc))


def run_replay(env: Env, seed: int, actions: list[str], last_observation: str) -> str | None:
    """Rebuild an episode's state after a worker restart; return an error or None."""
    reset = run_reset(env, seed)
    if reset.failed:
        return f"replay after worker restart failed: {reset.error}"
    observation = reset.observation
    for action in actions:
        result = run_step(env, action)
        if result.info.get("failed"):
            return f"replay after worker restart failed: {result.info['env_error']}"
        observation = result.observation
    if observation != last_observation:
        return "replay after worker restart reached a different state (non-deterministic environment)"
    return None


def _spec_of(env: Env) -> EnvSpec:
    return EnvSpec(
        name=env.name,
        action_format=env.action_format,
        max_turns=int(env.max_turns),
        prompt_role=env.prompt_role,
    )


@dataclass
class _Job:
    kind: str  # "reset" | "step" | "replay"
    slot: int
    payload: Any
    budget_s: float


def _run_job(env: Env, job: _Job) -> Any:
    if job.kind == "reset":
        return run_reset(env, job.payload)
    if job.kind == "step":
        return run_step(env, job.payload)
    seed, actions, last_observation = job.payload
    return run_replay(env, seed, actions, last_observation)


def _job_failure(job: _Job, message: str) -> Any:
    if job.kind == "reset":
        return failed_reset(message)
    if job.kind == "step":
        return failed_step(message)
    return message


def _worker_main(
    conn: Connection, factory: Callable[..., Env], options: dict[str, Any], slots: list[int]
) -> None:
    """Worker process: build this shard's environments, then run job lists until told to stop.

    Ctrl-C and SIGTERM are left to the training process, which stops at a step boundary and
    ends its workers through the pipe (or ``kill``): a terminal's Ctrl-C reaches the whole
    process group, and a worker killed by it mid-evaluation would fail its episodes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        envs = {slot: factory(**options) for slot in slots}
    except BaseException as exc:
        conn.send(("init_error", _error_text(exc)))
        return
    conn.send(("ready", _spec_of(envs[slots[0]])))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        for job in message:
            try:
                result = _run_job(envs[job.slot], job)
            except EnvProtocolError as exc:  # the parent raises it: the run stops
                conn.send(("protocol_error", job.slot, str(exc)))
                continue
            try:
                conn.send(("result", job.slot, result))
            except Exception as exc:  # an unpicklable info value fails only this slot
                conn.send(
                    ("result", job.slot, _job_failure(job, f"result not transferable: {_error_text(exc)}"))
                )
    for env in envs.values():
        with contextlib.suppress(Exception):
            env.close()


class _Worker:
    """Parent-side handle of one worker process and its shard of slots."""

    def __init__(
        self, ctx: Any, factory: Callable[..., Env], options: dict[str, Any], slots: list[int]
    ) -> None:
        self.ctx, self.factory, self.options, self.slots = ctx, factory, options, slots
        self.process: Any = None
        self.conn: Connection | None = None

    def start(self) -> None:
        parent_conn, child_conn = self.ctx.Pipe()
        self.process = self.ctx.Process(
            target=_worker_main, args=(child_conn, self.factory, self.options, self.slots), daemon=True
        )
        self.process.start()
        child_conn.close()
        self.conn = parent_conn

    def wait_ready(self, timeout_s: float) -> EnvSpec:
        """Block until the worker built its environments; raise RuntimeError otherwise."""
        assert self.conn is not None
        if not self.conn.poll(timeout_s):
            self.kill()
            raise RuntimeError(f"environment worker did not start within {timeout_s:.0f}s")
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise RuntimeError("environment worker died while building its environments") from exc
        if kind != "ready":
            self.kill()
            raise RuntimeError(f"environment worker could not build its environments: {payload}")
        return payload

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join(_JOIN_TIMEOUT_S)
        if self.conn is not None:
            self.conn.close()
        self.process, self.conn = None, None

    def close(self) -> None:
        if self.conn is not None and self.alive:
            try:
                self.conn.send(None)
                self.process.join(_JOIN_TIMEOUT_S)
            except (OSError, BrokenPipeError):
                pass
        self.kill()


@dataclass
class _SlotState:
    """What the pool remembers of a slot's episode (to replay it after a restart)."""

    seed: int | None = None
    actions: list[str] = field(default_factory=list)
    last_observation: str = ""
    running: bool = False
    error: str | None = None


def _resolve_factory(name_or_factory: str | Callable[..., Env]) -> tuple[str, Callable[..., Env]]:
    if isinstance(name_or_factory, str):
        return name_or_factory, _resolve(name_or_factory)
    if callable(name_or_factory):
        return getattr(name_or_factory, "__name__", "env"), name_or_factory
    raise ValueError(f"name_or_factory must be an environment name or a callable, got {name_or_factory!r}")


def _shards(num_envs: int, workers: int) -> list[list[int]]:
    base, extra = divmod(num_envs, workers)
    shards, start = [], 0
    for w in range(workers):
        size = base + (1 if w < extra else 0)
        shards.append(list(range(start, start + size)))
        start += size
    return shards


class EnvPool:
    """``num_envs`` environment instances reset and stepped as one batch.

    Args:
        name_or_factory: a registered environment name (:func:`spear.envs.make`)
            or a callable returning an :class:`~spear.envs.base.Env` (module-level
            when ``workers > 0``, so that it pickles).
        num_envs: number of slots.
        env_options: keyword arguments of every environment (e.g. ``split``).
        workers: 0 = in this process; N > 0 = N worker processes (at most num_envs).
        step_timeout_s: a reset or step taking longer fails its slot (workers only).
        start_method: ``forkserver`` or ``spawn`` (``fork`` is unsafe with torch threads).
    """

    def __init__(
        self,
        name_or_factory: str | Callable[..., Env],
        num_envs: int,
        *,
        env_options: dict[str, Any] | None = None,
        workers: int = 0,
        step_timeout_s: float = 30.0,
        start_method: str = "forkserver",
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
        if not step_timeout_s > 0:
            raise ValueError(f"step_timeout_s must be > 0, got {step_timeout_s!r}")
        if start_method not in ("forkserver", "spawn"):
            raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {start_method!r}")
        if env_options is not None and not isinstance(env_options, dict):
            raise ValueError(f"env_options must be a dict, got {type(env_options).__name__}")
        label, factory = _resolve_factory(name_or_factory)
        self.num_envs = num_envs
        self.step_timeout_s = float(step_timeout_s)
        self._slots = [_SlotState() for _ in range(num_envs)]
        self._envs: list[Env] = []
        self._workers: list[_Worker] = []
        options = dict(env_options or {})
        if workers == 0:
            self._envs = [factory(**options) for _ in range(num_envs)]
            self.spec = _spec_of(self._envs[0])
        else:
            ctx = mp.get_context(start_method)
            self._workers = [
                _Worker(ctx, factory, options, s) for s in _shards(num_envs, min(workers, num_envs))
            ]
            try:
                for worker in self._workers:
                    worker.start()
                specs = [worker.wait_ready(_START_TIMEOUT_S) for worker in self._workers]
            except BaseException:
                self.close()
                raise
            self.spec = specs[0]
        self.label = label

    # -- public API ---------------------------------------------------------
    @property
    def action_format(self) -> str:
        return self.spec.action_format

    @property
    def max_turns(self) -> int:
        return self.spec.max_turns

    @property
    def workers(self) -> int:
        return len(self._workers)

    def __len__(self) -> int:
        return self.num_envs

    def env(self, slot: int) -> Env:
        """The environment object of ``slot`` (in-process pools only), e.g. to ask its ``solver()``."""
        if not self._envs:
            raise ValueError(
                "env(slot) needs an in-process pool (workers=0): the envs live in worker processes"
            )
        if not 0 <= slot < self.num_envs:
            raise ValueError(f"slot must be in [0, {self.num_envs}), got {slot}")
        return self._envs[slot]

    def reset(self, seeds: list[int]) -> list[EnvReset]:
        """Reset every slot: slot i starts the task of ``seeds[i]``."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"seeds has {len(seeds)} entries for a pool of {self.num_envs} environments")
        jobs = [_Job("reset", i, int(seed), self.step_timeout_s) for i, seed in enumerate(seeds)]
        results = self._run(jobs)
        return [results[i] for i in range(self.num_envs)]

    def step(self, actions: list[str | None]) -> list[StepResult | None]:
        """Step every slot whose action is not None; skipped slots give None."""
        if len(actions) != self.num_envs:
            raise ValueError(f"actions has {len(actions)} entries for a pool of {self.num_envs} environments")
        out: list[StepResult | None] = [None] * self.num_envs
        jobs = []
        for i, action in enumerate(actions):
            if action is None:
                continue
            if self._slots[i].error is not None:
                out[i] = failed_step(
                    f"the environment failed earlier in this episode: {self._slots[i].error}"
                )
            else:
                jobs.append(
                    _Job("step", i, action if isinstance(action, str) else str(action), self.step_timeout_s)
                )
        for slot, result in self._run(jobs).items():
            out[slot] = result
        return out

    def close(self) -> None:
        """Close every environment and stop the workers."""
        for env in self._envs:
            with contextlib.suppress(Exception):
                env.close()
        self._envs = []
        for worker in self._workers:
            worker.close()
        self._workers = []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # not contextlib.suppress: at interpreter exit module globals may already be None
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass

    # -- bookkeeping --------------------------------------------------------
    def _record_reset(self, slot: int, seed: int, result: EnvReset) -> None:
        state = self._slots[slot]
        state.seed, state.actions, state.last_observation = seed, [], result.observation
        state.running, state.error = not result.failed, result.error

    def _record_step(self, slot: int, action: str, result: StepResult) -> None:
        state = self._slots[slot]
        if result.info.get("failed"):
            state.running, state.error = False, result.info.get("env_error", "environment failure")
            return
        state.actions.append(action)
        state.last_observation = result.observation
        state.running = not result.done

    def _fail_slot(self, slot: int, message: str) -> None:
        self._slots[slot].running, self._slots[slot].error = False, message

    def _complete(self, job: _Job, payload: Any, results: dict[int, Any]) -> None:
        """Record a finished job as soon as it arrives (a later restart replays from this state)."""
        if job.kind == "replay":
            if payload is not None:
                self._fail_slot(job.slot, payload)
            return
        if job.kind == "reset":
            self._record_reset(job.slot, job.payload, payload)
        else:
            error = self._slots[job.slot].error
            if error is not None and not payload.info.get("failed"):
                payload = failed_step(error)  # its replay failed: the state this step ran on was wrong
            self._record_step(job.slot, job.payload, payload)
        results[job.slot] = payload

    # -- execution ----------------------------------------------------------
    def _run(self, jobs: list[_Job]) -> dict[int, Any]:
        if self._workers:
            return self._run_in_workers(jobs)
        results: dict[int, Any] = {}
        for job in jobs:
            self._complete(job, _run_job(self._envs[job.slot], job), results)
        return results

    def _run_in_workers(self, jobs: list[_Job]) -> dict[int, Any]:
        """Send each worker its jobs; collect results one by one, recovering hung or dead workers."""
        by_slot = {job.slot: job for job in jobs}
        queues: dict[int, list[_Job]] = {}
        deadlines: dict[int, float] = {}
        results: dict[int, Any] = {}
        for w, worker in enumerate(self._workers):
            queue = [by_slot[s] for s in worker.slots if s in by_slot]
            if queue:
                queues[w] = self._dispatch(w, queue, results)
                deadlines[w] = time.monotonic() + queues[w][0].budget_s if queues[w] else 0.0
        while any(queues.values()):
            busy = {self._workers[w].conn: w for w, q in queues.items() if q}
            timeout = max(0.0, min(deadlines[w] for w in busy.values()) - time.monotonic())
            for conn in wait(list(busy), timeout=timeout):
                w = busy[conn]  # type: ignore[index]
                try:
                    kind, slot, payload = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    code = self._workers[w].process.exitcode if self._workers[w].process else None
                    self._recover(
                        w, queues, deadlines, results, f"the environment process died (exit code {code})"
                    )
                    continue
                if kind == "protocol_error":
                    raise EnvProtocolError(payload)
                job = queues[w].pop(0)
                assert job.slot == slot, "worker answered out of order"
                self._complete(job, payload, results)
                if queues[w]:
                    deadlines[w] = time.monotonic() + queues[w][0].budget_s
            now = time.monotonic()
            for w, queue in queues.items():
                if queue and now >= deadlines[w]:
                    message = f"the environment did not answer within {queue[0].budget_s:.1f}s"
                    self._recover(w, queues, deadlines, results, message)
        return results

    def _recover(
        self,
        w: int,
        queues: dict[int, list[_Job]],
        deadlines: dict[int, float],
        results: dict[int, Any],
        message: str,
    ) -> None:
        """Fail the job that hung or crashed, restart the worker, replay its shard, resend the rest."""
        culprit = queues[w].pop(0)
        self._fail_slot(culprit.slot, message)
        self._complete(culprit, _job_failure(culprit, message), results)
        worker = self._workers[w]
        worker.kill()
        remaining = [job for job in queues[w] if job.kind != "replay"]
        queues[w] = self._dispatch(w, remaining, results)
        if queues[w]:
            deadlines[w] = time.monotonic() + queues[w][0].budget_s

    def _dispatch(
        self, w: int, queue: list[_Job], results: dict[int, Any], *, retry: bool = True
    ) -> list[_Job]:
        """(Re)start worker ``w`` if needed and send it ``queue``; return the jobs now in flight."""
        worker = self._workers[w]
        if not worker.alive:
            try:
                worker.kill()
                worker.start()
                worker.wait_ready(_START_TIMEOUT_S)
            except RuntimeError as exc:
                message = f"environment worker could not be restarted: {exc}"
                for slot in worker.slots:
                    self._fail_slot(slot, message)
                for job in queue:
                    self._complete(job, _job_failure(job, message), results)
                return []
            queue = self._replay_jobs(worker, queue) + queue
        if queue:
            try:
                worker.conn.send(queue)  # type: ignore[union-attr]
            except OSError:  # it died after the liveness check: restart it once
                worker.kill()
                pending = [job for job in queue if job.kind != "replay"]
                if retry:
                    return self._dispatch(w, pending, results, retry=False)
                for job in pending:
                    self._fail_slot(job.slot, "the environment process could not be reached")
                    self._complete(
                        job, _job_failure(job, "the environment process could not be reached"), results
                    )
                return []
        return queue

    def _replay_jobs(self, worker: _Worker, queue: list[_Job]) -> list[_Job]:
        resetting = {job.slot for job in queue if job.kind == "reset"}
        jobs = []
        for slot in worker.slots:
            state = self._slots[slot]
            if state.running and state.error is None and slot not in resetting and state.seed is not None:
                budget = self.step_timeout_s * (1 + len(state.actions))
                payload = (state.seed, list(state.actions), state.last_observation)
                jobs.append(_Job("replay", slot, payload, budget))
        return jobs
