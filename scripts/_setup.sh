# Sourced by scripts/demo and scripts/test: system packages, then the project's virtualenv.
# Idempotent and quiet when everything is already in place.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FRETCOACH_VENV:-$ROOT/.venv}"

need_apt=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    if ! command -v apt-get >/dev/null; then
        echo "fretcoach: please install these system packages: ${need_apt[*]}" >&2
        exit 1
    fi
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "fretcoach: installing system packages: ${need_apt[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp="$VENV/.fretcoach-installed"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# Reinstall only when the project's requirements changed.
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "fretcoach: installing Python packages into $VENV (first run takes a few minutes)" >&2
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT[${FRETCOACH_EXTRAS:-dev}]"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
