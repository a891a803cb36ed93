#!/usr/bin/env bash
# Serves the example project with runserver, drives a few requests through it,
# then lists the recorded traces. Called by `make example`.
set -euo pipefail
python_bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
port=${2:-8000}
api_port=${3:-8765}
cd "$(dirname "$0")/../example_project"
export EXAMPLE_API_URL="http://127.0.0.1:${api_port}"

"$python_bin" stub_api.py --port "$api_port" >/dev/null 2>&1 &
stub_pid=$!
"$python_bin" manage.py runserver "127.0.0.1:${port}" --noreload >runserver.log 2>&1 &
server_pid=$!
trap 'kill $stub_pid $server_pid 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
  if "$python_bin" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${port}/todos/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

"$python_bin" drive.py "http://127.0.0.1:${port}"
echo
"$python_bin" manage.py kolo_traces --count 15

# Invert the newest form POST (the create) into a test, and run it.
trace_id=$("$python_bin" manage.py kolo_traces --json --count 50 | "$python_bin" -c '
import json, sys
traces = json.load(sys.stdin)
print(next(t["id"] for t in traces if t["method"] == "POST" and t["path"] == "/todos/new/"))')
echo
echo "python manage.py kolo_generate $trace_id --verify"
"$python_bin" manage.py kolo_generate "$trace_id" --style unittest --verify -o "${TMPDIR:-/tmp}/test_example_generated.py" --force
cat "${TMPDIR:-/tmp}/test_example_generated.py"

# The whole browsing session as a regression suite: one module per view,
# repeats folded into one test, run under coverage.
echo
echo "python manage.py kolo_generate --since 15m -o generated_tests --verify --coverage"
"$python_bin" manage.py kolo_generate --since 15m --style unittest -o generated_tests --force --verify --coverage
