"""Progress in logs: plain lines now and then, never a bar's carriage-return frames."""

import pytest

from asr import progress as progress_module
from asr.progress import LogProgress, progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def test_not_a_terminal_gets_plain_lines(capsys) -> None:
    bar = progress(range(3), desc="decode", unit="batch")  # pytest captures stderr: not a terminal
    assert isinstance(bar, LogProgress)
    assert list(bar) == [0, 1, 2]
    assert "\r" not in capsys.readouterr().err


def test_a_line_per_tenth_at_most_every_five_seconds_and_a_last_one(clock: Clock, capsys) -> None:
    bar = progress(total=200, desc="epoch 1/4", unit="step")
    for _ in range(200):
        clock.now += 1.0  # 200 s in all: every tenth takes 20 s
        bar.update(1)
        bar.set_postfix(loss="0.500")
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10  # at 10 %, 20 %, ... 90 %, then done
    assert lines[0] == "epoch 1/4: 20/200 step (10%), 1 step/s, 0:20 elapsed, 3:00 left; loss=0.500"
    assert lines[-1] == "epoch 1/4: 200/200 step (100%), 1 step/s, 3:20 elapsed; done; loss=0.500"


def test_fast_tenths_are_not_all_printed(clock: Clock, capsys) -> None:
    with progress(total=100, desc="x") as bar:
        for _ in range(100):
            clock.now += 0.1  # 10 s in all: a tenth a second
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].split("(")[1][:3] for line in lines] == ["50%", "100"]  # 5 s gap, then done


def test_a_line_every_30_seconds_without_a_total(clock: Clock, capsys) -> None:
    bar = progress(desc="download", unit_bytes=True)
    for _ in range(10):
        clock.now += 10.0
        bar.update(3 * 2**20)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "download: 9.0 MiB, 307.2 KiB/s, 0:30 elapsed",
        "download: 18.0 MiB, 307.2 KiB/s, 1:00 elapsed",
        "download: 27.0 MiB, 307.2 KiB/s, 1:30 elapsed",
        "download: 30.0 MiB, 307.2 KiB/s, 1:40 elapsed; done",
    ]


def test_quick_steps_print_nothing_and_disabled_ones_never(clock: Clock, capsys) -> None:
    for disable in (False, True):
        with progress(total=5, desc="quick", disable=disable) as bar:
            for _ in range(5):
                clock.now += 0.5 if not disable else 100.0
                bar.update(1)
    assert capsys.readouterr().err == ""
