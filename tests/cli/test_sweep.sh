#!/usr/bin/env bash
# Command-line tests of `tinygrok sweep`: a 2 x 2 grid of tiny runs with --workers 2 (results.csv in
# grid order with plausible values that match each run's files, heatmap.csv's medians, the PNGs); a
# rerun that skips every run and touches none; a run without its summary resumed and one without its
# checkpoint redone, alone; a finished run beside a damaged config.json kept; bad specs (exit 2, one
# line naming the file and the key, nothing written); a failing run beside a NaN one (the sweep goes
# on and exits 1); every config field passed to train as a flag; Ctrl-C (exit 130) and the rerun
# that finishes the grid, waiting for a run directory another process holds; two sweeps of one grid
# at once (the second takes the first's run as finished); and, when the build has MPI and mpirun
# is here, `mpirun -np 2` giving the same results.csv.
#
# Usage: bash tests/cli/test_sweep.sh path/to/tinygrok    (CTest runs it as the test `cli_sweep`)
set -u

source "$(dirname "$0")/harness.sh" sweep "$@"
LOG="$TMP/log"
mkdir -p "$LOG"
cd "$TMP"

# Every file under a directory with its modification time: equal listings, nothing touched.
mtimes() { (cd "$1" && find . -type f -printf '%p %T@\n' | sort); }
# results.csv without its last column (wall_seconds, the one that differs between equal runs).
without_wall() { cut -d, -f1-11 "$1"; }

# The one-hot MLP on a + b mod 23 (tests/cli/test_cli.sh's tiny run): it memorises by step ~75.
cat >spec.json <<'EOF'
{"preset": "default",
 "base": {"p": 23, "frac": 0.6, "d_mlp": 64, "lr": 0.01, "steps": 300, "eval_every": 25,
          "checkpoint_every": 100},
 "grid": {"wd": [1.0, 0.3], "seed": [0, 1]},
 "heatmap": {"x": "wd"}}
EOF

# --- sweep --help ------------------------------------------------------------------------------
"$BIN" sweep --help >"$LOG/help" 2>&1 || fail "sweep --help exits nonzero"
for flag in --out --workers --threads --force; do
  grep -qE -- "^ +$flag( |,|$)" "$LOG/help" && ok || fail "sweep --help lacks $flag"
done
grep -q "^MPI: " "$LOG/help" && ok || fail "sweep --help does not say whether MPI is built in"

# --- a 2 x 2 sweep, two runs at a time ---------------------------------------------------------
"$BIN" sweep spec.json --out s1 --workers 2 >"$LOG/s1.out" 2>"$LOG/s1.err"
rc=$?
[ $rc -eq 0 ] && ok || { fail "the sweep exits $rc"; cat "$LOG/s1.err" >&2; }
for f in spec.json results.csv heatmap.csv heatmap.gp; do
  [ -s "s1/$f" ] && ok || fail "the sweep lacks $f"
done
py "import json; assert json.load(open('spec.json')) == json.load(open('s1/spec.json'))" &&
  ok || fail "s1/spec.json is not the spec"
if command -v gnuplot >/dev/null 2>&1; then
  for png in heatmap_T_g.png heatmap_test_acc.png; do
    expect "$png is a PNG" py "import sys; sys.exit(open('s1/$png','rb').read(4) != b'\x89PNG')"
  done
fi
expect "results.csv: a row per point in grid order, values as each run's files have them" py "
import csv, json
rows = list(csv.DictReader(open('s1/results.csv')))
assert list(rows[0].keys()) == ['wd', 'seed', 'status', 'T_m', 'T_g', 'ratio', 'steps', 'train_acc',
    'test_acc', 'test_loss', 'weight_norm', 'wall_seconds'], list(rows[0].keys())
assert [(r['wd'], r['seed']) for r in rows] == [('1.0', '0'), ('1.0', '1'), ('0.3', '0'), ('0.3', '1')]
for r in rows:
    run = 's1/runs/wd=%s,seed=%s' % (r['wd'], r['seed'])
    config = json.load(open(run + '/config.json'))
    assert config['wd'] == float(r['wd']) and config['seed'] == int(r['seed']), config
    assert config['p'] == 23 and config['steps'] == 300 and config['threads'] == 1, config
    s = json.load(open(run + '/summary.json'))
    assert r['status'] == s['status'] == 'completed', (r, s)
    assert int(r['steps']) == 300 and 0 < int(r['T_m']) <= 300, r
    assert int(r['T_m']) == s['T_m'] and float(r['test_acc']) == s['final']['test_acc'], (r, s)
    assert float(r['train_acc']) >= 0.99 and 0 <= float(r['test_acc']) <= 1, r
    assert float(r['test_loss']) > 0 and float(r['weight_norm']) > 0 and float(r['wall_seconds']) > 0, r
    assert (r['T_g'] == '') == (s['T_g'] is None), (r, s)
    assert 'completed: metrics in' in open(run + '/train.log').read(), run  # train's stderr
"
expect "heatmap.csv: per wd, the median over the seeds" py "
import csv, statistics
rows = list(csv.DictReader(open('s1/results.csv')))
cells = list(csv.DictReader(open('s1/heatmap.csv')))
assert [c['wd'] for c in cells] == ['1.0', '0.3'], cells
for c in cells:
    mine = [r for r in rows if r['wd'] == c['wd']]
    assert int(c['runs']) == 2 and int(c['grokked']) == sum(r['T_g'] != '' for r in mine), (c, mine)
    expected = statistics.median(float(r['test_acc']) for r in mine)
    assert abs(float(c['test_acc_median']) - expected) < 1e-12, (c, expected)
"
grep -q "4 ran" "$LOG/s1.err" && ok || fail "the sweep did not report 4 runs ran: $(cat "$LOG/s1.err")"
[ ! -s "$LOG/s1.out" ] && ok || fail "the sweep printed on stdout"

# --- again: every run skipped, no file of any run touched ---------------------------------------
mtimes s1/runs >"$LOG/runs.before"
cp s1/results.csv "$LOG/results.before"
cp s1/heatmap.csv "$LOG/heatmap.before"
"$BIN" sweep spec.json --out s1 --workers 2 2>"$LOG/s2.err" && ok || fail "the rerun failed"
[ "$(grep -c ': skipped, finished before' "$LOG/s2.err")" -eq 4 ] && grep -q "4 skipped" "$LOG/s2.err" &&
  ok || fail "the rerun did not skip all 4 runs: $(cat "$LOG/s2.err")"
mtimes s1/runs >"$LOG/runs.after"
cmp -s "$LOG/runs.before" "$LOG/runs.after" && ok || fail "the rerun touched run files"
cmp -s "$LOG/results.before" s1/results.csv && ok || fail "the rerun changed results.csv"

# --- a run without its summary is resumed, one without its checkpoint redone: only those ------
rm "s1/runs/wd=1.0,seed=1/summary.json"
rm -r "s1/runs/wd=0.3,seed=0/checkpoint" "s1/runs/wd=0.3,seed=0/summary.json"
"$BIN" sweep spec.json --out s1 --workers 2 2>"$LOG/s3.err" && ok || fail "the third run failed"
grep -q "2 skipped (already finished), 1 ran, 1 resumed" "$LOG/s3.err" && ok ||
  fail "expected 2 skipped, 1 ran, 1 resumed: $(cat "$LOG/s3.err")"
grep -q "wd=1.0,seed=1: resuming" "$LOG/s3.err" && grep -q "wd=0.3,seed=0: starting again" "$LOG/s3.err" &&
  ok || fail "not the runs expected were rerun: $(cat "$LOG/s3.err")"
mtimes s1/runs | grep -e '^./wd=1.0,seed=0/' -e '^./wd=0.3,seed=1/' >"$LOG/kept.after"
grep -e '^./wd=1.0,seed=0/' -e '^./wd=0.3,seed=1/' "$LOG/runs.before" >"$LOG/kept.before"
cmp -s "$LOG/kept.before" "$LOG/kept.after" && ok || fail "the runs left alone were touched"
# The same values again (training is deterministic): all but wall_seconds.
cmp -s <(without_wall "$LOG/results.before") <(without_wall s1/results.csv) && ok ||
  fail "results changed after resume/redo: $(diff "$LOG/results.before" s1/results.csv)"
# A finished run beside a damaged config.json is kept, not replaced: the point fails (exit 1).
echo x >>"s1/runs/wd=1.0,seed=0/config.json"
mtimes s1/runs | grep -e '^./wd=1.0,seed=0/' >"$LOG/damaged.before"
"$BIN" sweep spec.json --out s1 --workers 2 2>"$LOG/s4.err"
[ $? -eq 1 ] && ok || fail "a sweep over a damaged run did not exit 1: $(cat "$LOG/s4.err")"
grep -q "wd=1.0,seed=0: FAILED (.*config.json is missing or cannot be read" "$LOG/s4.err" && ok ||
  fail "the damaged run was not reported: $(cat "$LOG/s4.err")"
mtimes s1/runs | grep -e '^./wd=1.0,seed=0/' | cmp -s "$LOG/damaged.before" - && ok ||
  fail "the damaged run's files were touched"
sed -i '$d' "s1/runs/wd=1.0,seed=0/config.json"  # repaired: skipped again
"$BIN" sweep spec.json --out s1 --workers 2 2>"$LOG/s5.err" && ok ||
  fail "the sweep after the repair: $(cat "$LOG/s5.err")"
grep -q "4 skipped (already finished)" "$LOG/s5.err" && ok ||
  fail "expected 4 skipped after the repair: $(cat "$LOG/s5.err")"

# --- bad input: exit 2, one line naming the file and the key, nothing written -----------------
bad() {  # bad DESCRIPTION EXPECTED-TEXT SPEC-TEXT [FLAGS...]
  local what=$1 says=$2 text=$3; shift 3
  printf '%s' "$text" >bad.json
  "$BIN" sweep bad.json --out bad_out "$@" >"$LOG/bad.out" 2>"$LOG/bad.err"
  local rc=$?
  [ $rc -eq 2 ] && ok || fail "$what: exit $rc, not 2"
  [ "$(wc -l <"$LOG/bad.err")" -eq 1 ] && grep -q "bad.json" "$LOG/bad.err" &&
    grep -qF -- "$says" "$LOG/bad.err" && ok ||
    fail "$what: expected one line naming bad.json and '$says', got: $(cat "$LOG/bad.err")"
  [ ! -e bad_out ] && ok || fail "$what: wrote bad_out"
  rm -rf bad_out
}
bad "unknown key" "grid.wdd: unknown key" '{"grid": {"wdd": [1]}}'
bad "empty list" "grid.wd: is an empty list" '{"grid": {"wd": []}}'
bad "wrong type" "base.steps: must be an integer" '{"base": {"steps": "10"}, "grid": {"wd": [1]}}'
bad "past int64" "grid.batch: must be an integer that int64 holds" \
  '{"grid": {"batch": [18446744073709551615]}}'
bad "heatmap axis" "heatmap.y: 'lr' is not a key of the grid" \
  '{"grid": {"wd": [1]}, "heatmap": {"x": "wd", "y": "lr"}}'
bad "invalid point" "grid point frac=1.5: --frac" '{"grid": {"frac": [0.5, 1.5]}}'
bad "not JSON" "not valid JSON" '{"grid": '
bad "text after the spec" "not valid JSON" '{"grid": {"wd": [1]}} trailing'
bad "a repeated key" 'key "grid" is given twice' '{"grid": {"wd": [1]}, "grid": {"wd": [2]}}'
bad "a repeated grid key" 'key "wd" is given twice' '{"grid": {"wd": [1], "wd": [2]}}'
"$BIN" sweep none.json --out bad_out 2>"$LOG/none.err"
[ $? -eq 2 ] && grep -q "none.json: cannot read" "$LOG/none.err" && [ ! -e bad_out ] && ok ||
  fail "a missing spec: $(cat "$LOG/none.err")"
# Another spec into s1: refused, nothing changed; accepted with --force.
sed 's/"seed": \[0, 1\]/"seed": [0]/' spec.json >other.json
mtimes s1 >"$LOG/s1.before"
"$BIN" sweep other.json --out s1 2>"$LOG/other.err"
[ $? -eq 2 ] && grep -q -- "--out: .*another spec.*--force" "$LOG/other.err" && ok ||
  fail "another spec into s1: $(cat "$LOG/other.err")"
mtimes s1 >"$LOG/s1.after"
cmp -s "$LOG/s1.before" "$LOG/s1.after" && ok || fail "the refused sweep changed s1"
"$BIN" sweep other.json --out s1 --force 2>"$LOG/force.err" && grep -q "2 skipped" "$LOG/force.err" &&
  ok || fail "--force with another spec: $(cat "$LOG/force.err")"
py "import csv; assert len(list(csv.DictReader(open('s1/results.csv')))) == 2" && ok ||
  fail "--force: results.csv is not the new spec's"

# --- a failing run and a NaN one: the sweep goes on, reports the failure, exits 1 -------------
cat >fail.json <<'EOF'
{"base": {"p": 23, "frac": 0.6, "d_mlp": 64, "steps": 50, "eval_every": 25},
 "grid": {"split_file": ["", "/nonexistent/split.txt"], "lr": [0.01, 1e8]}}
EOF
"$BIN" sweep fail.json --out f1 --workers 2 2>"$LOG/f1.err"
rc=$?
[ $rc -eq 1 ] && ok || fail "a sweep with failed runs exits $rc, not 1"
grep -q "FAILED (exit code 2)" "$LOG/f1.err" && grep -q "split file /nonexistent/split.txt" "$LOG/f1.err" &&
  ok || fail "the failure and its log's last lines are not reported: $(cat "$LOG/f1.err")"
expect "fail.json: completed, nan_loss (a result, not a failure), failed, failed" py "
import csv
rows = list(csv.DictReader(open('f1/results.csv')))
assert [r['status'] for r in rows] == ['completed', 'nan_loss', 'failed', 'failed'], rows
assert rows[2]['test_acc'] == '' and rows[0]['test_acc'] != '', rows
"

# --- every config field reaches train through its flag ------------------------------------------
expect "a spec setting every field" py "
import json
c = json.load(open('s1/runs/wd=0.3,seed=1/config.json'))
for k in ['preset', 'threads', 'seed']: c.pop(k)
c['steps'] = 20
json.dump({'base': c, 'grid': {'seed': [3]}}, open('all.json', 'w'))
"
"$BIN" sweep all.json --out a1 2>"$LOG/a1.err" && ok || fail "the every-field sweep: $(cat "$LOG/a1.err")"
expect "the run's config.json has every field the spec set" py "
import json
spec = json.load(open('all.json'))['base']
c = json.load(open('a1/runs/seed=3/config.json'))
assert c['seed'] == 3 and c['preset'] == 'default', c
wrong = {k: (v, c.get(k)) for k, v in spec.items() if c.get(k) != v}
assert not wrong, wrong
"

# --- Ctrl-C: the children checkpoint, the sweep exits 130; the rerun finishes the grid --------
cat >long.json <<'EOF'
{"base": {"p": 23, "frac": 0.6, "d_mlp": 64, "lr": 0.01, "steps": 5000, "eval_every": 50,
          "checkpoint_every": 100000},
 "grid": {"seed": [0, 1, 2]}}
EOF
"$BIN" sweep long.json --out l1 --workers 2 2>"$LOG/l1.err" &
pid=$!
for _ in $(seq 1 600); do  # up to 30 s for both runs to be under way
  [ -f "l1/runs/seed=0/metrics.csv" ] && [ -f "l1/runs/seed=1/metrics.csv" ] &&
    [ "$(wc -l <"l1/runs/seed=1/metrics.csv")" -ge 3 ] && break
  sleep 0.05
done
kill -INT "$pid"
wait "$pid"
rc=$?
[ $rc -eq 130 ] && ok || fail "Ctrl-C: the sweep exits $rc, not 130: $(cat "$LOG/l1.err")"
expect "after Ctrl-C: two runs interrupted with checkpoints, one not run" py "
import csv, os
rows = list(csv.DictReader(open('l1/results.csv')))
assert [r['status'] for r in rows] == ['interrupted', 'interrupted', 'not_run'], rows
for seed in [0, 1]:
    assert os.path.getsize('l1/runs/seed=%d/checkpoint/model.safetensors' % seed) > 0
assert not os.path.exists('l1/runs/seed=2')
"
grep -q "run the same command again" "$LOG/l1.err" && ok || fail "no hint to rerun after Ctrl-C"
# The rerun while another process still holds seed=0's directory (as a run stopping after its
# sweep was SIGKILLed would): that point waits for it, the others go on.
flock "l1/runs/seed=0" sh -c 'touch held; sleep 2' &
holder=$!
for _ in $(seq 1 100); do [ -f held ] && break; sleep 0.05; done
"$BIN" sweep long.json --out l1 --workers 2 2>"$LOG/l2.err" && ok || fail "the rerun after Ctrl-C failed"
wait "$holder"
grep -q "seed=0: waiting: another process is writing" "$LOG/l2.err" && ok ||
  fail "the rerun did not wait for the held directory: $(cat "$LOG/l2.err")"
grep -q "1 ran, 2 resumed; 0 failed, 0 unfinished" "$LOG/l2.err" && ok ||
  fail "the rerun did not resume 2 and run 1: $(cat "$LOG/l2.err")"
expect "the grid is finished" py "
import csv
rows = list(csv.DictReader(open('l1/results.csv')))
assert [r['status'] for r in rows] == ['completed'] * 3 and all(r['steps'] == '5000' for r in rows), rows
"

# --- two sweeps of one grid at once: the second waits for the run the first is writing --------
# and, once it ends, takes it as finished (a run of ~2 s, so that the second sweep starts while the
# first's run holds its directory).
cat >shared.json <<'EOF'
{"base": {"p": 53, "frac": 0.6, "d_mlp": 128, "lr": 0.01, "steps": 2000, "eval_every": 100,
          "checkpoint_every": 100000},
 "grid": {"seed": [0]}}
EOF
"$BIN" sweep shared.json --out shared --workers 1 2>"$LOG/shared1.err" &
first=$!
for _ in $(seq 1 3000); do  # up to 30 s for the first sweep's run to be under way
  [ -f "shared/runs/seed=0/metrics.csv" ] && break
  sleep 0.01
done
"$BIN" sweep shared.json --out shared --workers 1 2>"$LOG/shared2.err" ||
  fail "the second sweep of a shared grid failed: $(cat "$LOG/shared2.err")"
wait "$first" || fail "the first sweep of a shared grid failed: $(cat "$LOG/shared1.err")"
grep -q "seed=0: starting" "$LOG/shared2.err" &&
  fail "the second sweep ran the point the first was running: $(cat "$LOG/shared2.err")" || ok
grep -q "\\[1/1\\] seed=0: skipped, finished by another process: completed" "$LOG/shared2.err" &&
  ok || fail "the second sweep did not take the first's run: $(cat "$LOG/shared2.err")"
grep -q "1 runs: 1 skipped (already finished), 0 ran, 0 resumed; 0 failed" "$LOG/shared2.err" &&
  ok || fail "the second sweep's count: $(tail -n 2 "$LOG/shared2.err")"
expect "both sweeps' results.csv name the one completed run" py "
import csv
rows = list(csv.DictReader(open('shared/results.csv')))
assert [(r['status'], r['steps']) for r in rows] == [('completed', '2000')], rows
"
# Its one grokked cell gives the T_g map no range of colours: gnuplot must not warn of it.
if command -v gnuplot >/dev/null 2>&1; then
  grep -i "warning" "$LOG/shared1.err" "$LOG/shared2.err" &&
    fail "gnuplot warned on the one-cell heatmap" || ok
fi

# --- MPI: two ranks share the grid; rank 0 gathers the same results.csv ---------------------------
if ! grep -q "^MPI: built in" "$LOG/help"; then
  echo "SKIP: this tinygrok was built without MPI: no mpirun test"
  OMPI_COMM_WORLD_SIZE=2 "$BIN" sweep spec.json --out m0 2>"$LOG/m0.err"
  [ $? -eq 2 ] && grep -q "built without MPI" "$LOG/m0.err" && [ ! -e m0 ] && ok ||
    fail "under mpirun without MPI: $(cat "$LOG/m0.err")"
elif ! command -v mpirun >/dev/null 2>&1; then
  echo "SKIP: mpirun is not installed: no MPI test"
else
  MPIRUN=(mpirun -np 2 --oversubscribe)
  [ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
  # Containers often forbid the cross-process memory copies of Open MPI's shared-memory transport;
  # and Open MPI keeps memory to the end, which LeakSanitizer (scripts/test.sh --sanitize) reports.
  OMPI_MCA_btl_vader_single_copy_mechanism=none ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    "${MPIRUN[@]}" "$BIN" sweep spec.json --out m1 --workers 1 >"$LOG/m1.out" 2>"$LOG/m1.err"
  rc=$?
  [ $rc -eq 0 ] && ok || fail "mpirun -np 2 sweep exits $rc: $(cat "$LOG/m1.err" "$LOG/m1.out")"
  grep -q "2 MPI ranks" "$LOG/m1.err" && grep -q "^\[rank 1\] sweep: " "$LOG/m1.err" && ok ||
    fail "the sweep did not run on 2 ranks: $(cat "$LOG/m1.err")"
  cmp -s <(without_wall "$LOG/results.before") <(without_wall m1/results.csv) && ok ||
    fail "results.csv under mpirun differs: $(diff "$LOG/results.before" m1/results.csv)"
  cmp -s "$LOG/heatmap.before" m1/heatmap.csv && ok ||
    fail "heatmap.csv under mpirun differs: $(diff "$LOG/heatmap.before" m1/heatmap.csv)"
fi

finish cli_sweep
