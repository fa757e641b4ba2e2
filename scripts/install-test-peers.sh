#!/usr/bin/env bash
# Installs the Python test peers of the agent's device protocols (pymodbus for Modbus TCP)
# into a virtual environment of their own, from PyPI. Idempotent: creates the environment
# and installs only what is missing. The tests look for it at
# ${STOREFLEET_PEERS:-$HOME/.cache/storefleet/peers}.
set -euo pipefail
venv=${STOREFLEET_PEERS:-$HOME/.cache/storefleet/peers}
py=$venv/bin/python
if [ ! -x "$py" ]; then
    python3 -m venv "$venv"
fi
if ! "$py" -c 'import pymodbus, sys; sys.exit(pymodbus.__version__ != "3.15.0")' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check 'pymodbus==3.15.0'
fi
"$py" -c 'import pymodbus; print("pymodbus", pymodbus.__version__)'
