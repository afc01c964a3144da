"""How many epoch checkpoints a config keeps (train.keep_epochs, 0 when unset): run.sh's
default for --avg.

    python recipes/librispeech/local/keep_epochs.py CONFIG.toml
"""

from __future__ import annotations

import sys
import tomllib


def keep_epochs(config: str) -> int:
    with open(config, "rb") as f:
        return int(tomllib.load(f).get("train", {}).get("keep_epochs", 0))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    try:
        print(keep_epochs(sys.argv[1]))
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as err:
        sys.exit(f"{sys.argv[1]}: cannot read train.keep_epochs: {err}")
