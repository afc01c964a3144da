"""Where the speech comes from, kept apart from the pipeline that learns from it.

- :mod:`asr.corpora.librispeech`: download LibriSpeech and its LMs from OpenSLR, read its
  folders into utterances;
- :mod:`asr.corpora.download`: resumable, checksummed downloads and safe extraction;
- :mod:`asr.corpora.kaldi`: Kaldi data directories (wav.scp, text, utt2spk, segments) in and out;
- :mod:`asr.corpora.lhotse_manifests`: Lhotse manifests in and out, through the lhotse package;
- :mod:`asr.corpora.recordings`: what the readers share: each recording decoded once, and
  utterances as whole files or spans of them;
- :mod:`asr.corpora.synthetic`: the embedded corpus of English sentences spoken by espeak-ng.

The pipeline (:mod:`asr.data` and on) reads manifests and never imports these modules.
"""
