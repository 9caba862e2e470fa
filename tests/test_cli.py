"""The command line's own options; the commands themselves are tested in tests/trainer."""

import torch

from spear.cli import main


def test_threads_sets_torch_threads_before_the_command_runs(capsys):
    before = torch.get_num_threads()
    try:
        # --seeds 0 is refused after the threads are set, so nothing is computed
        assert main(["compare", "--threads", "1", "--seeds", "0"]) == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert "--seeds must be a positive number" in capsys.readouterr().err


def test_threads_must_be_positive(capsys):
    assert main(["eval", "--model", "nowhere", "--threads", "0"]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
