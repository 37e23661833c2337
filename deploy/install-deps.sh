#!/usr/bin/env bash
# Installs what kvpaxos builds with, from Debian's packages. Idempotent: does
# nothing when every package is already installed.
set -euo pipefail

# python3-zmq: test/e2e/keys.sh checks that key files interoperate with pyzmq's zmq.auth;
# with python3-msgpack, the Python client (client/python) and its test need it.
# systemd: systemd-analyze, with which test/deploy/systemd_unit.sh checks
# deploy/systemd/kvpaxosd.service; python3-yaml and python3-kubernetes: the
# Kubernetes object models deploy/k8s/check_manifests.py checks the manifests by.
packages=(build-essential cmake pkg-config libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
          libcli11-dev libgtest-dev python3 python3-zmq python3-msgpack iproute2 procps
          systemd python3-yaml python3-kubernetes)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
