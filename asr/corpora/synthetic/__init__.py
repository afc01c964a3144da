"""The embedded synthetic corpus: English sentences spoken by espeak-ng, festival and flite,
in LibriSpeech layout.

- :mod:`~asr.corpora.synthetic.corpus`: :func:`synthesize_corpus`, planning and rendering;
- :mod:`~asr.corpora.synthetic.config`: :class:`SynthConfig`, what the corpus holds;
- :mod:`~asr.corpora.synthetic.speakers`: who speaks each split, and SPEAKERS.TXT;
- :mod:`~asr.corpora.synthetic.english`: the text of its splits and of its language model,
  from WordNet, the fortune files and the generator;
- :mod:`~asr.corpora.synthetic.sentences`: the sentence generator (its grammar in
  :mod:`~asr.corpora.synthetic.phrases`, its words in ``words/*.txt``, read by
  :mod:`~asr.corpora.synthetic.lexicon`);
- :mod:`~asr.corpora.synthetic.espeak`, :mod:`~asr.corpora.synthetic.festival`,
  :mod:`~asr.corpora.synthetic.flite`: each synthesizer's voices, and speaking one sentence;
- :mod:`~asr.corpora.synthetic.perturb`: vocal tract, tempo and room perturbations;
- :mod:`~asr.corpora.synthetic.recordings`: recordings whose word and utterance times are
  known, for the tests and benchmarks of timing and long audio.
"""
