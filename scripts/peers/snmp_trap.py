"""Sends one SNMP notification (trap) with pysnmp, as a store device would.

Usage: snmp_trap.py HOST PORT TRAP_OID [--community C | --v3 USER AUTH_KEY PRIV_KEY]
       [--var OID=TEXT ...]

v3 is authPriv with SHA and AES-128, from this process's own engine (the sender is the
authoritative engine of a trap). Prints "sent" when done.
"""

import argparse
import asyncio

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    NotificationType,
    ObjectIdentity,
    ObjectType,
    OctetString,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    send_notification,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("trap_oid")
    p.add_argument("--community")
    p.add_argument("--v3", nargs=3, metavar=("USER", "AUTH_KEY", "PRIV_KEY"))
    p.add_argument("--var", action="append", default=[])
    a = p.parse_args()
    if a.v3:
        user, auth, priv = a.v3
        auth_data = UsmUserData(
            user,
            auth,
            priv,
            authProtocol=usmHMACSHAAuthProtocol,
            privProtocol=usmAesCfb128Protocol,
        )
    else:
        auth_data = CommunityData(a.community or "public", mpModel=1)
    notification = NotificationType(ObjectIdentity(a.trap_oid))
    var_binds = []
    for v in a.var:
        oid, text = v.split("=", 1)
        var_binds.append(ObjectType(ObjectIdentity(oid), OctetString(text)))
    if var_binds:
        notification = notification.add_varbinds(*var_binds)
    error, *_ = await send_notification(
        SnmpEngine(),
        auth_data,
        await UdpTransportTarget.create((a.host, a.port)),
        ContextData(),
        "trap",
        notification,
    )
    if error:
        raise SystemExit(f"not sent: {error}")
    print("sent", flush=True)


asyncio.run(main())
