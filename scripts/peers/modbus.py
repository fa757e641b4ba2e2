"""A Modbus TCP device for the agent's tests (pymodbus): a fridge controller's and an
energy meter's registers, served on 127.0.0.1 at the port given, as unit 1.

Input registers from 0: temperature -4.5 C in tenths (i16), door open (0).
Holding registers from 10: energy 1234.56 kWh in hundredths (u32, high word first),
then at 12 a power factor 0.875 (f32, high word first), then at 14 the same energy with
the low word first. It says who it is (Read Device Identification): maker "Carel",
product "IR33", revision "2.1". Prints "ready" once it listens.
"""

import asyncio
import struct
import sys

from pymodbus.datastore import (ModbusDeviceContext, ModbusSequentialDataBlock,
                                ModbusServerContext)
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import StartAsyncTcpServer


def words_u32(v, swap=False):
    hi, lo = (v >> 16) & 0xFFFF, v & 0xFFFF
    return [lo, hi] if swap else [hi, lo]


def words_f32(v):
    (bits,) = struct.unpack(">I", struct.pack(">f", v))
    return words_u32(bits)


async def main(port):
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
    server = StartAsyncTcpServer(
        context=context, identity=identity, address=("127.0.0.1", port)
    )
    task = asyncio.ensure_future(server)
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
