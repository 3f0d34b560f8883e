#!/usr/bin/env bash
# Runs the workspace tests against a throwaway moto server (DynamoDB + SQS emulator; no Docker).
# Arguments are passed to `cargo test`, e.g. `scripts/test.sh -p shared --test integration aws_moto::` (each package's
# integration tests are one binary, `integration`, with one module per area).
set -euo pipefail

MOTO_VERSION="5.2.1"
CFN_LINT_VERSION="1.58.0"
# Translates the SAM template to CloudFormation (scripts/template-roles.py): the roles the tests hold functions to.
SAM_TRANSLATOR_VERSION="1.115.0"
# The Lambda tooling: cargo-lambda's `watch` emulates the Lambda Runtime API for the emulator test
# (tests/lambda_emulator); the SAM CLI and zig (cross-linking for arm64) build the functions as `sam build` does.
CARGO_LAMBDA_VERSION="1.9.2"
SAM_CLI_VERSION="1.170.0"
ZIGLANG_VERSION="0.17.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

venv="$repo_root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating $venv"
    python3 -m venv "$venv"
fi
# Pinned so a new release cannot change emulator or build behaviour under the tests.
pinned=("moto==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
    "cargo-lambda==$CARGO_LAMBDA_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" "ziglang==$ZIGLANG_VERSION")
installed="$("$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null || true)"
missing=""
for requirement in "${pinned[@]}"; do
    grep -qix "$requirement" <<<"$installed" || missing=1
done
if [[ -n "$missing" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" \
        "cargo-lambda==$CARGO_LAMBDA_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" "ziglang==$ZIGLANG_VERSION"
fi
# cargo-lambda (and the SAM CLI, which runs it) find zig through the venv's python.
export PATH="$venv/bin:$PATH"
export CARGO_LAMBDA="$venv/bin/cargo-lambda"

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
moto_dir="$repo_root/.moto"
mkdir -p "$moto_dir"
moto_log="$moto_dir/moto-$port.log"

"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!

finish() {
    local status=$?
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    if [[ $status -ne 0 ]]; then
        echo "tests failed (exit $status); moto server log: $moto_log" >&2
    else
        rm -f "$moto_log" "$moto_dir/template-roles-$port.json"
    fi
    exit "$status"
}
trap finish EXIT

endpoint="http://127.0.0.1:$port"
ready=""
for _ in $(seq 1 60); do
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "moto server exited during start-up; log: $moto_log" >&2
        exit 1
    fi
    if "$venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "$endpoint/moto-api/" >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ -z "$ready" ]]; then
    echo "moto server did not answer on $endpoint within 30 s; log: $moto_log" >&2
    exit 1
fi

export AWS_ENDPOINT_URL="$endpoint"
export AWS_REGION="eu-west-1"
export AWS_ACCESS_KEY_ID="testing"
export AWS_SECRET_ACCESS_KEY="testing"
export MOTO_ENDPOINT_READY=1
# Keep a developer's profile or SSO settings from leaking into the tests.
unset AWS_PROFILE AWS_SESSION_TOKEN

# Default: every package and every target. Cargo lets `--workspace` override `-p` and `--all-targets`
# override `--test`, so each default is dropped when the caller narrows that dimension.
scope=(--workspace)
targets=(--all-targets)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        -p|--package|--package=*|-p*) scope=() ;;
        --lib|--bins|--bin|--bin=*|--tests|--test|--test=*|--benches|--bench|--bench=*|--examples|--example|--example=*|--doc)
            targets=() ;;
    esac
done

# The deployment template: cfn-lint plus the project's checks of the settings cfn-lint does not catch, and the
# checks' own tests (each rule catches a template that breaks it).
"$venv/bin/python" scripts/check-template.py --cfn-lint
"$venv/bin/python" -m unittest --quiet scripts/test_check_template.py

# Each function's role and environment as the SAM translator deploys them: the AWS flow tests run every function
# under exactly these (shared/tests/deployed).
roles_json="$moto_dir/template-roles-$port.json"
"$venv/bin/python" scripts/template-roles.py template.yaml -o "$roles_json"
export TEMPLATE_ROLES_JSON="$roles_json"

# `sam build` exactly as a deployment runs it (BuildMethod rust-cargolambda: one `cargo lambda build --release` per
# function, in the function's own package; zig cross-links arm64): in CI, or with SAM_BUILD=1. SAM_BUILD_ARCH
# (default x86_64, which this machine can run) picks the template's Architecture; for x86_64 the emulator test
# then runs SAM's bootstraps instead of the debug builds. Takes minutes: six LTO release builds.
if [[ $# -eq 0 && ( "${CI:-}" == "true" || "${SAM_BUILD:-}" == "1" ) ]]; then
    arch="${SAM_BUILD_ARCH:-x86_64}"
    overrides=()
    if grep -q '^  Architecture:$' template.yaml; then
        overrides=(--parameter-overrides "Architecture=$arch")
    elif [[ "$arch" != "arm64" ]]; then
        echo "template.yaml has no Architecture parameter: sam build builds its arm64" >&2
        arch="arm64"
    fi
    if [[ "$arch" == "arm64" ]]; then
        rustup target add aarch64-unknown-linux-gnu
    fi
    sam_started=$SECONDS
    sam build --build-dir "$repo_root/.aws-sam/build" ${overrides[@]+"${overrides[@]}"}
    echo "sam build ($arch): $((SECONDS - sam_started)) s"
    if [[ "$arch" == "x86_64" ]]; then
        export LAMBDA_BOOTSTRAP_DIR="$repo_root/.aws-sam/build"
    fi
fi

echo "moto $MOTO_VERSION on $endpoint (pid $moto_pid)"
test_log="$moto_dir/cargo-test-$port.log"
cargo test ${scope[@]+"${scope[@]}"} ${targets[@]+"${targets[@]}"} "$@" 2>&1 | tee "$test_log"
if [[ $# -eq 0 ]]; then
    # `shared` as a function with fewer AWS clients links it: it builds, and a setting that needs a client it
    # lacks is a configuration error at start-up (the workspace run above has every client).
    cargo test -p shared --lib --no-default-features --features dynamodb,sqs -- config:: settings:: 2>&1 | tee -a "$test_log"
fi
# One closing line for the whole run (cargo prints one per test binary, the last often for a binary without
# tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$test_log"
rm -f "$test_log"
