#!/usr/bin/env bash
# Install (or remove) FretCoach Pedal as a service on Raspberry Pi OS. Idempotent: run it again
# after `git pull` to upgrade; secrets already in /etc/fretcoach/fretcoach.env are kept.
#
#   sudo systemd/install.sh                 install, enable and start
#   sudo systemd/install.sh --uninstall     stop and remove the service (keeps data and settings)
#   sudo systemd/install.sh --uninstall --purge   also remove data, settings and the user
#   systemd/install.sh --root DIR --no-venv install into a scratch root (tests, image builds)
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=""
UNINSTALL=0
PURGE=0
WITH_VENV=1
START=1
SERVICE_USER=fretcoach
GROUPS_WANTED=(audio gpio i2c spi)

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while (($#)); do
    case "$1" in
        --root) [[ $# -ge 2 ]] || die "--root needs a directory"; ROOT="$(realpath -m "$2")"; shift ;;
        --root=*) ROOT="$(realpath -m "${1#--root=}")" ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --no-venv) WITH_VENV=0 ;;
        --no-start) START=0 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (try --help)" ;;
    esac
    shift
done
((PURGE == 0 || UNINSTALL == 1)) || die "--purge only goes with --uninstall"

if [[ -n "$ROOT" ]]; then
    [[ -d "$ROOT" ]] || die "$ROOT is not a directory"
    START=0  # never touch the running system when installing into another root
    SYSTEMCTL=(systemctl --root="$ROOT")
    ACCOUNT_OPTS=(--prefix "$ROOT")
else
    [[ "$(id -u)" -eq 0 ]] || die "run as root (sudo $0)"
    SYSTEMCTL=(systemctl)
    ACCOUNT_OPTS=()
fi

ETC="$ROOT/etc/fretcoach"
STATE="$ROOT/var/lib/fretcoach"
OPT="$ROOT/opt/fretcoach"
UNIT_DIR="$ROOT/etc/systemd/system"
UNIT="fretcoach-pedal.service"
POLKIT="$ROOT/etc/polkit-1/rules.d/50-fretcoach-poweroff.rules"

have_group() { grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null; }
have_user() { grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null; }

if ((UNINSTALL)); then
    if ((START)) && "${SYSTEMCTL[@]}" is-active --quiet "$UNIT" 2>/dev/null; then
        "${SYSTEMCTL[@]}" stop "$UNIT"
    fi
    "${SYSTEMCTL[@]}" disable "$UNIT" >/dev/null 2>&1 || true
    rm -f "$UNIT_DIR/$UNIT" "$POLKIT"
    rm -rf "$OPT"
    ((START)) && systemctl daemon-reload
    if ((PURGE)); then
        rm -rf "$ETC" "$STATE"
        if have_user "$SERVICE_USER"; then userdel "${ACCOUNT_OPTS[@]}" "$SERVICE_USER"; fi
        say "removed the service, its data, settings and user"
    else
        say "removed the service; kept $STATE (sessions) and $ETC (settings); --purge removes them"
    fi
    exit 0
fi

# The service user, in the groups that own the sound card, GPIO, I2C and SPI devices (created
# here when the OS has not: the unit's SupplementaryGroups= fails on a missing group).
for g in "${GROUPS_WANTED[@]}"; do
    have_group "$g" || groupadd "${ACCOUNT_OPTS[@]}" --system "$g"
done
if ! have_user "$SERVICE_USER"; then
    useradd "${ACCOUNT_OPTS[@]}" --system --home-dir /var/lib/fretcoach --no-create-home \
        --shell /usr/sbin/nologin --user-group "$SERVICE_USER"
fi
usermod "${ACCOUNT_OPTS[@]}" --append --groups "$(IFS=,; echo "${GROUPS_WANTED[*]}")" "$SERVICE_USER"
uid="$(awk -F: -v u="$SERVICE_USER" '$1 == u { print $3 }' "$ROOT/etc/passwd")"
gid="$(awk -F: -v u="$SERVICE_USER" '$1 == u { print $4 }' "$ROOT/etc/passwd")"

install -d -m 0750 -o root -g "$gid" "$ETC"
install -d -m 0750 -o "$uid" -g "$gid" "$STATE"
env_file="$ETC/fretcoach.env"
if [[ -e "$env_file" ]]; then
    say "keeping $env_file"
else
    install -m 0600 -o "$uid" -g "$gid" "$SRC/systemd/fretcoach.env.template" "$env_file"
    say "wrote $env_file: set FRETCOACH_USER_ID, the database URL and an LLM key there"
fi
# Keep it private even if someone loosened it by hand.
chown "$uid:$gid" "$env_file"
chmod 0600 "$env_file"

if ((WITH_VENV)); then
    install -d -m 0755 "$OPT"
    [[ -x "$OPT/venv/bin/python" ]] || python3 -m venv "$OPT/venv"
    "$OPT/venv/bin/pip" install --quiet --upgrade pip
    "$OPT/venv/bin/pip" install --quiet "$SRC"
    say "installed the pedal into $OPT/venv"
fi

install -d -m 0755 "$UNIT_DIR" "$(dirname "$POLKIT")"
install -m 0644 "$SRC/systemd/$UNIT" "$UNIT_DIR/$UNIT"
install -m 0644 "$SRC/systemd/50-fretcoach-poweroff.rules" "$POLKIT"
"${SYSTEMCTL[@]}" enable "$UNIT" >/dev/null 2>&1 || "${SYSTEMCTL[@]}" enable "$UNIT"

# The OLED needs the I2C bus, at 400 kHz so a full frame takes ~23 ms.
for cfg in "$ROOT/boot/firmware/config.txt" "$ROOT/boot/config.txt"; do
    [[ -f "$cfg" ]] || continue
    if ! grep -q '^dtparam=i2c_arm=on' "$cfg"; then
        say "hint: I2C is off: run 'sudo raspi-config nonint do_i2c 0' (or add dtparam=i2c_arm=on to $cfg)"
    fi
    if ! grep -q '^dtparam=i2c_arm_baudrate=400000' "$cfg"; then
        say "hint: add dtparam=i2c_arm_baudrate=400000 to $cfg for a smooth display, then reboot"
    fi
    break
done

if ((START)); then
    systemctl daemon-reload
    systemctl restart "$UNIT"
    say "started $UNIT (journalctl -u $UNIT -f to watch it)"
else
    say "installed $UNIT (not started)"
fi
