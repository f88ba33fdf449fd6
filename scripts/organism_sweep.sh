#!/usr/bin/env bash
# Organism recipe sweep on one GPU machine (docs/organism.md, "Organism v2.1"): one full default
# build A that also saves its pre-safety model, then every variant of VARIANTS (lines
# "NAME full|safety BUILD_ARGS...": "full" = a whole build, "safety" = the safety stage alone from
# A's pre-safety model), all in parallel; each model gets a full `organism eval`.
# PRE=DIR skips A and starts the safety variants from that saved pre-safety model instead.
# A line "BASE --set k=v ..." in VARIANTS is put before A's and every variant's own settings (the
# recipe the file was run with, so it reruns the same after BuildConfig's defaults change).
# Usage (repo root, PYTHONPATH=$PWD): [A_ARGS="--set k=v ..."] [PRE=DIR] bash scripts/organism_sweep.sh VARIANTS WORKDIR DEADLINE_S
# then: python3 scripts/organism_pick.py WORKDIR [--tar DIR]
set -u
V=$1; W=${2:-/tmp/sweep}; DEADLINE=${3:-560}; mkdir -p "$W/logs"
t0=$(date +%s)
BASE=$(grep '^BASE ' "$V" | cut -d' ' -f2-)
left() { echo $(( DEADLINE - ($(date +%s) - t0) )); }
L="python3 -m layersafe organism"
one() {  # name, build args...
  local name=$1; shift
  timeout "$(left)" $L build --out "$W/$name" --device cuda --no-progress "$@" >"$W/logs/$name.build.log" 2>&1 \
    && timeout "$(left)" $L eval --model "$W/$name" --out "$W/eval-$name" --no-progress >"$W/logs/$name.eval.log" 2>&1
  echo "$name done rc=$? at $(( $(date +%s) - t0 ))s"
}
if [ -n "${PRE:-}" ]; then mkdir -p "$W" && cp -r "$PRE" "$W/pre"
else one A --pre-safety "$W/pre" $BASE ${A_ARGS:-} &  # A_ARGS: build args of A (and so of every safety variant's base)
fi
while read -r name kind args; do
  [ "$kind" = full ] && one "$name" $BASE $args &
done < <(grep -v '^#' "$V")
while [ ! -f "$W/pre/model.safetensors" ] && [ "$(left)" -gt 60 ]; do sleep 3; done
sleep 5
while read -r name kind args; do
  [ "$kind" = safety ] && one "$name" --from-pre-safety "$W/pre" $BASE $args &
done < <(grep -v '^#' "$V")
wait
echo "all done at $(( $(date +%s) - t0 ))s"
