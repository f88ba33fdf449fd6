#!/usr/bin/env bash
# Screenshot a report.html with headless Debian chromium (apt-get install -y chromium).
# Usage: scripts/screenshot_report.sh REPORT.html OUT.png [WIDTHxHEIGHT]   (default 1280x2400)
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]" >&2
  exit 2
fi
html=$(readlink -f "$1")
png=$(readlink -m "$2")
size=${3:-1280x2400}
[ -f "$html" ] || { echo "$0: no such file: $html" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "$0: chromium not found; apt-get update && apt-get install -y chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# No network, no first-run or background services: the report must render offline.
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --screenshot="$png" \
  --window-size="${size/x/,}" "file://$html" >/dev/null 2>&1
[ -s "$png" ] || { echo "$0: chromium wrote no screenshot" >&2; exit 1; }
echo "$png"
