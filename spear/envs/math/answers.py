"""Final-answer extraction for the math environment (spec 4.4, "Reward").

The official reward uses ``math_dapo.compute_score(strict_box_verify=True)``: the
answer is the last ``\\boxed{...}`` found in the **final 100 characters** of the
response. A box that starts earlier (a long answer, or text after the box) does
not count. We follow that rule; braces inside the box may nest.
"""

from __future__ import annotations

BOX = "\\boxed{"
ANSWER_WINDOW = 100


def last_boxed(text: str, window: int = ANSWER_WINDOW) -> str | None:
    """Content of the last complete ``\\boxed{...}`` within the last ``window`` characters.

    Returns None when there is none, or when the last box is not closed there.
    """
    if not isinstance(text, str):
        return None
    tail = text[-window:] if window > 0 else ""
    start = tail.rfind(BOX)
    if start < 0:
        return None
    depth = 1
    for i in range(start + len(BOX), len(tail)):
        if tail[i] == "{":
            depth += 1
        elif tail[i] == "}":
            depth -= 1
            if depth == 0:
                return tail[start + len(BOX) : i]
    return None


def strip_latex(answer: str) -> str:
    """Remove the LaTeX decoration a model may put around a plain answer.

    ``$...$``, ``\\text{...}``, thin spaces and a trailing full stop go; the
    answer itself is not rewritten.
    """
    out = answer.strip().rstrip(".").strip().strip("$").strip()
    if out.startswith("\\text{") and out.endswith("}"):
        out = out[len("\\text{") : -1]
    for thin in ("\\,", "\\!", "\\;", "\\ "):
        out = out.replace(thin, " ")
    return out.strip().rstrip(".").strip()
