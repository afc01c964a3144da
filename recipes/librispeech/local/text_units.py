"""The units a config's [text] section names and its word-piece count (chars and 256 when
unset): run.sh's defaults for --units and --bpe-size.

    python recipes/librispeech/local/text_units.py CONFIG.toml
"""

from __future__ import annotations

import sys
import tomllib


def text_units(config: str) -> tuple[str, int]:
    with open(config, "rb") as f:
        text = tomllib.load(f).get("text", {})
    return str(text.get("units", "chars")), int(text.get("bpe_size", 256))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    try:
        print(*text_units(sys.argv[1]))
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError) as err:
        sys.exit(f"{sys.argv[1]}: cannot read [text] units and bpe_size: {err}")
