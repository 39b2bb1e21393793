#!/usr/bin/env bash
# make mutants: proves the fuzzer bites. Copies the repository to a scratch directory, applies
# each Simulations/mutants/*.patch (unified diffs against Sources/RMRCore) in turn, builds
# rmr-sim in release, runs the fuzzer over the CI seed budget until the first failure, and
# reports seeds-to-detection per mutant. Exits non-zero if any mutant survives or a patch no
# longer applies.  Usage: Simulations/run-mutants.sh [SEEDS] [PROFILE] [JOBS]
set -eu
SEEDS=${1:-${MUTANT_SEEDS:-300}}
PROFILE=${2:-ci}
JOBS=${3:-$(nproc 2>/dev/null || echo 2)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${MUTANT_SCRATCH:-/tmp/rmr-mutants-$$}
mkdir -p "$SCRATCH/repo"
# Copy the working tree (no build dirs, no .git) with tar: never touch the real repository.
(cd "$ROOT" && tar --exclude='./.build*' --exclude='./.git' -cf - .) | (cd "$SCRATCH/repo" && tar -xf -)
cd "$SCRATCH/repo"
if [ "$(pwd -P)" = "$(cd "$ROOT" && pwd -P)" ] || [ -e .git ]; then
  echo "refusing to run: $SCRATCH/repo is not a fresh scratch copy" >&2; exit 2
fi
set +e
printf '%-48s %-10s %s\n' MUTANT RESULT DETAIL > "$SCRATCH/table.txt"
# Baseline: seeds that already fail on the unmutated core do not count as detections.
swift build -c release --scratch-path .build-mutants --product rmr-sim > "$SCRATCH/baseline.build.log" 2>&1 || { echo "baseline does not build"; exit 2; }
.build-mutants/release/rmr-sim fuzz --profile "$PROFILE" --seeds "$SEEDS" --jobs "$JOBS" --no-shrink > "$SCRATCH/baseline.fuzz.log" 2>&1
baseline=$(grep '^FAIL seed' "$SCRATCH/baseline.fuzz.log" | sed -E 's/^FAIL seed ([0-9]+) .*/\1/' | tr '\n' ' ')
nbase=$(echo $baseline | wc -w)
echo "baseline failing seeds (excluded): ${baseline:-none}" | tee -a "$SCRATCH/table.txt"
survivors=0
for patch in "$ROOT"/Simulations/mutants/*.patch; do
  name=$(basename "$patch" .patch)
  # `git apply` here is used as a plain patch tool on the scratch copy (no repository).
  if ! git apply "$patch"; then
    printf '%-48s %-10s %s\n' "$name" "NO-APPLY" "patch does not apply" >> "$SCRATCH/table.txt"; survivors=$((survivors+1)); continue
  fi
  if ! swift build -c release --scratch-path .build-mutants --product rmr-sim > "$SCRATCH/$name.build.log" 2>&1; then
    printf '%-48s %-10s %s\n' "$name" "NO-BUILD" "see $SCRATCH/$name.build.log" >> "$SCRATCH/table.txt"; survivors=$((survivors+1)); git apply -R "$patch"; continue
  fi
  .build-mutants/release/rmr-sim fuzz --profile "$PROFILE" --seeds "$SEEDS" --jobs "$JOBS" --no-shrink --max-failures $((nbase + 1)) > "$SCRATCH/$name.fuzz.log" 2>&1
  first=""
  while read -r line; do
    s=$(echo "$line" | sed -E 's/^FAIL seed ([0-9]+) .*/\1/')
    case " $baseline " in *" $s "*) ;; *) first="$line"; break ;; esac
  done < <(grep '^FAIL seed' "$SCRATCH/$name.fuzz.log")
  if [ -n "$first" ]; then
    seed=$(echo "$first" | sed -E 's/^FAIL seed ([0-9]+) \[([^]]*)\].*/\1/')
    checker=$(echo "$first" | sed -E 's/^FAIL seed ([0-9]+) \[([^]]*)\].*/\2/')
    printf '%-48s %-10s %s\n' "$name" "CAUGHT" "seed $seed (seeds to detection: $seed), checker $checker" >> "$SCRATCH/table.txt"
  else
    printf '%-48s %-10s %s\n' "$name" "SURVIVED" "$SEEDS seeds" >> "$SCRATCH/table.txt"; survivors=$((survivors+1))
  fi
  git apply -R "$patch"
done
cat "$SCRATCH/table.txt"
echo "logs in $SCRATCH"
exit $survivors
