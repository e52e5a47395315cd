#!/usr/bin/env bash
# Command-line tests of `tinygrok analyze`: a tiny run with snapshots (and --track), analysed;
# the summary on stdout, every output file, the PNGs when gnuplot is installed, --every and
# --key-frequencies; a run without snapshots, one without summary.json, a - b and s5 (no
# restricted loss, no Fourier analysis); a run that groks (the decay law's predictions of T_g);
# and every bad-input case (nonzero exit, one line on stderr naming the flag or path).
#
# Usage: bash tests/cli/test_analyze.sh path/to/tinygrok    (CTest runs it as `cli_analyze`)
set -u

source "$(dirname "$0")/harness.sh" analyze "$@"
cd "$TMP"

# The one-hot MLP on a + b mod 13: memorises in a few dozen steps.
"$BIN" train --p 13 --frac 0.6 --d-mlp 32 --lr 0.01 --threads 1 --steps 120 --eval-every 20 \
  --snapshot-every 40 --track sharpness,collapse,fourier --out run --quiet >train.out 2>train.err
rc=$?
[ $rc -eq 0 ] && ok || { fail "the tiny run exits $rc"; cat train.err >&2; }
expect "--track writes analysis_track.csv, a row per eval" \
  test "$(wc -l <run/analysis_track.csv)" -eq 8

"$BIN" analyze run --threads 1 >analyze.out 2>analyze.err
rc=$?
[ $rc -eq 0 ] && ok || { fail "analyze exits $rc"; cat analyze.err >&2; }
for text in "4 snapshots, steps 0..120, mlp model, add mod 13" "key frequencies:" "neuron clusters" "T_m" \
            "restricted loss < 0.1" "sharpness:" "wrote run/analysis/"; do
  if grep -qF -- "$text" analyze.out; then ok; else fail "the summary lacks '$text'"; fi
done
for f in analysis.csv weight_norms.csv fourier.csv neurons.csv analysis.json losses.gp \
         fourier.gp weight_norm.gp sharpness.gp softmax_collapse.gp; do
  [ -s "run/analysis/$f" ] && ok || fail "analyze did not write analysis/$f"
done
expect "analysis.csv has a row per snapshot" test "$(wc -l <run/analysis/analysis.csv)" -eq 5
if command -v gnuplot >/dev/null 2>&1; then
  for f in losses fourier weight_norm sharpness softmax_collapse; do
    [ -s "run/analysis/$f.png" ] && ok || fail "analyze did not draw analysis/$f.png"
  done
else
  echo "SKIP: gnuplot is not installed; the PNGs are not checked"
fi

"$BIN" analyze run --every 2 --key-frequencies 1,3 --rho 0.01 --no-plots --quiet --threads 1 \
  >every.out 2>every.err || fail "analyze --every 2 fails: $(cat every.err)"
expect "--every 2 keeps the last snapshot" python3 -c "
import json; a = json.load(open('run/analysis/analysis.json'))
assert a['steps'] == [0, 80, 120], a['steps']
assert a['key_frequencies']['values'] == [1, 3]
assert a['settings']['sharpness_rho'] == {'rule': 'absolute', 'rho': 0.01}"

# A run killed before it wrote summary.json: T_m and T_g come from metrics.csv, as train finds
# them. On a - b, Nanda's restricted loss (defined for a + b only) is left out, saying why.
"$BIN" train --op sub --p 13 --frac 0.6 --d-mlp 32 --lr 0.01 --threads 1 --steps 120 \
  --eval-every 20 --snapshot-every 60 --out killed --quiet 2>killed.err || fail "$(cat killed.err)"
rm killed/summary.json
"$BIN" analyze killed --no-plots --quiet --threads 1 >killed.out 2>killed.err ||
  fail "analyze of a run without summary.json: $(cat killed.err)"
expect "without summary.json, T_m is the first eval at train accuracy >= 99%" python3 -c "
import csv, json
a = json.load(open('killed/analysis/analysis.json'))
rows = list(csv.DictReader(open('killed/metrics.csv')))
t_m = next(int(r['step']) for r in rows if float(r['train_acc']) >= 0.99)
assert a['grok_time_prediction']['T_m'] == t_m, (a['grok_time_prediction'], t_m)
assert not a['restricted_loss']['computed']
assert 'the run\'s op is sub' in a['restricted_loss']['note'], a['restricted_loss']"
# A run without snapshots is analysed at its final checkpoint: a plot against the step then has one
# point, which gnuplot must draw without warning of an empty range.
"$BIN" train --p 13 --frac 0.6 --d-mlp 32 --threads 1 --steps 20 --eval-every 10 --out single \
  --quiet 2>single.err || fail "$(cat single.err)"
"$BIN" analyze single --threads 1 --quiet >single.out 2>single.err ||
  fail "analyze of a run without snapshots: $(cat single.err)"
grep -qF "1 set of weights (no snapshots: the final checkpoint), steps 20..20" single.out && ok ||
  fail "analyze's summary of a run without snapshots: $(head -1 single.out)"
if command -v gnuplot >/dev/null 2>&1; then
  expect "gnuplot draws one snapshot's plots" test "$(ls single/analysis/*.png | wc -l)" -eq 5
  [ ! -s single.err ] && ok || fail "analyze of one snapshot printed: $(cat single.err)"
fi
# S5 is not Z_p: no Fourier analysis, and it says so; the task is named by its size, not a modulus.
"$BIN" train --op s5 --frac 0.5 --d-mlp 16 --threads 1 --steps 20 --eval-every 10 \
  --snapshot-every 10 --out s5 --quiet 2>s5.err || fail "$(cat s5.err)"
"$BIN" analyze s5 --no-plots --threads 1 >s5.out 2>s5.err || fail "analyze of s5: $(cat s5.err)"
grep -qF "3 snapshots, steps 0..20, mlp model, s5 (120 elements)" s5.out && ok ||
  fail "analyze's summary of s5: $(head -1 s5.out)"
expect "s5's analysis says why it has no Fourier analysis" python3 -c "
import json
a = json.load(open('s5/analysis/analysis.json'))
for block in ['key_frequencies', 'neuron_clusters']:
    assert a[block]['note'] == 's5 is not Z_p: no Fourier analysis', a[block]"

# A run that groks, and whose weight norm falls from T_m to T_g: the decay law's predictions of T_g
# (survey section 3.2), their summary lines and the weight-norm plot's fitted and theoretical
# curves, checked against metrics.csv. A small transformer on a + b mod 31 groks near step 1,200
# of the 3,000 allowed, its norm some 15% down from T_m.
"$BIN" train --preset nanda --p 31 --d-model 64 --d-mlp 256 --frac 0.6 --threads 1 --steps 3000 \
  --stop-at-grok --eval-every 20 --snapshot-every 200 --out grokked --quiet 2>grokked.err ||
  fail "the grokking run: $(cat grokked.err)"
"$BIN" analyze grokked --key-frequencies 5,7 --threads 1 >grokked.out 2>grokked.err ||
  fail "analyze of a grokked run: $(cat grokked.err)"
for text in "from T_m to T_g: mean decay rate" "predicted T_g: " " from the fitted rate (error " \
            "key frequencies: 5 7 ("; do
  grep -qF -- "$text" grokked.out && ok || fail "the grokked run's summary lacks '$text'"
done
expect "the decay law's predictions follow from metrics.csv's norms" py "
import csv, json, math, statistics
summary = json.load(open('grokked/summary.json'))
g = json.load(open('grokked/analysis/analysis.json'))['grok_time_prediction']
rows = list(csv.DictReader(open('grokked/metrics.csv')))
norm = {int(r['step']): float(r['weight_norm']) for r in rows}
t_m = next(int(r['step']) for r in rows if float(r['train_acc']) >= 0.99)
t_g = next(int(r['step']) for r in rows if float(r['test_acc']) >= 0.99)
assert summary['status'] == 'grokked' and (summary['T_m'], summary['T_g']) == (t_m, t_g), summary
assert (g['T_m'], g['T_g_observed']) == (t_m, t_g), g
assert norm[t_g] < 0.95 * norm[t_m], (norm[t_m], norm[t_g])
close = lambda a, b: math.isclose(a, b, rel_tol=1e-6)
log_ratio = math.log(norm[t_m] / norm[t_g])
between = g['between_T_m_and_T_g']
assert close(between['rate_mean'], log_ratio / (t_g - t_m)), between
fit = g['fit']
window = [s for s in sorted(norm) if fit['window_begin'] <= s <= fit['window_end']]
assert fit['fitted'] and len(window) == fit['window_evals'] >= 3, fit
slope = statistics.linear_regression(window, [math.log(norm[s]) for s in window]).slope
assert close(fit['rate'], -slope), (fit['rate'], -slope)
assert close(g['predicted_T_g_fit'], t_m + log_ratio / fit['rate']), g
assert close(g['predicted_T_g_theory'], t_m + log_ratio / (1e-3 * 1.0)), g
assert close(g['relative_error_fit'], abs(g['predicted_T_g_fit'] - t_g) / (t_g - t_m)), g"
expect "the weight-norm plot draws the fit over its window and the law from T_m to T_g" py "
import json
g = json.load(open('grokked/analysis/analysis.json'))['grok_time_prediction']
gp = open('grokked/analysis/weight_norm.gp').read()
fit = 'fit(x) = (x >= %d && x <= %d) ? exp(fit_c - fit_r * x) : 1/0' % (
    g['fit']['window_begin'], g['T_g_observed'])
theory = 'theory(x) = (x >= %d && x <= %d) ? ' % (g['T_m'], g['T_g_observed'])
for line in [fit, theory, 'fit(x) with lines', 'theory(x) with lines']:
    assert line in gp, 'weight_norm.gp lacks: ' + line"
grep -qF "set title 'train, test, restricted and excluded loss (key frequencies 5 7)'" \
  grokked/analysis/losses.gp && ok || fail "losses.gp's title does not name the key frequencies"
if command -v gnuplot >/dev/null 2>&1; then
  expect "gnuplot draws the grokked run's plots" test -s grokked/analysis/weight_norm.png -a \
    -s grokked/analysis/losses.png
  grep -qF "gnuplot failed" grokked.err && fail "gnuplot failed: $(cat grokked.err)" || ok
fi

expect_error() {  # expect_error TEXT ARGS...: fails, one line on stderr containing TEXT
  local text=$1; shift
  "$BIN" "$@" >err.out 2>err.err
  local rc=$?
  if [ $rc -eq 0 ]; then fail "'$*' succeeded"; return; fi
  if [ "$(wc -l <err.err)" -ne 1 ]; then fail "'$*' printed $(wc -l <err.err) lines"; return; fi
  grep -qF -- "$text" err.err && ok || fail "'$*' said '$(cat err.err)', not '$text'"
}
expect_error "not a run directory" analyze nowhere
# A stored model train would refuse is refused, naming config.json; a training setting a later
# version judges differently does not stop the analysis of a finished run.
cp -r run bad_model && sed -i 's/"p": 13,/"p": 0,/' bad_model/config.json
expect_error "bad_model/config.json: --p: must be at least 2, got 0" analyze bad_model --no-plots
rm -rf bad_model
# A config.json whose model is not the snapshots': the error names the snapshot and the tensor.
cp -r run bad_shape && sed -i 's/"d_mlp": 32,/"d_mlp": 16,/' bad_shape/config.json
expect_error "bad_shape/snapshots/step_00000000.safetensors does not fit the model of config.json: \
load_state_dict: W_in: expected [26, 16] float32, got [26, 32] float32" analyze bad_shape --no-plots
rm -rf bad_shape
cp -r run odd_training && sed -i 's/"clip": 0.0,/"clip": -1.0,/' odd_training/config.json
"$BIN" analyze odd_training --no-plots --quiet --threads 1 >odd.out 2>odd.err && ok ||
  fail "analyze of a run whose training settings train would refuse: $(cat odd.err)"
rm -rf odd_training
expect_error "--every" analyze run --every 0 --no-plots
expect_error "--key-frequencies: 7" analyze run --key-frequencies 7 --no-plots
expect_error "--key-frequencies: 3 is listed twice" analyze run --key-frequencies 1,3,3 --no-plots
# 2 * 2^62 overflows int64: the range check must not wrap it into range.
expect_error "--key-frequencies: 4611686018427387904 is not a frequency" \
  analyze run --key-frequencies 4611686018427387904 --no-plots
expect_error "--threads: expected a number, got nothing" analyze run --threads "" --no-plots
expect_error "--rho" analyze run --rho -1 --no-plots
expect_error "excludes" analyze run --rho 0.1 --rho-fraction 0.01
expect_error "--track: unknown metric" train --p 13 --track entropy --out bad
# A resume keeps analysis_track.csv's rows, and refuses a file it cannot read rather than drop them.
# The row after the checkpoint, as an interrupted run leaves, is one a resume would drop: a
# refused resume keeps it, so metrics.csv is read before either log is rewritten.
cp -r run tracked && sed -i '1s/$/ extra/' tracked/analysis_track.csv
tail -n 1 tracked/metrics.csv | sed 's/^120,/130,/' >>tracked/metrics.csv
cp tracked/analysis_track.csv track.before && cp tracked/metrics.csv metrics.before
expect_error "not this run's header" train --resume tracked --steps 140 --quiet
expect "a refused resume keeps analysis_track.csv" cmp -s track.before tracked/analysis_track.csv
expect "a refused resume keeps every row of metrics.csv" cmp -s metrics.before tracked/metrics.csv
expect "a refused resume leaves no temporary file" test -z "$(ls tracked | grep partial)"
sed -i '1s/ extra$//; 3s/^20,/2x,/' tracked/analysis_track.csv
expect_error "analysis_track.csv line 3 does not begin with a step" \
  train --resume tracked --steps 140 --quiet

finish cli_analyze
