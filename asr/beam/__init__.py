"""CTC prefix beam search with optional word n-gram LM fusion: :class:`BeamSearchDecoder`.

:mod:`asr.beam.decoder` holds the decoder (options, the call, the n-best list);
:mod:`asr.beam.cache` what it learns about its LM and keeps between calls (the trie of
partial words, the table of word scores, the KenLM states); :mod:`asr.beam.kernel` the
compiled (numba) search over frames; :mod:`asr.beam.tables` the arrays and settings record
those share. :mod:`asr.beam.lexicon` holds the lexicon-constrained search
(:class:`LexiconBeamSearchDecoder`), its compiled part :mod:`asr.beam.lexicon_kernel`. Importing this package imports numba; :mod:`asr.decode` imports it only when
:func:`asr.decode.build_decoder` builds a beam decoder.
"""

from asr.beam.decoder import BeamSearchDecoder
from asr.beam.lexicon import LexiconBeamSearchDecoder

__all__ = ["BeamSearchDecoder", "LexiconBeamSearchDecoder"]
