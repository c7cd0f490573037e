#!/usr/bin/env bash
# browser_check.sh ACCELLM CLUSTER DIR
# The report in a real browser (issue 7): accellm simulate writes a small
# run's DIR/run/report.html; headless Chromium loads it and must log no
# console message (the page has no script, so any message is an error: an
# uncaught exception, a resource that failed to load), its DOM must hold the
# plots, and its screenshot, DIR/report.png, must be a non-empty PNG.
# First the same detector must catch a page with a deliberate error, so a
# change in Chromium's log format fails the test instead of passing it.
#
# Exits 77 (ctest: skipped) when no Chromium is installed
# (deploy/install-deps.sh --with-chromium). ACCELLM_CHROMIUM names the
# binary; ACCELLM_CHROMIUM=none skips.
set -u
accellm=$1; cluster=$2; dir=$3
fail() { echo "FAIL: $*"; exit 1; }

browser=${ACCELLM_CHROMIUM:-}
if [ -z "$browser" ]; then
  for b in chromium chromium-headless-shell chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
  done
fi
if [ -z "$browser" ] || [ "$browser" = none ] || ! command -v "$browser" >/dev/null 2>&1; then
  echo "SKIP: no chromium or chromium-headless-shell on PATH (deploy/install-deps.sh --with-chromium)"
  exit 77
fi

rm -rf "$dir"; mkdir -p "$dir"
# chrome PAGE OUT ARGS...: stdout to OUT, the log to OUT.log; bounded.
chrome() {
  local page=$1 out=$2; shift 2
  timeout 90 "$browser" --headless --disable-gpu --no-sandbox --enable-logging=stderr --v=0 \
    --user-data-dir="$dir/profile" --window-size=1280,2000 "$@" "file://$page" \
    >"$out" 2>"$out.log" || { tail -20 "$out.log"; fail "$browser exited with $? on $page"; }
}
# Console messages in a Chromium log: "INFO:CONSOLE:1] "Uncaught ..."" and
# older "INFO:CONSOLE(1)", so any CONSOLE or Uncaught line.
console_lines() { grep -E 'CONSOLE|Uncaught' "$1"; }

cat >"$dir/broken.html" <<'EOF'
<!DOCTYPE html><html><body><p>broken</p><script>noSuchFunction();</script></body></html>
EOF
chrome "$dir/broken.html" "$dir/broken.dom" --dump-dom
console_lines "$dir/broken.dom.log" | grep -q noSuchFunction ||
  { cat "$dir/broken.dom.log"; fail "the detector missed a deliberate error: Chromium's log changed"; }

"$accellm" simulate --cluster "$cluster" --workload conv --rate 2 --duration 5 --seed 3 \
  --policy all --out "$dir/run" >"$dir/simulate.log" 2>&1 ||
  { cat "$dir/simulate.log"; fail "simulate"; }
page=$dir/run/report.html
[ -f "$page" ] || fail "simulate --out wrote no report.html"

chrome "$page" "$dir/report.dom" --dump-dom
if console_lines "$dir/report.dom.log"; then fail "console messages while loading $page"; fi
svgs=$(grep -o '<svg ' "$dir/report.dom" | wc -l)
[ "$svgs" -eq 9 ] || fail "the DOM holds $svgs <svg> plots, not 9 (3 CDFs, memory, 3 timelines, 2 cost bars)"
for title in "TTFT, CDF per policy" "TBT, CDF per policy" "JCT, CDF per policy" \
  "KV memory of the cluster over time" "accellm: instance roles and utilisation"; do
  grep -qF "<title>$title</title>" "$dir/report.dom" || fail "the DOM has no plot '$title'"
done

chrome "$page" "$dir/report.shot" --screenshot="$dir/report.png"
if console_lines "$dir/report.shot.log"; then fail "console messages in the screenshot run"; fi
[ -s "$dir/report.png" ] || fail "no screenshot at $dir/report.png"
[ "$(head -c 8 "$dir/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  fail "$dir/report.png is not a PNG"
echo "browser: $("$browser" --version 2>/dev/null | tail -1) loaded report.html" \
  "($(wc -c <"$page") bytes, $svgs plots) with no console message;" \
  "screenshot $dir/report.png ($(wc -c <"$dir/report.png") bytes)"
