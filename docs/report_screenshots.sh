#!/usr/bin/env bash
# The demo's HTML report as a browser shows it, at a desktop and a laptop width, in headless
# Chromium (Debian: apt-get install chromium). Writes docs/report-1440.png, docs/report-1024.png
# (the top of the report) and docs/report-figures-1440.png (its figures).
#
#   bash docs/report_screenshots.sh        (from the repository root, with cohortex installed)
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cohortex demo --samples 5000 --genes 2000 --report "$work/report.html" > "$work/demo.log"
shot() {  # width height file
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$1-$2" --hide-scrollbars --window-size="$1,$2" \
    --screenshot="$3" "file://$work/report.html" > /dev/null 2>&1
}
shot 1440 2600 "$out/report-1440.png"
shot 1024 2600 "$out/report-1024.png"
shot 1440 6200 "$work/tall.png"
python - "$work/tall.png" "$out/report-figures-1440.png" <<'PY'
import sys
import matplotlib.image as image
picture = image.imread(sys.argv[1])
image.imsave(sys.argv[2], picture[2600:6200])
PY
echo "screenshots in $out"
