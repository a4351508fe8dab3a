"""benchmarks/delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS - a TCP proxy on 127.0.0.1
that emulates a network round trip of DELAY_MS on loopback, for the request counts of the
remote reads (docs/performance.md 12): each new connection waits DELAY_MS before it
reaches the server (the TCP handshake), and each piece of bytes from the client to the
server waits DELAY_MS (a request's round trip). Answers pass at once, so a transfer costs
what it costs on loopback. Prints "ready" once it listens; stop it with a signal.

    python3 benchmarks/delay_proxy.py 8081 8080 5 &
    mpiexec -n 1 build-bench/benchmarks/http_read chunk http://127.0.0.1:8081/big.afmt 7
"""
import asyncio
import sys

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


async def pump(r, w, delay):
    try:
        while True:
            b = await r.read(1 << 16)
            if not b:
                break
            if delay:
                await asyncio.sleep(delay)
            w.write(b)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()


async def handle(cr, cw):
    await asyncio.sleep(DELAY)
    sr, sw = await asyncio.open_connection("127.0.0.1", TARGET)
    await asyncio.gather(pump(cr, sw, DELAY), pump(sr, cw, 0))


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    print("ready", flush=True)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
