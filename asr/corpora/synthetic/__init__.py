"""The embedded synthetic corpus: English sentences spoken by espeak-ng, in LibriSpeech layout.

- :mod:`~asr.corpora.synthetic.corpus`: :class:`SynthConfig` and :func:`synthesize_corpus`;
- :mod:`~asr.corpora.synthetic.english`: the text of its splits and of its language model,
  from WordNet, the fortune files and the generator;
- :mod:`~asr.corpora.synthetic.sentences`: the sentence generator (its grammar in
  :mod:`~asr.corpora.synthetic.phrases`, its words in ``words/*.txt``, read by
  :mod:`~asr.corpora.synthetic.lexicon`);
- :mod:`~asr.corpora.synthetic.espeak`: the voices, and speaking one sentence.
"""
