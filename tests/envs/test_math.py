"""The math environment (spec 4.4): tool calls, the strict boxed-answer reward, splits, the solver."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spear.envs import make
from spear.envs.actions import format_tool_call, parse_tool_calls
from spear.envs.base import task_split
from spear.envs.math import ANSWER_FORMAT, CODE_ANSWER, DEFAULT_TASKS, QUESTION_VARIABLE, TASKS, MathEnv
from spear.envs.math.answers import last_boxed, strip_latex
from spear.envs.math.tasks import Problem, dataset, is_correct
from spear.tools import CODE_INTERPRETER_SCHEMA, SandboxLimits

LIMITS = SandboxLimits(wall_time_s=2.0, cpu_time_s=2.0, memory_mb=256)


def call(code: str) -> str:
    return format_tool_call("code_interpreter", {"code": code})


def lcm_env(seed: int = 0, **options: object) -> tuple[MathEnv, int]:
    """An lcm problem and its answer, worked out here from the question text."""
    env = MathEnv(tasks=["lcm"], limits=LIMITS, **options)  # type: ignore[arg-type]
    env.reset(seed)
    numbers = [int(n) for n in re.findall(r"\d+", env.problem.question)]  # type: ignore[union-attr]
    return env, math.lcm(*numbers)


def solver_wins(env: MathEnv) -> bool:
    """Play the scripted expert from the current turn to the end of the episode."""
    for _ in range(env.max_turns):
        result = env.step(env.solver())
        if result.done:
            break
    return bool(result.info["won"])


# -- boxed-answer extraction ------------------------------------------------------------------


def test_last_boxed_handles_nesting_and_takes_the_last_box() -> None:
    assert last_boxed("so \\boxed{42}") == "42"
    assert last_boxed("\\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{1} or rather \\boxed{2}") == "2"
    assert last_boxed("\\boxed{{a}{b}}") == "{a}{b}"
    assert last_boxed("no box here") is None
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("\\boxed{1} and \\boxed{2") is None  # the last box is broken: no fallback


def test_only_the_final_100_characters_count() -> None:
    assert last_boxed("\\boxed{7}" + "." * 91) == "7"  # the box starts exactly 100 from the end
    assert last_boxed("\\boxed{7}" + "." * 92) is None
    assert last_boxed("\\boxed{" + "9" * 95 + "}") is None  # too long to fit in the window


def test_strip_latex_keeps_the_answer() -> None:
    assert strip_latex(" $42$ ") == "42"
    assert strip_latex("\\text{17}.") == "17"
    assert strip_latex("2\\,048") == "2 048"


# -- the reward rule --------------------------------------------------------------------------


def test_correct_boxed_answer_wins_plus_one() -> None:
    env, answer = lcm_env(0)
    result = env.step(f"The LCM is \\boxed{{{answer}}}")
    assert (result.reward, result.done) == (1.0, True)
    assert result.info["won"] is True and result.info["score"] == 1.0
    assert result.info["answer"] == str(answer) and result.info["ground_truth"] == str(answer)
    assert result.info["tool_calls"] == 0 and result.info["invalid_action"] is False


def test_wrong_missing_or_distant_answers_lose_minus_one() -> None:
    env, answer = lcm_env(1)
    wrong = env.step(f"\\boxed{{{answer + 1}}}")
    assert (wrong.reward, wrong.done, wrong.info["won"], wrong.info["score"]) == (-1.0, True, False, 0.0)
    env.reset(1)
    assert env.step(f"The answer is {answer}.").reward == -1.0  # no box
    env.reset(1)
    far = env.step(f"\\boxed{{{answer}}}" + " I double-checked this carefully." * 4)
    assert far.reward == -1.0 and far.info["answer"] is None  # strict: box not in the last 100 chars
    env.reset(1)
    assert env.step(f"\\boxed{{{answer + 1}}} no wait \\boxed{{{answer}}}").reward == 1.0  # last box wins
    env.reset(1)
    assert env.step(f"\\boxed{{{answer}}} no wait \\boxed{{{answer + 1}}}").reward == -1.0


def test_integer_answers_are_normalised() -> None:
    env, answer = lcm_env(2)
    assert env.step(f"\\boxed{{${answer:,}$}}").reward == 1.0


def test_prime_factorization_accepts_latex_times() -> None:
    problem = Problem("prime_factorization", dataset("prime_factorization")[11])
    n = int(re.search(r"factorization of (\d+)", problem.question).group(1))  # type: ignore[union-attr]
    factors, d = [], 2
    while n > 1:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    assert is_correct(problem, " \\times ".join(map(str, factors)))
    assert is_correct(problem, " × ".join(map(str, reversed(factors))))
    assert not is_correct(problem, " × ".join(map(str, [*factors, 1])))


def test_count_primes_scored_against_a_hand_count() -> None:
    env = MathEnv(tasks=["count_primes"], limits=LIMITS)
    env.reset(3)
    start, end = map(int, re.findall(r"\d+", env.problem.question))  # type: ignore[union-attr]
    count = sum(1 for k in range(max(start, 2), end + 1) if all(k % p for p in range(2, math.isqrt(k) + 1)))
    assert env.step(f"\\boxed{{{count}}}").reward == 1.0


def test_countdown_answers_never_reach_the_eval_based_scorer_unless_plain_arithmetic() -> None:
    problem = Problem("countdown", dataset("countdown")[5])
    assert is_correct(problem, problem.entry["metadata"]["expression"])
    for hostile in ("__import__('os').system('touch /tmp/pwn')", "9**9**9**9", "x + 1"):
        assert TASKS["countdown"].canonical(hostile) is None
        assert not is_correct(problem, hostile)


# -- tool calls -------------------------------------------------------------------------------


def test_tool_call_runs_in_the_sandbox_and_returns_its_output() -> None:
    env, _ = lcm_env(0)
    result = env.step("Let me compute.\n" + call("print(sum(range(10)))"))
    assert (result.observation, result.reward, result.done) == ("45\n", 0.0, False)
    assert result.info["tool_calls"] == 1 and result.info["num_tool_calls_total"] == 1
    assert result.info["invalid_action"] is False and result.info["anchor_obs"] == "45\n"
    second = env.step(call("```python\nprint(6 * 7)\n```"))
    assert second.observation == "42\n" and second.info["num_tool_calls_total"] == 2


def test_tool_errors_are_observations_not_invalid_actions() -> None:
    env, _ = lcm_env(0)
    crash = env.step(call("1 / 0"))
    assert "ZeroDivisionError" in crash.observation and not crash.done
    assert crash.info["invalid_action"] is False and crash.info["tool_calls"] == 1
    slow = MathEnv(tasks=["lcm"], limits=SandboxLimits(wall_time_s=0.5))
    slow.reset(0)
    assert slow.step(call("while True:\n    pass")).observation == "Error: time limit exceeded (0.5 s)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<tool_call>{not json}</tool_call>", "not valid JSON"),
        ('<tool_call>{"name": "browser", "arguments": {}}</tool_call>', "unknown tool"),
        ('<tool_call>{"name": "code_interpreter", "arguments": {"code": 5}}</tool_call>', "type string"),
        ('<tool_call>{"name": "code_interpreter", "arguments": {}}</tool_call>', "missing the required"),
        ('<tool_call>{"name": "code_interpreter", "arguments": {"code": "print(1)"}}', "not closed"),
    ],
)
def test_malformed_calls_are_invalid_and_the_episode_goes_on(text: str, message: str) -> None:
    env, _ = lcm_env(0)
    result = env.step(text)
    assert result.observation.startswith("Error: ") and message in result.observation
    assert (result.reward, result.done) == (0.0, False)
    assert result.info["invalid_action"] is True and result.info["tool_calls"] == 0


def test_only_the_first_call_of_a_turn_runs() -> None:
    env, _ = lcm_env(0)
    result = env.step(call("print('first')") + call("print('second')"))
    assert result.observation.startswith("first\n") and "second" not in result.observation.split("(")[0]
    assert "Only the first of 2 tool calls was run" in result.observation
    assert result.info["tool_calls"] == 1 and result.info["num_tool_calls_total"] == 1


def test_turn_limit_ends_unanswered_with_minus_one() -> None:
    env, _ = lcm_env(0, max_turns=2)
    assert not env.step(call("print(1)")).done
    last = env.step(call("print('EXECUTED')"))
    assert (last.reward, last.done) == (-1.0, True)
    assert last.info["tool_calls"] == 1 and last.info["num_tool_calls_total"] == 2
    assert "Turn limit reached" in last.observation and "EXECUTED" not in last.observation
    after = env.step("\\boxed{1}")
    assert after.done and after.reward == 0.0 and after.info["invalid_action"] is True
    env.reset(0)
    assert env.step("<tool_call>oops</tool_call>").info["invalid_action"]
    final = env.step("<tool_call>oops</tool_call>")
    assert (final.reward, final.done, final.info["invalid_action"]) == (-1.0, True, True)


# -- episodes, seeds, splits ------------------------------------------------------------------


def test_reset_gives_the_question_with_the_answer_format() -> None:
    env = make("math", split="eval")
    obs, info = env.reset(4)
    assert isinstance(env, MathEnv) and env.action_format == "tool_call" and env.max_turns == 8
    assert env.tools == [CODE_INTERPRETER_SCHEMA]
    assert obs.endswith("\n" + ANSWER_FORMAT) and "\\boxed{" in ANSWER_FORMAT
    assert info["question"] == info["instruction"] == obs == env.instruction
    assert info["anchor_obs"] == obs and info["num_tool_calls_total"] == 0
    assert {"won", "score", "invalid_action", "tool_calls"} <= info.keys()
    assert info["task_type"] in DEFAULT_TASKS


def test_same_seed_same_problem() -> None:
    first, second = MathEnv(), MathEnv()
    assert first.reset(11)[0] == second.reset(11)[0] == first.reset(11)[0]
    assert len({first.reset(seed)[0] for seed in range(20)}) >= 18


def test_train_and_eval_problems_are_disjoint_by_content() -> None:
    train, evaluation = MathEnv(split="train"), MathEnv(split="eval")
    train_qs = {train.reset(seed)[1]["question"] for seed in range(300)}
    eval_qs = {evaluation.reset(seed)[1]["question"] for seed in range(300)}
    assert train_qs.isdisjoint(eval_qs)
    problems = [train.reset(7), evaluation.reset(7)]
    assert problems[0][0] != problems[1][0]
    assert task_split(train.problem.question) == "train"  # type: ignore[union-attr]
    assert task_split(evaluation.problem.question) == "eval"  # type: ignore[union-attr]


def test_small_numbers_have_operands_of_at_most_two_digits_and_split_by_content() -> None:
    tasks = ["basic_arithmetic", "chain_sum", "gcd", "lcm"]
    train = MathEnv(split="train", tasks=tasks, numbers="small")
    evaluation = MathEnv(split="eval", tasks=tasks, numbers="small")
    train_qs = {train.reset(seed)[1]["question"] for seed in range(200)}
    eval_qs = {evaluation.reset(seed)[1]["question"] for seed in range(200)}
    assert train_qs.isdisjoint(eval_qs)
    for question in train_qs | eval_qs:
        operands = re.findall(r"\d+", question)
        assert operands and all(int(n) <= 100 for n in operands), question
    standard = MathEnv(split="train", tasks=tasks)
    assert max(int(n) for seed in range(50) for n in re.findall(r"\d+", standard.reset(seed)[0])) > 100


@pytest.mark.parametrize("numbers", ["standard", "small"])
@pytest.mark.parametrize("split", ["train", "eval"])
def test_solver_wins_at_least_95_percent(split: str, numbers: str) -> None:
    env = MathEnv(split=split, tasks=list(TASKS), numbers=numbers)
    wins = 0
    for seed in range(60):
        env.reset(seed)
        wins += solver_wins(env)
    assert wins >= 57


def test_solver_answers_from_the_tool_output_it_got() -> None:
    env, answer = lcm_env(5)
    first = env.solver()
    assert "<tool_call>" in first and not first.rstrip().endswith("}")
    assert env.step(first).observation == f"\\boxed{{{answer}}}\n"  # the program prints the box
    assert env.solver() == f"The program printed the answer.\n\\boxed{{{answer}}}"
    env.last_tool_output = "999\n"  # what the environment returned is what the expert reads
    assert env.solver() == "The program printed the answer.\n\\boxed{999}"


def test_the_tool_shy_response_answers_right_without_calling_the_tool() -> None:
    env, answer = lcm_env(5)
    shy = env.tool_shy_response()
    assert shy == f"I can answer this without the tool.\n\\boxed{{{answer}}}"
    result = env.step(shy)
    assert result.done and result.reward == 1.0 and result.info["tool_calls"] == 0
    with pytest.raises(RuntimeError, match="needs a running episode"):
        env.tool_shy_response()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_solver_programs_paste_the_question_line_they_read_the_numbers_from(task: str) -> None:
    """The model copies a line of its prompt, not numbers found by position (docs/envs/math.md)."""
    env = MathEnv(split="train", tasks=[task])
    line = env.reset(3)[0].splitlines()[0]
    code = parse_tool_calls(env.solver(), env.tools).calls[0].arguments["code"]
    assert f"question = {line!r}\n" in code
    assert code.endswith('print(f"\\\\boxed{{{answer}}}")\n')
    numbers = re.findall(r"\d+", line)
    assert not any(n in code.replace(line, "") for n in numbers if len(n) > 1)


def test_question_in_sandbox_defines_question_for_the_models_code() -> None:
    env = MathEnv(tasks=["lcm"], limits=LIMITS, question_in_sandbox=True)
    prompt, info = env.reset(2)
    question = env.problem.question  # type: ignore[union-attr]
    assert prompt == f"{question}\n{QUESTION_VARIABLE}\n{ANSWER_FORMAT}" == info["question"]
    assert env.step(call("print(question)")).observation == f"{question}\n"
    plain, _ = lcm_env(2)
    assert plain.instruction == f"{question}\n{ANSWER_FORMAT}"
    assert "NameError: name 'question' is not defined" in plain.step(call("print(question)")).observation


@pytest.mark.parametrize("task", sorted(TASKS))
def test_with_question_in_sandbox_the_programs_hold_no_number_of_the_question(task: str) -> None:
    env = MathEnv(split="eval", tasks=[task], question_in_sandbox=True)
    wins = 0
    for seed in range(8):
        env.reset(seed)
        code = parse_tool_calls(env.solver(), env.tools).calls[0].arguments["code"]
        assert "question =" not in code
        numbers = re.findall(r"\d+", env.problem.question)  # type: ignore[union-attr]
        assert not any(n in code for n in numbers if len(n) > 1)
        wins += solver_wins(env)
    assert wins == 8


def test_with_code_answers_a_run_that_prints_a_box_last_is_the_final_answer() -> None:
    env, answer = lcm_env(4, code_answers=True)
    assert env.instruction.endswith(f"{ANSWER_FORMAT}\n{CODE_ANSWER}")
    result = env.step(call(f"print('working')\nprint('\\\\boxed{{{answer}}}')"))
    assert result.done and result.reward == 1.0 and result.info["won"]
    assert result.info["tool_calls"] == 1 and result.info["answer"] == str(answer)
    assert result.info["ground_truth"] == str(answer) and result.observation == "Correct."

    env.reset(4)
    wrong = env.step(call(f"print('\\\\boxed{{{answer + 1}}}')"))
    assert wrong.done and wrong.reward == -1.0 and not wrong.info["won"] and wrong.info["tool_calls"] == 1


@pytest.mark.parametrize(
    "code",
    [
        "print('\\\\boxed{12}')\nprint('more')",  # the box is not the last line
        "print(12)",  # no box
        "print('\\\\boxed{12}')\nraise ValueError('after the box')",  # the run failed
        "print('\\\\boxed{12')",  # an unclosed box
    ],
)
def test_with_code_answers_other_runs_only_show_their_output(code: str) -> None:
    env, _ = lcm_env(4, code_answers=True)
    result = env.step(call(code))
    assert not result.done and result.reward == 0.0 and result.info["tool_calls"] == 1
    assert not result.info["won"]


def test_without_code_answers_a_printed_box_is_only_an_observation() -> None:
    env, answer = lcm_env(4)
    assert CODE_ANSWER not in env.instruction
    result = env.step(call(f"print('\\\\boxed{{{answer}}}')"))
    assert not result.done and result.observation == f"\\boxed{{{answer}}}\n"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_with_code_answers_the_expert_wins_in_one_turn(task: str) -> None:
    env = MathEnv(split="eval", tasks=[task], question_in_sandbox=True, code_answers=True)
    for seed in range(4):
        env.reset(seed)
        result = env.step(env.solver())
        assert result.done and result.info["won"] and env.turn == 1


# -- robustness -------------------------------------------------------------------------------


FUZZ_ENV = MathEnv(tasks=["lcm", "countdown"], limits=LIMITS)
tool_like = st.builds(lambda body: f"<tool_call>{body}</tool_call>", st.text(max_size=80))
boxed_like = st.builds(
    lambda body, tail: f"\\boxed{{{body}}}{tail}", st.text(max_size=40), st.text(max_size=20)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), tool_like, boxed_like), st.integers(0, 10**6))
def test_any_response_is_handled(text: str, seed: int) -> None:
    FUZZ_ENV.reset(seed)
    result = FUZZ_ENV.step(text)
    assert isinstance(result.observation, str) and result.reward in (-1.0, 0.0, 1.0)
    assert {"won", "score", "invalid_action", "tool_calls", "num_tool_calls_total", "anchor_obs"} <= set(
        result.info
    )


def test_huge_and_odd_responses_do_not_raise() -> None:
    env, _ = lcm_env(0)
    for text in ("x" * 100_000, "答案是\\boxed{四十二}", "", "\\boxed{" * 1000, None):
        env.reset(0)
        result = env.step(text)  # type: ignore[arg-type]
        assert result.done or result.info["invalid_action"]


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"tasks": []}, "tasks"),
        ({"tasks": ["poetry"]}, "tasks"),
        ({"tasks": "lcm"}, "tasks"),
        ({"max_turns": 0}, "max_turns"),
        ({"backend": "docker"}, "backend"),
        ({"split": "test"}, "split"),
        ({"limits": {"wall_time_s": 1}}, "limits"),
        ({"numbers": "tiny"}, "numbers"),
        ({"question_in_sandbox": "yes"}, "question_in_sandbox"),
        ({"code_answers": 1}, "code_answers"),
    ],
)
def test_bad_options_raise_value_error(options: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        MathEnv(**options)  # type: ignore[arg-type]


def test_bad_seed_raises_value_error() -> None:
    with pytest.raises(ValueError, match="seed"):
        MathEnv().reset("3")  # type: ignore[arg-type]
