"""One line of what ``asr evaluate --json`` scored (stages 7 and 9 of run.sh).

    python recipes/librispeech/local/score_line.py RESULT.json LABEL
"""

from __future__ import annotations

import json
import sys


def percent(rate: float | None) -> str:
    # A rate with no reference word to divide by is null in the JSON.
    return "-" if rate is None else f"{100 * rate:.2f}%"


def score_line(result_file: str, label: str) -> str:
    with open(result_file, encoding="utf-8") as f:
        result = json.load(f)
    return f"{label}: WER {percent(result['wer'])}, CER {percent(result['cer'])}"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    print(score_line(*sys.argv[1:]))
