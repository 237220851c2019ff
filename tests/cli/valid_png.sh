#!/usr/bin/env bash
# valid_png.sh DIR NAME...: for each DIR/NAME.png prints "valid PNG: NAME.png WxH" when the file
# starts with the PNG signature and an IHDR chunk of a non-empty image; exits 1 otherwise.
set -u
dir=$1
shift
status=0
for name in "$@"; do
  f="$dir/$name.png"
  sig=$(head -c 16 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')
  if [ "$sig" != "89504e470d0a1a0a0000000d49484452" ]; then
    echo "invalid PNG: $f" >&2
    status=1
    continue
  fi
  w=$((16#$(tail -c +17 "$f" | head -c 4 | od -An -tx1 | tr -d ' \n')))
  h=$((16#$(tail -c +21 "$f" | head -c 4 | od -An -tx1 | tr -d ' \n')))
  if [ "$w" -gt 0 ] && [ "$h" -gt 0 ]; then echo "valid PNG: $name.png ${w}x${h}"; else echo "invalid PNG size: $f" >&2; status=1; fi
done
exit $status
