"""The LibriSpeech subsets a training set is made of, one a line (stages 1-2 of run.sh).

    python recipes/librispeech/local/subsets.py NAME...

NAME is a subset (train-clean-100) or an alias (train-460, train-960).
"""

from __future__ import annotations

import sys

from asr.corpora.librispeech import expand_subsets
from asr.errors import UserError


def main(names: list[str]) -> int:
    try:
        subsets = expand_subsets(names)
    except UserError as err:
        print(f"{sys.argv[0]}: {err}", file=sys.stderr)
        return 2
    print(*subsets, sep="\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    sys.exit(main(sys.argv[1:]))
