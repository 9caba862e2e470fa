"""Method.shape_rewards by hand: which turns the invalid-action penalty applies to (spec 3.10)
and what the tool bonus counts (spec 3.1)."""

import numpy as np
import pytest
import torch

from spear.rollout.batch import RolloutBatch, Row, TrajectoryRecord
from spear.trainer.config import ConfigError, load_config
from spear.trainer.method import Method

# one episode of three turns: an unparsable response, a well-formed action the environment
# rejected ("Nothing happens."), a valid action (the one tool call the environment reported);
# no win, no tool bonus (preset grpo)
TURNS = [
    {"invalid_action": True, "format_error": True},
    {"invalid_action": True, "format_error": False},
    {"invalid_action": False, "format_error": False},
]


def episode(layout: str, env_reward: float = 0.0) -> RolloutBatch:
    def meta(turn: int, flags: dict) -> dict:
        return {
            "group_id": "g",
            "traj_id": "g-0",
            "traj_index": 0,
            "turn_index": turn,
            "anchor_obs": "obs",
            "step_reward": 0.0,
            "tool_calls": 0,
            "env_done": False,
            "is_last_turn": turn == 2,
            "finish_reason": "stop",
            "failed": False,
            **flags,
        }

    record = TrajectoryRecord(
        "g", "g-0", seed=0, turns=3, tool_calls=1, invalid_actions=2, format_errors=1, env_reward=env_reward
    )
    if layout == "turn":
        rows = [Row([1], [2], [1], [-1.0], [-1.0], meta(t, flags)) for t, flags in enumerate(TURNS)]
        record.rows = [0, 1, 2]
    else:
        rows = [Row([1], [2, 3, 4], [1, 1, 1], [-1.0] * 3, [-1.0] * 3, meta(2, TURNS[0]))]
        record.rows = [0]
    return RolloutBatch.from_rows(rows, [record], pad_token_id=0, layout=layout)


def scores(layout: str, *overrides: str, env_reward: float = 0.0) -> list[float]:
    config = load_config("grpo", ["env.name=household", "algorithm.invalid_penalty=0.1", *overrides])
    return Method(config, None, "react").shape_rewards(episode(layout, env_reward), step=1).tolist()


def with_bonus(layout: str, *overrides: str, env_reward: float = 0.0) -> list[float]:
    """Scores with the tool bonus at full weight: lambda_tool = 1 at every step."""
    return scores(layout, "algorithm.tool_reward.schedule=constant", *overrides, env_reward=env_reward)


def test_by_default_only_format_errors_are_penalised_as_in_the_official_projection():
    assert scores("turn") == pytest.approx([-0.1, 0.0, 0.0])
    assert scores("trajectory") == pytest.approx([-0.1])  # one row: 0.1 per penalised turn


def test_invalid_action_also_penalises_rejected_well_formed_actions():
    on = "algorithm.invalid_penalty_on=invalid_action"
    assert scores("turn", on) == pytest.approx([-0.1, -0.1, 0.0])
    assert scores("trajectory", on) == pytest.approx([-0.2])


def test_an_unknown_choice_is_refused():
    with pytest.raises(ConfigError, match="invalid_penalty_on"):
        load_config("grpo", ["algorithm.invalid_penalty_on=everything"])
    with pytest.raises(ConfigError, match=r"tool_reward\.count"):
        load_config("spear", ["algorithm.tool_reward.count=tokens"])


def test_the_agent_tool_bonus_counts_every_turn_the_environment_was_active():
    # spec 3.1: n_k = episode_lengths = 3 turns, rejected and unparsable ones included;
    # bonus min(1, 0.1 x 3) = 0.3 on every row, minus 0.1 on the format-error turn
    assert with_bonus("turn") == pytest.approx([0.2, 0.3, 0.3])
    assert with_bonus("trajectory") == pytest.approx([0.2])


def test_the_tool_bonus_can_count_the_reported_tool_calls_instead():
    # n_k = 1 tool call: bonus 0.1 (the math scripts' count, and spear's before the switch)
    assert with_bonus("turn", "algorithm.tool_reward.count=tool_calls") == pytest.approx([0.0, 0.1, 0.1])


def test_a_won_episode_gets_the_capped_bonus_by_default():
    # R_ext 10 + min(1, 0.1 x 3) = 10.3, minus 0.1 on the format-error turn
    assert with_bonus("turn", env_reward=10.0) == pytest.approx([10.2, 10.3, 10.3])


def test_any_call_on_success_gives_a_won_episode_the_whole_weight_for_one_call():
    # spec 3.1, posneg_decay_qwen3: R_ext > 0 -> + 1[n > 0] lambda = 1.0 for its 3 turns...
    qwen3 = "algorithm.tool_reward.on_success=any_call"
    assert with_bonus("turn", qwen3, env_reward=10.0) == pytest.approx([10.9, 11.0, 11.0])
    assert with_bonus("trajectory", qwen3, env_reward=1.0) == pytest.approx([1.9])
    # ...while a failed episode keeps the capped bonus, 0.3
    assert with_bonus("turn", qwen3, env_reward=-1.0) == pytest.approx([-0.8, -0.7, -0.7])
    with pytest.raises(ConfigError, match=r"tool_reward\.on_success"):
        load_config("spear", ["algorithm.tool_reward.on_success=always"])


def test_math_counts_tool_calls_and_the_agent_environments_count_turns():
    assert load_config("spear", ["env.name=math"])["algorithm"]["tool_reward"]["count"] == "tool_calls"
    for env in ("household", "shop"):
        assert load_config("spear", [f"env.name={env}"])["algorithm"]["tool_reward"]["count"] == "turns"


# ---------------------------------------------------------------- the low-variance group filter
# four groups of two 2-turn episodes, in the order g0, g2, g3, g1: g0 has a win (10) and a
# loss; g1, g2, g3 all fail, and g1's first episode has one unparsable response
GROUP_ORDER = ["g0", "g2", "g3", "g1"]


def four_groups() -> RolloutBatch:
    rows, records = [], []
    for group in GROUP_ORDER:
        for copy in range(2):
            traj = len(records)
            won = group == "g0" and copy == 0
            record = TrajectoryRecord(group, f"{group}-{copy}", seed=0, turns=2, won=won)
            record.env_reward = 10.0 if won else 0.0
            for turn in range(2):
                bad = group == "g1" and copy == 0 and turn == 0
                meta = {
                    "group_id": group,
                    "traj_id": f"{group}-{copy}",
                    "traj_index": traj,
                    "turn_index": turn,
                    "anchor_obs": f"obs{turn}",
                    "step_reward": 10.0 if won and turn == 1 else 0.0,
                    "tool_calls": 0 if bad else 1,
                    "env_done": turn == 1,
                    "is_last_turn": turn == 1,
                    "finish_reason": "stop",
                    "failed": False,
                    "invalid_action": bad,
                    "format_error": bad,
                }
                record.rows.append(len(rows))
                rows.append(Row([1], [2], [1], [-1.0], [-1.0], meta))
            records.append(record)
    return RolloutBatch.from_rows(rows, records, pad_token_id=0, layout="turn")


def kept_groups(*overrides: str) -> list[str]:
    config = load_config("grpo", ["env.name=household", "algorithm.group_filter.ratio=0.75", *overrides])
    batch = four_groups()
    keep = Method(config, None, "react").filter_groups(batch, step=1)
    return list(dict.fromkeys(batch.group_id[keep].tolist()))


def test_the_group_filter_ranks_rewards_before_the_invalid_action_penalty():
    # official (spec 2.2 steps 6 and 8): trajectory-mean stds g0 5, g2 0, g3 0, g1 0 -> keep
    # the first 3 of 4 in order of appearance among ties
    assert kept_groups("algorithm.group_filter.power_of_two_rows=false") == ["g0", "g2", "g3"]
    # ranked on penalised scores, g1's episodes average -0.05 and 0 (std 0.025): it displaces g3
    penalised = ["algorithm.group_filter.power_of_two_rows=false", "algorithm.group_filter.penalised=true"]
    assert kept_groups(*penalised) == ["g0", "g2", "g1"]  # rows stay in batch order


def test_the_group_filter_then_keeps_a_random_power_of_two_subset_of_rows():
    config = load_config("grpo", ["env.name=household", "algorithm.group_filter.ratio=0.75"])
    batch = four_groups()
    method = Method(config, None, "react")
    keep = method.filter_groups(batch, step=1)
    assert len(keep) == 8  # 3 groups x 2 episodes x 2 turns = 12 rows -> 8 (spec 3.7, agent)
    assert set(batch.group_id[keep].tolist()) <= {"g0", "g2", "g3"}
    assert keep.tolist() == sorted(keep.tolist())
    assert method.filter_groups(batch, step=1).tolist() == keep.tolist()  # seeded by (seed, step)


def test_math_keeps_whole_groups():
    config = load_config("spear", ["env.name=math"])
    assert config["algorithm"]["group_filter"] | {"ratio": None} == {
        "ratio": None,
        "kind": "std",
        "penalised": False,
        "power_of_two_rows": False,
        "ddof": 1,
    }


# ---------------------------------------------------------------- what the SIL buffer stores
def test_a_stored_row_keeps_its_advantage_not_its_mean_over_padding():
    """decay recalibration scales A itself (spec 3.2): A = 5 on the 2 valid tokens of a
    3-token row is stored as 5 (the padded mean would be 3.33) and replayed as 0.1 x 5."""
    from spear.algo.replay import ReplayBuffer

    batch = episode("trajectory")
    buffer = ReplayBuffer(recalibration="decay", decay=0.1, capacity=1, power_of_two=False)
    config = load_config("spear")
    stored = Method(config, None, "react").store(
        buffer,
        batch,
        scores=np.array([10.0]),
        response_mask=torch.tensor([[1.0, 1.0, 0.0]]),
        old_log_prob=torch.tensor([[-1.0, -1.0, 0.0]]),
        advantages=torch.tensor([[5.0, 5.0, 0.0]]),
        step=1,
    )
    assert stored == 1
    assert buffer.sample().advantages.tolist() == pytest.approx([0.5])


# ---------------------------------------------------------------- the length-unbiased loss
def sum_norm(*overrides: str) -> float | None:
    config = load_config("drbot", list(overrides))
    return Method(config, None, "react").loss_settings(replay=False).norm_length


def test_seq_mean_token_sum_norm_divides_by_the_padded_response_budget():
    # spec 3.6: L_max is the padded width, a constant (the agents' 512 per turn, math's
    # data.max_response_length), so every token of a mini-batch weighs 1 / L_max
    assert sum_norm("rollout.max_new_tokens=32") == 32.0
    trajectory = ["rollout.layout=trajectory", "rollout.max_response_tokens=4096"]
    assert sum_norm(*trajectory) == 4096.0
    # spear before the switch: each micro-batch's longest row (aggregate takes the width)
    assert sum_norm(*trajectory, "actor.sum_norm_length=micro_batch") is None
    assert load_config("grpo")["actor"]["agg_mode"] == "token-mean"
    assert Method(load_config("grpo"), None, "react").loss_settings(replay=True).norm_length is None


def gigpo_batch() -> RolloutBatch:
    """One group of two copies of four turns; copy 0 wins at its last turn (step rewards
    0, 0, 0, 10), copy 1 never does."""
    rows, records = [], []
    for copy in range(2):
        record = TrajectoryRecord("g", f"g-{copy}", seed=0, turns=4, won=copy == 0)
        record.env_reward = 10.0 if copy == 0 else 0.0
        for turn in range(4):
            meta = {
                "group_id": "g",
                "traj_id": f"g-{copy}",
                "traj_index": copy,
                "turn_index": turn,
                "anchor_obs": f"obs{turn}",
                "step_reward": 10.0 if copy == 0 and turn == 3 else 0.0,
                "tool_calls": 1,
                "env_done": turn == 3,
                "is_last_turn": turn == 3,
                "finish_reason": "stop",
                "failed": False,
                "invalid_action": False,
                "format_error": False,
            }
            record.rows.append(len(rows))
            rows.append(Row([1], [2], [1], [-1.0], [-1.0], meta))
        records.append(record)
    return RolloutBatch.from_rows(rows, records, pad_token_id=0, layout="turn")


@pytest.mark.parametrize("dropped", [3, 1])
def test_gigpo_returns_are_discounted_over_whole_trajectories_before_rows_are_dropped(dropped):
    """The official order (core_gigpo.py before _filter_rollout): a filter that drops turn 3
    (or 1) of the winning copy leaves the other turns' returns as they were on the whole
    trajectory, 10 x 0.95^(3 - t), not recomputed from the rows that are left (which would
    give turn 0 a return of 0, or 10 x 0.95^2)."""
    method = Method(load_config("gigpo", ["algorithm.gigpo.mode=mean_norm"]), None, "react")
    batch = gigpo_batch()
    returns = method.step_returns(batch)
    assert returns[:4].tolist() == pytest.approx([10 * 0.95**3, 10 * 0.95**2, 10 * 0.95, 10.0])
    keep = np.array([row for row in range(8) if row != dropped])
    kept = batch.select(keep)
    scores = method.shape_rewards(kept, step=1)
    step_part = method.advantages(kept, scores, returns[keep]) - method.advantages(kept, scores, np.zeros(7))
    # turn 0 of both copies shares anchor obs0: returns 8.57 and 0, mean 4.29 (mean_norm: no std)
    weight = method.config["algorithm"]["gigpo"]["step_weight"]
    assert float(step_part[0]) == pytest.approx(weight * 10 * 0.95**3 / 2, rel=1e-5)
    with pytest.raises(ValueError, match="needs step_returns"):
        method.advantages(kept, scores)
