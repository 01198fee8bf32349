#!/usr/bin/env bash
# Set up this checkout on a fresh machine: a virtual environment in .venv with the package installed.
#   scripts/bootstrap.sh          runtime only (enough for `hpc-classify demo`)
#   scripts/bootstrap.sh --test   also the test tools, UCXX, and the system packages the tests drive
#                                 for real: Slurm (slurm-wlm), munge, Lmod and headless Chromium for the
#                                 report page's browser test (apt, needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi

# Runs an apt command, waiting while another apt or dpkg holds apt's locks (a fresh VM's unattended-upgrades,
# a second bootstrap): apt-get update fails at once on a held lists lock, DPkg::Lock::Timeout does not cover it.
# Any other failure is returned at once with apt's own message.
apt_when_free() {
  local waited=0 errors
  errors=$(mktemp)
  until "$@" >/dev/null 2>"$errors"; do
    if ! grep -q 'Could not get lock' "$errors" || (( waited >= 900 )); then
      cat "$errors" >&2; rm -f "$errors"
      (( waited >= 900 )) && echo "bootstrap: apt still locked after ${waited} s by another apt/dpkg: wait for it, then rerun" >&2
      return 1
    fi
    (( waited % 60 == 0 )) && echo "bootstrap: another apt/dpkg holds apt's lock; waiting (${waited} s so far)"
    sleep 5; waited=$((waited + 5))
  done
  rm -f "$errors"
}

if (( with_tests )); then
  missing=()
  for binary in slurmctld slurmd munged; do command -v "$binary" >/dev/null || missing+=("$binary"); done
  [[ -e /usr/share/lmod/lmod/init/bash ]] || missing+=(lmod)
  command -v chromium >/dev/null || missing+=(chromium)
  if (( ${#missing[@]} )); then
    echo "bootstrap: installing slurm-wlm, munge, lmod and chromium (missing: ${missing[*]})"
    sudo_cmd=(); (( EUID == 0 )) || sudo_cmd=(sudo)
    # env after sudo (sudo resets the environment); LC_ALL=C: apt's lock message in the words apt_when_free reads.
    apt_when_free "${sudo_cmd[@]}" env LC_ALL=C apt-get update -qq
    apt_when_free "${sudo_cmd[@]}" env LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge lmod chromium
  fi
fi

extras=""
(( with_tests )) && extras="[test]"
# torch==2.13.0 first (the CPU wheel on this machine's disk), then the package under the same pins as env/install.sh.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -c env/requirements.txt -e ".${extras}"
# The CPU attention kernel, compiled once here (a minute) instead of in the first engine of a job or test.
.venv/bin/python -m hpc_classify.cli.build_kernels || echo "bootstrap: engines will use the bias attention"
echo "bootstrap: ready ($(.venv/bin/hpc-classify --version))"
