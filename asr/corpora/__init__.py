"""Where the speech comes from, kept apart from the pipeline that learns from it.

- :mod:`asr.corpora.librispeech`: download LibriSpeech and its LMs from OpenSLR, read its
  folders into utterances;
- :mod:`asr.corpora.download`: resumable, checksummed downloads and safe extraction;
- :mod:`asr.corpora.synthetic`: the embedded corpus of English sentences spoken by espeak-ng.

The pipeline (:mod:`asr.data` and on) reads manifests and never imports these modules.
"""
