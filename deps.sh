# deps.sh: sourced by quickstart.sh and check.sh.  Installs the Debian 12
# packages trainsim needs, only those missing, so it is cheap to repeat.
ts_packages="build-essential cmake pkg-config libsimgrid-dev libgsl-dev libcjson-dev libcunit1-dev libexpat1-dev"
# The test command also needs chromium: test_report renders report.html in
# headless Chromium (README "Dependencies"); and clang with its runtime
# libraries (libclang-rt-14-dev holds libFuzzer, libclang_rt.fuzzer-x86_64.a,
# and the sanitizer runtimes) for the fuzz targets (README "Fuzzing").
ts_test_packages="chromium clang libclang-rt-14-dev"
ts_install_deps() {
  local missing=() pkgs="$ts_packages"
  [ "${1:-}" = test ] && pkgs="$pkgs $ts_test_packages"
  for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
