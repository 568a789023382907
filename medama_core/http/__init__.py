"""HTTP/1.1 on asyncio: sans-IO protocol, router and the socket server."""
