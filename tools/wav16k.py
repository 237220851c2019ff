"""The 16 kHz mono reader shared by tools/make-speech-stream and
tools/changing-content/make-audio-stream: a 16-bit PCM WAV as float64 in [-1, 1), channels
averaged; 48 kHz input low-passed at 7 kHz (Hann-windowed sinc, 97 taps) and decimated 3:1."""
import os
import sys
import wave

import numpy as np

RATE = 16000


def read(path, who):
    if not os.path.exists(path):
        sys.exit(f"{who}: {path}: missing (run tools/fetch-assets speech)")
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            sys.exit(f"{who}: {path}: expected 16-bit PCM")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        x = x.reshape(-1, w.getnchannels()).mean(axis=1)
        rate = w.getframerate()
    if rate == RATE:
        return x
    if rate != 3 * RATE:
        sys.exit(f"{who}: {path}: expected 16 or 48 kHz, got {rate}")
    n = np.arange(97) - 48
    h = np.sinc(2 * 7000 / rate * n) * (2 * 7000 / rate) * np.hanning(97)
    h /= h.sum()
    return np.convolve(x, h, mode="same")[::3]
