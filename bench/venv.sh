# Sourced by the bench/*.sh launchers: `bench_venv IMPORTS PACKAGE...` makes sure the bench venv
# (`$HARKEN_BENCH_VENV`, default ~/.cache/harken-bench-venv) exists and can run the Python
# statement IMPORTS, installing PACKAGEs when it cannot; then sets `venv` to its directory.
bench_venv() {
    local imports="$1"
    shift
    venv="${HARKEN_BENCH_VENV:-$HOME/.cache/harken-bench-venv}"
    if [[ ! -x "$venv/bin/python" ]]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    if ! "$venv/bin/python" -c "$imports" 2>/dev/null; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    fi
}
