"""Exit 0 when KenLM's build_binary is installed, 1 when it is not (stage 4 of run.sh).

    python recipes/librispeech/local/has_build_binary.py
"""

from __future__ import annotations

import sys

from asr.lm.build import find_build_binary
from asr.lm.load import LMDependencyError

if __name__ == "__main__":
    try:
        find_build_binary()
    except LMDependencyError:
        sys.exit(1)
