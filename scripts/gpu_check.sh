#!/usr/bin/env bash
# The GPU checks (scripts/gpu_check.py says what they measure): one command for a session
# that is lent a GPU, within 8 minutes. Prepare on the dev machine first, once:
#   bash scripts/gpu_prepare.sh        # wheels the GPU image lacks (.whl/), a small corpus (data/gpu_check/)
# then run on the GPU, carrying both:
#   run(command="bash scripts/gpu_check.sh --out $OUT", carry=[".whl", "data/gpu_check"], timeout_s=540)
# and without a GPU, to test the script:
#   bash scripts/gpu_check.sh --cpu-smoke --out /tmp/gpu_check
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# The GPU image has torch but not asr's audio dependencies: install the carried wheels.
if [ -d .whl ] && ! "$PYTHON" -c "import librosa, soundfile, soxr, jiwer" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/asr-site .whl/*.whl
  export PYTHONPATH=/tmp/asr-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec "$PYTHON" scripts/gpu_check.py "$@"
