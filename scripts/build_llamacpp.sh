#!/usr/bin/env bash
# Build, once, the two real Chat Completions servers used by the interop tests (tests/interop):
#   - llama.cpp's `llama-server`, compiled with cmake from the sources vendored in the PyPI sdist
#     of llama-cpp-python (the machine reaches PyPI but not GitHub);
#   - a venv with `llama-cpp-python[server]` installed, for `python -m llama_cpp.server`.
# The sdist also ships vocab-only GGUF tokenizers and chat templates; the ones the tests need are
# copied to share/. Everything lives under a per-version cache directory and is reused as is:
#   ${WIREBRIDGE_LLAMACPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wirebridge/llamacpp-VERSION}/
#     bin/llama-server  venv/  share/ggml-vocab-qwen2.gguf  share/Qwen-Qwen2.5-7B-Instruct.jinja
# A second caller waits on a lock instead of building again. Usage:
#   bash scripts/build_llamacpp.sh [all|server|python]      (default: all)
# First run on 2 cores: ~40 s download, 447 s llama-server, 432 s llama-cpp-python (measured, with
# other work on the machine); later runs return at once.
set -euo pipefail

VERSION="${LLAMACPP_PYTHON_VERSION:-0.3.36}"
WHAT="${1:-all}"
CACHE="${WIREBRIDGE_LLAMACPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wirebridge/llamacpp-$VERSION}"
PYTHON="${WIREBRIDGE_BUILD_PYTHON:-python3}"
JOBS="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
VOCAB="ggml-vocab-qwen2.gguf"
TEMPLATE="Qwen-Qwen2.5-7B-Instruct.jinja"

case "$WHAT" in
  all | server | python) ;;
  *)
    echo "usage: $0 [all|server|python]" >&2
    exit 2
    ;;
esac

log() { printf '[build_llamacpp %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

server_done() { [[ -x "$CACHE/bin/llama-server" && -f "$CACHE/share/$VOCAB" && -f "$CACHE/share/$TEMPLATE" ]]; }
python_done() { [[ -f "$CACHE/venv/.wirebridge-complete" && -x "$CACHE/venv/bin/python" ]]; }
want_server() { [[ "$WHAT" == all || "$WHAT" == server ]]; }
want_python() { [[ "$WHAT" == all || "$WHAT" == python ]]; }
all_done() { { ! want_server || server_done; } && { ! want_python || python_done; }; }

report() {
  echo "cache=$CACHE"
  want_server && echo "llama_server=$CACHE/bin/llama-server"
  want_python && echo "python=$CACHE/venv/bin/python"
  echo "vocab=$CACHE/share/$VOCAB"
  echo "template=$CACHE/share/$TEMPLATE"
}

if all_done; then
  report
  exit 0
fi

missing=()
for tool in cmake c++ cc "$PYTHON"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "missing build tools: ${missing[*]}" >&2
  exit 3
fi

mkdir -p "$CACHE"
exec 9>"$CACHE.lock"
if ! flock -n 9; then
  log "another build holds $CACHE.lock; waiting for it"
  flock 9
fi
if all_done; then
  report
  exit 0
fi

# A small venv that owns pip for the download; the python server is installed into the real venv.
tools_venv="$CACHE/tools-venv"
if [[ ! -x "$tools_venv/bin/pip" ]]; then
  "$PYTHON" -m venv "$tools_venv"
fi

sdist="$CACHE/sdist/llama_cpp_python-$VERSION.tar.gz"
if [[ ! -f "$sdist" ]]; then
  log "downloading the llama-cpp-python $VERSION sdist from PyPI"
  rm -rf "$CACHE/sdist.tmp"
  "$tools_venv/bin/pip" download --quiet --no-deps --no-binary :all: \
    "llama-cpp-python==$VERSION" -d "$CACHE/sdist.tmp"
  mkdir -p "$CACHE/sdist"
  mv "$CACHE/sdist.tmp/llama_cpp_python-$VERSION.tar.gz" "$sdist"
  rm -rf "$CACHE/sdist.tmp"
fi

src="$CACHE/src/llama_cpp_python-$VERSION"
if [[ ! -f "$src/.extracted" ]]; then
  log "extracting the sdist"
  rm -rf "$CACHE/src"
  mkdir -p "$CACHE/src"
  tar -xzf "$sdist" -C "$CACHE/src"
  touch "$src/.extracted"
fi

mkdir -p "$CACHE/share"
cp "$src/vendor/llama.cpp/models/$VOCAB" "$CACHE/share/$VOCAB"
cp "$src/vendor/llama.cpp/models/templates/$TEMPLATE" "$CACHE/share/$TEMPLATE"

if want_server && ! server_done; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  build="$CACHE/build-server"
  log "configuring llama-server (cmake ${generator[*]:-})"
  start=$SECONDS
  cmake -S "$src/vendor/llama.cpp" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF >"$CACHE/build-server.log" 2>&1 \
    || { tail -40 "$CACHE/build-server.log" >&2; exit 1; }
  log "building llama-server with $JOBS jobs (log: $CACHE/build-server.log)"
  cmake --build "$build" --target llama-server -j "$JOBS" >>"$CACHE/build-server.log" 2>&1 \
    || { tail -40 "$CACHE/build-server.log" >&2; exit 1; }
  mkdir -p "$CACHE/bin"
  cp "$build/bin/llama-server" "$CACHE/bin/llama-server.tmp"
  mv "$CACHE/bin/llama-server.tmp" "$CACHE/bin/llama-server"
  rm -rf "$build"
  log "llama-server built in $((SECONDS - start)) s"
fi

if want_python && ! python_done; then
  venv="$CACHE/venv"
  log "building llama-cpp-python[server] $VERSION into $venv (log: $CACHE/build-python.log)"
  start=$SECONDS
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  # LLAVA_BUILD=OFF: the multimodal library is loaded lazily and the tests never use it.
  CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
    "$venv/bin/pip" install --no-cache-dir "llama-cpp-python[server] @ file://$sdist" \
    >"$CACHE/build-python.log" 2>&1 \
    || { tail -40 "$CACHE/build-python.log" >&2; exit 1; }
  "$venv/bin/python" -c "import llama_cpp, llama_cpp.server.app" >>"$CACHE/build-python.log" 2>&1 \
    || { tail -40 "$CACHE/build-python.log" >&2; exit 1; }
  touch "$venv/.wirebridge-complete"
  log "llama-cpp-python[server] built in $((SECONDS - start)) s"
fi

if server_done && python_done; then
  rm -rf "$CACHE/src" "$tools_venv"
fi
report
