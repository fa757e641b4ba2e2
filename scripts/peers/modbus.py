"""A Modbus device for the agent's tests (pymodbus): a fridge controller's and an energy
meter's registers, as unit 1. `modbus.py PORT` serves Modbus TCP on 127.0.0.1:PORT;
`modbus.py rtu` serves Modbus RTU on one end of a serial line (two pseudo-terminals joined
as a null-modem cable would join two ports) and prints the other end's path, which the
agent opens as the gateway's serial port.

Input registers from 0: temperature -4.5 C in tenths (i16), door open (0).
Holding registers from 10: energy 1234.56 kWh in hundredths (u32, high word first),
then at 12 a power factor 0.875 (f32, high word first), then at 14 the same energy with
the low word first. It says who it is (Read Device Identification): maker "Carel",
product "IR33", revision "2.1". Prints "ready" (and for RTU the agent's end) once it
listens.
"""

import asyncio
import os
import struct
import sys
import tty

from pymodbus.datastore import (ModbusDeviceContext, ModbusSequentialDataBlock,
                                ModbusServerContext)
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus import FramerType
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer


def words_u32(v, swap=False):
    hi, lo = (v >> 16) & 0xFFFF, v & 0xFFFF
    return [lo, hi] if swap else [hi, lo]


def words_f32(v):
    (bits,) = struct.unpack(">I", struct.pack(">f", v))
    return words_u32(bits)


def null_modem():
    """Two pseudo-terminals whose masters are relayed to each other: what is written to
    one's end comes out of the other's, as over a cable. Their two ends' paths."""
    loop = asyncio.get_running_loop()
    ends = []
    masters = []
    for _ in range(2):
        master, slave = os.openpty()
        tty.setraw(slave)
        ends.append(os.ttyname(slave))
        masters.append(master)

    def relay(src, dst):
        try:
            os.write(dst, os.read(src, 4096))
        except OSError:
            pass

    loop.add_reader(masters[0], relay, masters[0], masters[1])
    loop.add_reader(masters[1], relay, masters[1], masters[0])
    return ends


async def main(where):
    # pymodbus addresses its blocks from 1: a block at 1 holds the wire's register 0.
    inputs = ModbusSequentialDataBlock(1, [(-45) & 0xFFFF, 0])
    holding = ModbusSequentialDataBlock(
        1, [0] * 10 + words_u32(123456) + words_f32(0.875) + words_u32(123456, swap=True)
    )
    device = ModbusDeviceContext(ir=inputs, hr=holding)
    context = ModbusServerContext(devices={1: device}, single=False)
    identity = ModbusDeviceIdentification(
        info_name={"VendorName": "Carel", "ProductCode": "IR33", "MajorMinorRevision": "2.1"}
    )
    if where == "rtu":
        device_end, agent_end = null_modem()
        server = StartAsyncSerialServer(
            context=context,
            identity=identity,
            framer=FramerType.RTU,
            port=device_end,
            baudrate=9600,
        )
        ready = f"ready {agent_end}"
    else:
        server = StartAsyncTcpServer(
            context=context, identity=identity, address=("127.0.0.1", int(where))
        )
        ready = "ready"
    task = asyncio.ensure_future(server)
    await asyncio.sleep(0.5)
    print(ready, flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
