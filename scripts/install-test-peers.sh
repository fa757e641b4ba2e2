#!/usr/bin/env bash
# Installs the Python test peers of the agent's device protocols (pymodbus for Modbus TCP,
# with pyserial for Modbus RTU on a serial line; snmpsim with snmpsim-data, SNMP agents
# replaying recorded real devices) into a virtual environment of their own, from PyPI. Idempotent: creates the environment
# and installs only what is missing. The tests look for it at
# ${STOREFLEET_PEERS:-$HOME/.cache/storefleet/peers}.
set -euo pipefail
venv=${STOREFLEET_PEERS:-$HOME/.cache/storefleet/peers}
py=$venv/bin/python
if [ ! -x "$py" ]; then
    python3 -m venv "$venv"
fi
if ! "$py" -c 'import pymodbus, serial, sys; sys.exit(pymodbus.__version__ != "3.15.0" or serial.__version__ != "3.5")' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check 'pymodbus==3.15.0' 'pyserial==3.5'
fi
# cryptography: SNMPv3 privacy (AES) in pysnmp, under snmpsim.
if ! "$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("snmpsim") != "1.2.2" or m.version("snmpsim-data") != "1.0.1" or m.version("cryptography") != "50.0.2")' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check 'snmpsim==1.2.2' 'snmpsim-data==1.0.1' 'cryptography==50.0.2'
fi
"$py" -c 'import pymodbus, serial; print("pymodbus", pymodbus.__version__, "pyserial", serial.__version__)'
"$py" -c 'import importlib.metadata as m; print("snmpsim", m.version("snmpsim"), "pysnmp", m.version("pysnmp"))'
