"""Word n-gram language models, by job.

- :mod:`asr.lm.load`: load an ARPA or KenLM binary file and score words (:class:`NGramLM`);
- :mod:`asr.lm.build`: build ARPA files with IRSTLM and KenLM binaries with ``build_binary``;
- :mod:`asr.lm.tune`: search a dev set for the LM weight and word bonus (``asr tune-lm``);
- :mod:`asr.lm.weights_file`: the tuned weights kept beside a checkpoint, and the decoding
  settings they fill in.

Beam search's compiled copy of an ARPA LM is :mod:`asr.beam.ngram`. This package imports
none of its modules, so importing one loads nothing else.
"""
