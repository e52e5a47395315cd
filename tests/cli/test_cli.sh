#!/usr/bin/env bash
# Command-line tests of `tinygrok`: train --help, a short real run and its files, the plain
# progress lines off a terminal (and the bar on one), the run directory made without --out,
# eval's JSON, --split, --init, --stop-at-grok, the training variants' flags, a NaN loss, Ctrl-C
# and --resume, a full disk at a checkpoint, and every bad-input case (nonzero exit, one line on
# stderr naming the flag or file, nothing written or changed). On a machine with a GPU, the short
# run again with --device cuda, whose metrics must match the CPU's.
#
# Usage: bash tests/cli/test_cli.sh path/to/tinygrok    (CTest runs it as the test `cli`)
set -u

source "$(dirname "$0")/harness.sh" cli "$@"
W="$TMP/w"    # the run directories, compared before and after each failing command
LOG="$TMP/log"  # what commands print
mkdir -p "$W" "$LOG"
cd "$W"

snapshot() { (cd "$W" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

# A tiny configuration: the one-hot MLP on a + b mod 23, 317 train pairs; memorises in ~75 steps.
TINY=(--p 23 --frac 0.6 --d-mlp 64 --lr 0.01 --threads 1)
TINY_SPLIT=(--p 23 --d-mlp 64 --lr 0.01 --threads 1)  # with --split, which --frac cannot change

# --- train --help lists every flag, with the default preset's values -----------------------
"$BIN" train --help >"$LOG/help" 2>&1 || fail "train --help exits nonzero"
for flag in --preset --op --p --frac --split --model --layers --d-model --heads --d-mlp --act \
            --ln --tokens --dropout --optimizer --lr --wd --betas --warmup --schedule --clip \
            --batch --steps --eval-every --checkpoint-every --seed --threads --device \
            --stop-at-grok --grok-patience --init --out --resume --force --quiet; do
  if grep -qE -- "^ +$flag( |,|$)" "$LOG/help"; then ok; else fail "train --help lacks $flag"; fi
done
for flag_default in "--preset TEXT=default" "--op TEXT=add" "--p INT=97" "--frac FLOAT=0.3" \
    "--model TEXT=mlp" "--layers INT=1" "--d-model INT=128" "--heads INT=4" "--d-mlp INT=500" \
    "--act TEXT=x2" "--ln TEXT=none" "--tokens TEXT=ab" "--dropout FLOAT=0" \
    "--optimizer TEXT=adamw" "--lr FLOAT=0.001" "--wd FLOAT=1" "--betas FLOAT=[0.9,0.98]" \
    "--warmup INT=10" "--schedule TEXT=constant" "--clip FLOAT=0" "--batch INT=0" \
    "--steps INT=5000" "--eval-every INT=25" "--checkpoint-every INT=1000" "--seed UINT=0" \
    "--threads INT=0" "--device TEXT=cpu" "--grok-patience INT=3"; do
  if grep -qF -- "$flag_default" "$LOG/help"; then ok; else fail "train --help lacks '$flag_default'"; fi
done

# --- a short real run: its files, and plain progress lines when stderr is not a terminal -----
"$BIN" train "${TINY[@]}" --steps 200 --eval-every 50 --checkpoint-every 100 --out run \
  >"$LOG/run.out" 2>"$LOG/run.err"
rc=$?
[ $rc -eq 0 ] && ok || { fail "the short run exits $rc"; cat "$LOG/run.err" >&2; }
for f in config.json split.txt metrics.csv summary.json curves.gp checkpoint/model.safetensors \
         checkpoint/optimizer.safetensors; do
  [ -s "run/$f" ] && ok || fail "the run lacks $f"
done
if command -v gnuplot >/dev/null 2>&1; then
  expect "curves.png is a PNG" py "import sys; sys.exit(open('run/curves.png','rb').read(4) != b'\x89PNG')"
else
  [ ! -e run/curves.png ] && ok || fail "curves.png without gnuplot"
fi
expect "metrics.csv has its header and a row per eval" py "
import csv, sys
rows = list(csv.reader(open('run/metrics.csv')))
assert rows[0] == 'step train_loss train_acc test_loss test_acc weight_norm lr elapsed_s'.split(), rows[0]
assert [int(r[0]) for r in rows[1:]] == [0, 50, 100, 150, 200], rows
assert float(rows[-1][2]) >= 0.99, 'did not memorise: ' + rows[-1][2]
"
expect "summary.json has T_m, T_g, ratio, final, wall_seconds, train_ms_per_step" py "
import json, csv
s = json.load(open('run/summary.json'))
for k in ['status', 'steps', 'T_m', 'T_g', 'ratio', 'final', 'wall_seconds', 'train_ms_per_step']:
    assert k in s, k
assert s['status'] == 'completed' and s['steps'] == 200, s
rows = list(csv.DictReader(open('run/metrics.csv')))
assert s['T_m'] == next(int(r['step']) for r in rows if float(r['train_acc']) >= 0.99), s
"
# Plain lines, one per eval, no carriage returns or escape codes.
if grep -q $'\r\|\x1b' "$LOG/run.err"; then fail "progress off a terminal has \\r or escapes"; else ok; fi
[ "$(grep -c '^step [0-9]*/200 ' "$LOG/run.err")" -eq 5 ] && ok ||
  fail "expected 5 plain progress lines, got: $(cat "$LOG/run.err")"
[ ! -s "$LOG/run.out" ] && ok || fail "train printed on stdout"

# On a terminal: the live bar (\r and an erase-line escape), when `script` can give one.
if command -v script >/dev/null 2>&1; then
  if script -qec "$BIN train ${TINY[*]} --steps 100 --eval-every 25 --out $TMP/tty_run" \
       "$LOG/tty" >/dev/null 2>&1; then
    if grep -q $'\r\x1b\[K\[' "$LOG/tty"; then ok; else fail "no progress bar on a terminal"; fi
  else
    fail "the run under script failed"
  fi
fi

# --- without --out: runs/PRESET-DATE-TIME, or the first free NAME-2, NAME-3, ... -------------
# (scripts/run.sh's way.) Each second of the next 20 already has its directory, as if another
# run had started then, so the run must take NAME-2; the earlier one is left alone.
mkdir -p "$TMP/default_out/runs"
now=$(date +%s)
for s in $(seq 0 20); do
  earlier="$TMP/default_out/runs/default-$(date -d "@$((now + s))" +%Y%m%d-%H%M%S)"
  mkdir "$earlier" && touch "$earlier/earlier"
done
(cd "$TMP/default_out" && "$BIN" train "${TINY[@]}" --steps 10 >"$LOG/default_out.out" \
  2>"$LOG/default_out.err")
rc=$?
[ $rc -eq 0 ] && ok || fail "train without --out exits $rc: $(cat "$LOG/default_out.err")"
claimed=$(cd "$TMP/default_out" && ls -d runs/default-*-2 2>/dev/null)
if [ "$(echo "$claimed" | wc -w)" -eq 1 ] && [ -s "$TMP/default_out/$claimed/summary.json" ]; then
  ok
else
  fail "train without --out did not run in runs/default-STAMP-2: '$claimed'"
fi
grep -qF "run directory $claimed" "$LOG/default_out.err" && ok ||
  fail "train without --out does not say where it ran: $(head -1 "$LOG/default_out.err")"
[ "$(find "$TMP/default_out/runs" -name earlier | wc -l)" -eq 21 ] &&
  [ "$(find "$TMP/default_out/runs" -mindepth 1 -maxdepth 1 | wc -l)" -eq 22 ] && ok ||
  fail "train without --out touched the directories already there"

# --- eval: JSON with train, test and all p² pairs ---------------------------------------------
for target in run run/checkpoint run/checkpoint/model.safetensors; do
  "$BIN" eval "$target" >"$LOG/eval.json" 2>"$LOG/eval.err"
  rc=$?
  [ $rc -eq 0 ] && ok || fail "eval $target exits $rc: $(cat "$LOG/eval.err")"
  expect "eval $target prints loss and accuracy on train, test and all 529 pairs" py "
import json, csv
e = json.load(open('$LOG/eval.json'))
assert e['all']['pairs'] == 23 * 23 and e['train']['pairs'] == 317, e
assert e['train']['pairs'] + e['test']['pairs'] == e['all']['pairs'], e
for part in ['train', 'test', 'all']:
    assert 0 <= e[part]['accuracy'] <= 1 and e[part]['loss'] > 0, e
last = list(csv.DictReader(open('run/metrics.csv')))[-1]
assert abs(e['train']['accuracy'] - float(last['train_acc'])) < 1e-6, (e, last)
assert abs(e['test']['loss'] - float(last['test_loss'])) < 1e-5 * float(last['test_loss']), (e, last)
assert e['step'] == 200
"
done

# --- --split, --init, --stop-at-grok ------------------------------------------------------------
"$BIN" train "${TINY_SPLIT[@]}" --seed 5 --split run/split.txt --steps 10 --quiet --out split_run \
  2>"$LOG/split.err" && ok || fail "--split run: $(cat "$LOG/split.err")"
cmp -s run/split.txt split_run/split.txt && ok || fail "--split did not reuse the split"
"$BIN" train "${TINY[@]}" --init run --steps 10 --eval-every 10 --quiet --out init_run \
  2>"$LOG/init.err" && ok || fail "--init run: $(cat "$LOG/init.err")"
expect "--init starts from the checkpoint's weights" py "
import csv
a = list(csv.reader(open('run/metrics.csv')))[-1]
b = list(csv.reader(open('init_run/metrics.csv')))[1]
assert b[0] == '0' and a[1:6] == b[1:6], (a, b)
"
"$BIN" train "${TINY[@]}" --steps 5000 --eval-every 25 --stop-at-grok --quiet --out grok_run \
  2>"$LOG/grok.err" && ok || fail "--stop-at-grok run: $(cat "$LOG/grok.err")"
expect "--stop-at-grok stops early, grokked" py "
import json
s = json.load(open('grok_run/summary.json'))
assert s['status'] == 'grokked' and s['steps'] < 5000 and s['T_g'] is not None, s
"

# --- the training variants (REFERENCE §2): listed in --help, recorded in config.json --------
for flag in --grokfast --grokfast-alpha --grokfast-lamb --grokfast-window --loss \
            --orthogonal-grad --init-scale --weight-norm-constraint --wd-target; do
  if grep -qE -- "^ +$flag( |,|$)" "$LOG/help"; then ok; else fail "train --help lacks $flag"; fi
done
"$BIN" train "${TINY[@]}" --steps 10 --eval-every 5 --quiet --out variants_run \
  --grokfast ma --grokfast-window 4 --grokfast-lamb 3 --loss stablemax --orthogonal-grad \
  --init-scale 2 --weight-norm-constraint --wd 0.5 --wd-target init --dropout 0.1 \
  2>"$LOG/variants.err" && ok || fail "the variants run: $(cat "$LOG/variants.err")"
expect "config.json records every variant flag" py "
import json
c = json.load(open('variants_run/config.json'))
want = {'grokfast': 'ma', 'grokfast_window': 4, 'grokfast_lamb': 3, 'loss': 'stablemax',
        'orthogonal_grad': True, 'init_scale': 2, 'weight_norm_constraint': True,
        'wd_target': 'init', 'dropout': 0.1}
for k, v in want.items():
    assert c[k] == v, (k, c[k], v)
"
"$BIN" eval variants_run >"$LOG/variants_eval.json" 2>"$LOG/variants_eval.err" && ok ||
  fail "eval of the variants run: $(cat "$LOG/variants_eval.err")"
expect "eval reports the run's own loss (StableMax), as metrics.csv does" py "
import json, csv
e = json.load(open('$LOG/variants_eval.json'))
last = list(csv.DictReader(open('variants_run/metrics.csv')))[-1]
assert abs(e['test']['loss'] - float(last['test_loss'])) < 1e-5 * float(last['test_loss']), (e, last)
"
rm -rf variants_run  # the bad-input checks below compare the run directories

# --- a NaN loss: exit 3, the step and the last good checkpoint named -------------------------
"$BIN" train --p 23 --frac 0.6 --d-mlp 64 --threads 1 --optimizer sgd --lr 1e5 --warmup 0 \
  --steps 50 --eval-every 1 --checkpoint-every 1 --quiet --out nan_run >/dev/null 2>"$LOG/nan.err"
rc=$?
[ $rc -eq 3 ] && ok || fail "a NaN loss exits $rc, not 3"
grep -q "loss is .*nan.* step [0-9]*; stopped\. The last good checkpoint (step [0-9]*)" \
  "$LOG/nan.err" && ok || fail "the NaN message: $(cat "$LOG/nan.err")"

# --- a run directory whose name a shell would read as commands: it is only a name ---------------
quoted="it's; touch pwned; echo '"
"$BIN" train "${TINY[@]}" --steps 20 --eval-every 10 --quiet --out "$quoted" >/dev/null \
  2>"$LOG/quoted.err" && ok || fail "a run in \"$quoted\": $(cat "$LOG/quoted.err")"
[ ! -e pwned ] && ok || fail "the run directory's name ran as a shell command"
if command -v gnuplot >/dev/null 2>&1; then
  [ -s "$quoted/curves.png" ] && ok || fail "no curves.png in \"$quoted\": $(cat "$LOG/quoted.err")"
fi
rm -rf "$quoted" pwned
# --quiet: the closing line alone. Without it, a one-step run's flat weight norm (an empty range
# to gnuplot's autoscaling) still draws without a warning from gnuplot.
"$BIN" train "${TINY[@]}" --steps 1 --quiet --out one_step >/dev/null 2>"$LOG/one_step.err"
[ "$(wc -l <"$LOG/one_step.err")" -eq 1 ] && ok || fail "--quiet printed: $(cat "$LOG/one_step.err")"
"$BIN" train "${TINY[@]}" --steps 1 --force --out one_step >/dev/null 2>"$LOG/one_step.err" ||
  fail "a one-step run: $(cat "$LOG/one_step.err")"
if command -v gnuplot >/dev/null 2>&1; then
  grep -i "warning" "$LOG/one_step.err" && fail "gnuplot warned on a one-step run's curves" || ok
  [ -s one_step/curves.png ] && ok || fail "no curves.png for a one-step run"
fi
rm -rf one_step

# --- bad input: exit 2, one line on stderr naming the flag or file, nothing changed -----------
mkdir -p not_a_run && echo "notes" >not_a_run/notes.txt
cp -r run truncated && head -c 300 run/checkpoint/model.safetensors >truncated/checkpoint/model.safetensors
expect_error() {  # expect_error TEXT ARGS...: fails, stderr one line containing TEXT, W unchanged
  local text=$1; shift
  local before after rc
  before=$(snapshot)
  "$BIN" "$@" >"$LOG/bad.out" 2>"$LOG/bad.err"
  rc=$?
  after=$(snapshot)
  local what="tinygrok $*"
  [ $rc -eq 2 ] && ok || fail "$what: exit $rc, not 2"
  [ "$(wc -l <"$LOG/bad.err")" -eq 1 ] && ok || fail "$what: stderr is not one line: $(cat "$LOG/bad.err")"
  grep -qF -- "$text" "$LOG/bad.err" && ok || fail "$what: stderr does not name '$text': $(cat "$LOG/bad.err")"
  [ ! -s "$LOG/bad.out" ] && ok || fail "$what: printed on stdout"
  [ "$before" == "$after" ] && ok || fail "$what: changed the run directories"
  [ ! -e new ] && ok || { fail "$what: created new/"; rm -rf new; }
}
expect_error "--op" train --op bogus --out new
expect_error "--preset" train --preset bogus --out new
expect_error "--p" train --op div --p 24 --out new
expect_error "--frac" train --frac 1.5 --out new
expect_error "--batch" train "${TINY[@]}" --batch 1000 --out new
expect_error "--steps" train "${TINY[@]}" --steps 0 --out new
expect_error "--p" train --p abc --out new
expect_error "--device" train "${TINY[@]}" --device gpu --out new
expect_error "--grokfast" train "${TINY[@]}" --grokfast fast --out new
expect_error "--loss" train "${TINY[@]}" --loss hinge --out new
expect_error "--init-scale" train "${TINY[@]}" --init-scale 0 --out new
expect_error "--wd-target" train "${TINY[@]}" --wd-target one --out new
expect_error "--layers 100000000, --d-model 128, --d-mlp 512); at most 2^31 = 2147483648" \
  train --preset nanda --layers 100000000 --out new
expect_error "--layers: has no effect on the mlp model" train "${TINY[@]}" --layers 2 --out new
expect_error "--heads: has no effect on the mlp model" train "${TINY[@]}" --heads 3 --out new
expect_error "--grokfast-window: has no effect without --grokfast ma" \
  train "${TINY[@]}" --grokfast ema --grokfast-window 5 --out new
expect_error "--grok-patience: has no effect without --stop-at-grok" \
  train "${TINY[@]}" --grok-patience 5 --out new
expect_error "--p: has no effect with --op s5" train "${TINY[@]}" --op s5 --out new  # TINY has --p
expect_error "--wd-target: has no effect with --wd 0" \
  train "${TINY[@]}" --wd 0 --wd-target init --out new
# --device cuda: without a GPU (or the CUDA backend) a clear error like any bad flag; with one,
# the short run again on the GPU (below).
"$BIN" train "${TINY[@]}" --device cuda --steps 1 --quiet --out gpu_probe >/dev/null \
  2>"$LOG/gpu_probe.err"
if grep -q "no CUDA" "$LOG/gpu_probe.err"; then
  expect_error "--device" train "${TINY[@]}" --device cuda --out new
  gpu=0
else
  rm -rf gpu_probe
  gpu=1
fi
expect_error "cuda:63" train "${TINY[@]}" --device cuda:63 --out new
expect_error "--no-such-flag" train --no-such-flag --out new
expect_error "--out" train "${TINY[@]}" --out run
expect_error "--op" train --op bogus --out run --force   # --force must not remove it first
expect_error "split.txt" train "${TINY_SPLIT[@]}" --split missing/split.txt --out new
expect_error "--frac: has no effect with --split" train "${TINY[@]}" --split run/split.txt --out new
expect_error "not_a_run" train --resume not_a_run
expect_error "missing_run" train --resume missing_run
expect_error "--lr" train --resume run --lr 0.5
expect_error "--betas" train --resume run --betas 0.5 0.5
expect_error "--steps" train --resume run --steps 100
expect_error "--force: has no effect with --resume" train --resume run --force
cp -r run cosine && sed -i 's/"schedule": "constant"/"schedule": "cosine"/' cosine/config.json
expect_error "--steps cannot change a run with --schedule cosine" train --resume cosine --steps 400
rm -rf cosine
expect_error "--cuda-graph: has no effect without --device cuda" train --resume run --cuda-graph off
expect_error "model.safetensors" train --resume truncated --steps 400
expect_error "model.safetensors" train "${TINY[@]}" --init truncated --out new
expect_error "model.safetensors" eval truncated
expect_error "missing_run" eval missing_run
[ ! -e missing_run ] && ok || fail "created missing_run"
expect_error "unknown command 'trian'" trian --steps 10
# CLI11's parse errors exit 2 too; its counts are put in tinygrok's words (grok/main.cpp).
expect_error "--betas takes 2 values, got 1" train "${TINY[@]}" --betas 0.9 --out new
expect_error "--betas takes 2 values, got 4" train "${TINY[@]}" --betas 0.9 0.98 --betas 0.9 0.99 \
  --out new
expect_error "--p is given twice: give it once" train --p 23 --p 29 --out new
expect_error "--wd is given 3 times: give it once" train "${TINY[@]}" --wd 1 --wd 2 --wd 3 --out new
expect_error "--rho is given twice: give it once" analyze run --rho 0.1 --rho 0.2
expect_error "--threads: must be between 0" train --p 23 --threads 100000 --out new
expect_error "--seed: expected a whole number >= 0, got '-1'" train "${TINY[@]}" --seed -1 --out new
expect_error "--seed: '18446744073709551616' is out of range" \
  train "${TINY[@]}" --seed 18446744073709551616 --out new
# Numbers are read whole and in decimal: CLI11 alone reads "" as 0, "0x10" as 16, and clamps a
# number past int64 to its largest.
expect_error "--wd: expected a number, got nothing" train "${TINY[@]}" --wd "" --out new
expect_error "--p: expected a whole number, got '0x10'" train --p 0x10 --out new
expect_error "--warmup: '99999999999999999999' is out of range" \
  train "${TINY[@]}" --warmup 99999999999999999999 --out new
expect_error "--betas: expected a number, got '0.9x'" train "${TINY[@]}" --betas 0.9x 0.98 --out new
"$BIN" train --p 023 --frac 0.6 --d-mlp 8 --threads 1 --steps 1 --quiet --out octal 2>"$LOG/octal.err"
expect "--p 023 is 23, not octal 19" py "import json; assert json.load(open('octal/config.json'))['p'] == 23"
rm -rf octal
# Infinite values train would only trip over at its first step, after --force had removed the run.
for flag in --clip --wd --lr; do
  expect_error "$flag: must be" train --p 23 --frac 0.6 --d-mlp 64 --threads 1 $flag inf \
    --out run --force
done
expect_error "--wd: must be" train "${TINY[@]}" --wd inf --wd-target init --out run --force
expect_error "--grokfast-window: 9223372036854775807 is more than --steps (20)" \
  train "${TINY[@]}" --steps 20 --grokfast ma --grokfast-window 9223372036854775807 --out new
# --force replaces a run and nothing else: not a directory of other files, not the working one.
expect_error "not a tinygrok run" train "${TINY[@]}" --out not_a_run --force
# Without --force each says what will work: --resume or --force for a run, another --out else.
expect_error "run already exists; pass --resume to continue the run there or --force" \
  train "${TINY[@]}" --out run
expect_error "not_a_run already exists and is not empty (and not a run); choose another --out" \
  train "${TINY[@]}" --out not_a_run
(cd run && "$BIN" train --p 23 --frac 0.6 --d-mlp 64 --threads 1 --steps 5 --out . --force \
  >/dev/null 2>"$LOG/dot.err")
[ $? -eq 2 ] && grep -q "holds the working directory" "$LOG/dot.err" && [ -e run/config.json ] \
  && ok || fail "--out . --force inside a run: $(cat "$LOG/dot.err")"
# Weights that are not finite are refused where they are loaded, naming the file and tensor.
cp -r run nan_weights
py "
import struct
p = 'nan_weights/checkpoint/model.safetensors'
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
b[8 + n:8 + n + 4] = struct.pack('<f', float('nan'))
open(p, 'wb').write(b)
"
expect_error "holds nan at element 0" eval nan_weights
# set_checkpoint_metadata RUN KEY VALUE: KEY's value in the metadata of RUN's two checkpoint
# files (safetensors: an 8-byte header length, the JSON header, the tensors' bytes).
set_checkpoint_metadata() {
  py "
import json, struct, sys
for name in ['model', 'optimizer']:
    p = sys.argv[1] + '/checkpoint/%s.safetensors' % name
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    h['__metadata__'][sys.argv[2]] = sys.argv[3]
    t = json.dumps(h).encode()
    t += b' ' * (-len(t) % 8)
    open(p, 'wb').write(struct.pack('<Q', len(t)) + t + b[8 + n:])
" "$@"
}
# A number in a checkpoint's metadata is read whole: "1e3" is not step 1.
cp -r run bad_meta
set_checkpoint_metadata bad_meta step 1e3
expect_error "metadata 'step' is '1e3', not an integer" train --resume bad_meta --steps 400
expect_error "metadata 'step' is '1e3', not an integer" eval bad_meta
rm -rf bad_meta
# The run's configuration in a checkpoint's metadata: not JSON, or JSON that train would refuse.
cp -r run bad_config
set_checkpoint_metadata bad_config config 'not json'
expect_error "eval: checkpoint bad_config: the configuration in its metadata is not JSON" \
  eval bad_config
expect_error "the configuration in its metadata is not JSON" train --resume bad_config --steps 400
set_checkpoint_metadata bad_config config "$(sed 's/"p": 23/"p": 0/' run/config.json)"
expect_error "the configuration in its metadata: --p: must be at least 2, got 0" eval bad_config
expect_error "was written by a different run (p: 0 there, 23 here)" \
  train --resume bad_config --steps 400
# A configuration, in the metadata and in config.json alike, whose model is not the tensors'.
sed -i 's/"d_mlp": 64/"d_mlp": 16/' bad_config/config.json
set_checkpoint_metadata bad_config config "$(cat bad_config/config.json)"
expect_error "eval: checkpoint bad_config does not fit its run's model: load_state_dict: W_in" \
  eval bad_config
expect_error "--resume: checkpoint bad_config/checkpoint does not fit this run: load_state_dict" \
  train --resume bad_config --steps 400
rm -rf bad_config
# A config.json that is not JSON.
cp -r run broken && echo '{"p": 23,' > broken/config.json
expect_error "--resume: broken/config.json is not valid JSON" train --resume broken --steps 400
rm -rf broken
# A run from a GPU this machine lacks: the error says how to go on, and --device cpu does.
cp -r run moved && sed -i 's/"device": "cpu"/"device": "cuda:63"/' moved/config.json
expect_error "--device can move a run (--device cpu: on the CPU)" train --resume moved --steps 400
"$BIN" train --resume moved --steps 400 --device cpu --quiet 2>"$LOG/moved.err" && ok ||
  fail "--resume --device cpu: $(cat "$LOG/moved.err")"
rm -rf moved
# An edited config.json naming a key twice would resume with the last one: refused.
cp -r run twice && sed -i '1s/{/{"lr": 0.5,/' twice/config.json
expect_error 'twice/config.json: key "lr" is given twice' train --resume twice --steps 400
rm -rf twice
expect_error "nan_weights/checkpoint/model.safetensors: tensor" train --resume nan_weights --steps 400
rm -rf nan_weights
# A config.json that train would refuse as flags is refused as the file's, naming it.
cp -r run bad_p && sed -i 's/"p": 23/"p": 0/' bad_p/config.json
expect_error "--resume: bad_p/config.json: --p: must be at least 2, got 0" train --resume bad_p
expect_error "--resume: run/config.json with --steps: --steps: must be positive, got 0" \
  train --resume run --steps 0
rm -rf bad_p
# A metrics row with more than its columns is refused, not rewritten by the resume.
cp -r run extra && sed -i '3s/$/,99/' extra/metrics.csv
expect_error "extra/metrics.csv line 3 is not a metrics row" train --resume extra --steps 400 --quiet
rm -rf extra
# A FIFO where the checkpoint should be is refused, not waited on.
cp -r run fifo && rm fifo/checkpoint/model.safetensors && mkfifo fifo/checkpoint/model.safetensors
expect_error "model.safetensors: not a regular file" eval fifo
rm -rf fifo

# --- on a GPU: the short run on cuda:0 logs what the CPU run logged, within float32 rounding ----
if [ $gpu -eq 1 ]; then
  "$BIN" train "${TINY[@]}" --device cuda --steps 200 --eval-every 50 --checkpoint-every 100 \
    --quiet --out gpu_run 2>"$LOG/gpu_run.err" && ok || fail "--device cuda run: $(cat "$LOG/gpu_run.err")"
  expect "the GPU run's metrics match the CPU run's" py "
import csv
cpu = list(csv.DictReader(open('run/metrics.csv')))
gpu = list(csv.DictReader(open('gpu_run/metrics.csv')))
assert [r['step'] for r in gpu] == [r['step'] for r in cpu], (cpu, gpu)
for c, g in zip(cpu, gpu):
    for k in ['train_loss', 'test_loss', 'weight_norm']:
        assert abs(float(g[k]) - float(c[k])) <= 1e-3 * abs(float(c[k])), (k, c, g)
    for k in ['train_acc', 'test_acc']:
        assert abs(float(g[k]) - float(c[k])) <= 0.01, (k, c, g)
"
fi

# --- Ctrl-C: exit 130 with a checkpoint, and --resume finishes the run ------------------------
LONG=(--preset nanda --p 13 --frac 0.5 --d-model 16 --heads 2 --d-mlp 32 --batch 16 --threads 1)
# stopped_run SIGNAL DIR [COMMAND...]: a long run into DIR, sent SIGNAL once it has logged two
# evals (after running COMMAND, if given, while it runs); sets rc.
stopped_run() {
  "$BIN" train "${LONG[@]}" --steps 1000000 --eval-every 10 --out "$2" >/dev/null \
    2>"$LOG/$2.err" &
  local pid=$!
  for _ in $(seq 1 1200); do  # up to 60 s
    [ -f "$2/metrics.csv" ] && [ "$(wc -l <"$2/metrics.csv")" -ge 3 ] && break
    sleep 0.05
  done
  [ $# -gt 2 ] && "${@:3}"
  kill "-$1" "$pid"
  wait "$pid"
  rc=$?
}
# A run directory a live train holds is neither resumed nor replaced (--force) by another.
while_termed_runs() {
  "$BIN" train --resume termed --steps 2000000 >"$LOG/busy.out" 2>"$LOG/busy.err"
  [ $? -eq 2 ] && grep -q "termed is in use by another tinygrok train" "$LOG/busy.err" && ok ||
    fail "--resume of a live run: $(cat "$LOG/busy.err")"
  "$BIN" train "${TINY[@]}" --out termed --force >"$LOG/busy.out" 2>"$LOG/busy.err"
  [ $? -eq 2 ] && grep -q "termed is in use by another tinygrok train" "$LOG/busy.err" && ok ||
    fail "--force over a live run: $(cat "$LOG/busy.err")"
}
# SIGTERM (a scheduler's stop) first: the same as Ctrl-C.
stopped_run TERM termed while_termed_runs
[ $rc -eq 130 ] && [ -s termed/checkpoint/model.safetensors ] && ok ||
  fail "SIGTERM: exit $rc, checkpoint: $(ls termed/checkpoint 2>&1), $(cat "$LOG/termed.err")"
rm -rf termed
stopped_run INT long
[ $rc -eq 130 ] && ok || fail "Ctrl-C exits $rc, not 130: $(cat "$LOG/long.err")"
[ -s long/checkpoint/model.safetensors ] && ok || fail "no checkpoint after Ctrl-C"
grep -q "interrupted at step" "$LOG/long.err" && ok || fail "no 'interrupted' line"
stopped=$(py "import json; print(json.load(open('long/summary.json'))['steps'])")
py "import json; s = json.load(open('long/summary.json')); assert s['status'] == 'interrupted'" &&
  ok || fail "summary after Ctrl-C is not 'interrupted'"
"$BIN" train --resume long --steps $((stopped + 20)) --quiet 2>"$LOG/resume.err" && ok ||
  fail "--resume after Ctrl-C: $(cat "$LOG/resume.err")"
expect "the resumed run completed" py "
import json, csv
s = json.load(open('long/summary.json'))
assert s['status'] == 'completed' and s['steps'] == $stopped + 20, s
steps = [int(r['step']) for r in csv.DictReader(open('long/metrics.csv'))]
assert steps == sorted(set(steps)) and steps[-1] == $stopped + 20, steps
"

# --- a full disk at a checkpoint: the last checkpoint stays, and --resume goes on from it -----
# A file size limit (ulimit -f, with SIGXFSZ ignored so that a write fails with EFBIG instead of
# killing the process) below the checkpoint's size stands in for the full disk.
"$BIN" train "${TINY[@]}" --steps 400 --eval-every 50 --checkpoint-every 100 --quiet \
  --out uninterrupted 2>"$LOG/uninterrupted.err" || fail "$(cat "$LOG/uninterrupted.err")"
"$BIN" train "${TINY[@]}" --steps 200 --eval-every 50 --checkpoint-every 100 --quiet \
  --out full_disk 2>"$LOG/full_disk.err" || fail "$(cat "$LOG/full_disk.err")"
saved=$(sha256sum full_disk/checkpoint/*)
(trap '' XFSZ; ulimit -f 12; exec "$BIN" train --resume full_disk --steps 400 --quiet) \
  >/dev/null 2>"$LOG/full_disk.err"
rc=$?
# (Its one line, but a coverage build's counters, written at exit, also meet the limit.)
[ $rc -eq 2 ] && [ "$(grep -vc '^libgcov profiling error:' "$LOG/full_disk.err")" -eq 1 ] &&
  grep -q "checkpoint full_disk/checkpoint.tmp/.*: cannot write .*File too large" \
    "$LOG/full_disk.err" && ok ||
  fail "a checkpoint past the disk: exit $rc, $(cat "$LOG/full_disk.err")"
[ "$(sha256sum full_disk/checkpoint/*)" = "$saved" ] && ok ||
  fail "a failed checkpoint changed the last one"
"$BIN" train --resume full_disk --steps 400 --quiet 2>"$LOG/full_disk.err" && ok ||
  fail "--resume after a full disk: $(cat "$LOG/full_disk.err")"
cmp -s <(cut -d, -f1-7 uninterrupted/metrics.csv) <(cut -d, -f1-7 full_disk/metrics.csv) &&
  [ ! -e full_disk/checkpoint.tmp ] && ok ||
  fail "the run resumed after a full disk differs from an uninterrupted one"
rm -rf uninterrupted full_disk

finish cli
