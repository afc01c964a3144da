"""asr: a small, complete speech-recognition toolkit (log-mel -> BiLSTM (or GRU, RNN) CTC -> decoding -> WER)."""

__version__ = "0.1.0"
