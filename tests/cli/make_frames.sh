#!/usr/bin/env bash
# make_frames.sh DIR N: N synthetic 64x48 PPM frames (a moving bright square on gradients) in
# DIR, a video input of any frame rate for the video modality's image-directory mode.
set -eu
mkdir -p "$1"
/usr/bin/python3 - "$1" "$2" <<'PY'
import sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    a = np.zeros((48, 64, 3), np.uint8)
    a[:, :, 0] = (np.arange(64) * 4 + i * 5) % 256
    a[:, :, 1] = (np.arange(48)[:, None] * 5) % 256
    a[10:20, i % 40:i % 40 + 10, :] = 255
    open(f"{d}/f{i:03d}.ppm", "wb").write(b"P6 64 48 255\n" + a.tobytes())
PY
