#!/usr/bin/env bash
# Lints the repository (make lint; make test runs it first): ruff's formatter in
# check mode and ruff's linter over the Python files (configured in pyproject.toml),
# then ShellCheck over every shell script. Runs every check, then fails if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

ruff=.venv/bin/ruff
if [[ ! -x $ruff ]]; then
  echo "lint: $ruff is missing (make venv)" >&2
  exit 1
fi
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "lint: shellcheck is missing (make prerequisites, or apt-get install shellcheck)" >&2
  exit 1
fi

# Shell scripts under files/ (deployed to the servers): those whose first line is a
# bash or sh shebang or a ShellCheck `shell=` directive, and *.sh fragments without
# either (like files/status.sh, which the status task feeds to `sh -s`), checked as sh.
scripts=() fragments=()
while IFS= read -r -d '' file; do
  first=""
  IFS= read -r first <"$file" || true
  if [[ $first =~ ^#!.*[/[:space:]](ba)?sh([[:space:]]|$) || $first =~ ^#[[:space:]]*shellcheck[[:space:]]+shell= ]]; then
    scripts+=("$file")
  elif [[ $file == *.sh ]]; then
    fragments+=("$file")
  fi
done < <(find files -type f -print0 | sort -z)
# The controller's own: the test and CI scripts, this one included.
scripts+=(tests/*.sh .ci/run)

failed=()
check() {
  local name=$1
  shift
  echo "lint: $name" >&2
  "$@" || failed+=("$name")
}
check "ruff format" "$ruff" format --check .
check "ruff check" "$ruff" check .
check "shellcheck" shellcheck "${scripts[@]}"
if ((${#fragments[@]})); then
  check "shellcheck (sh fragments)" shellcheck --shell=sh "${fragments[@]}"
fi

if ((${#failed[@]})); then
  printf 'lint: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint: all checks passed" >&2
