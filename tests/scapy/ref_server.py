"""The Linux reference: kernel TCP listeners that behave like xdptcp's built-in apps, for the scapy scripts to
compare against. Runs in the server namespace; prints "ready" once every listener is bound.

  --echo PORT   echo everything; close after the peer's FIN (like --app echo)
  --close PORT  close right after accept (like --app close)
  --http PORT   one static 200 response per request; keep-alive for HTTP/1.1, close after the response for
                `Connection: close` and HTTP/1.0 (like --app http); close after the peer's FIN

Each connection gets a thread; a reset connection just ends its thread. Stops when killed.
"""

import argparse
import socket
import sys
import threading

BODY = b"Hello from xdptcp\n"


def response(close):
    head = b"HTTP/1.1 200 OK\r\nServer: linux-reference\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(BODY)
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + BODY


def echo(c):
    while True:
        data = c.recv(65536)
        if not data:
            return
        c.sendall(data)


def http(c):
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            return
        buf += data
        while b"\r\n\r\n" in buf:
            req, buf = buf.split(b"\r\n\r\n", 1)
            lines = req.split(b"\r\n")
            first = lines[0]
            headers = b"\n".join(lines[1:]).lower()
            close = b"connection: close" in headers or (first.endswith(b"HTTP/1.0") and b"keep-alive" not in headers)
            c.sendall(response(close))
            if close:
                return


def serve(sock, handler):
    while True:
        c, _ = sock.accept()
        threading.Thread(target=run, args=(c, handler), daemon=True).start()


def run(c, handler):
    try:
        if handler is not None:
            handler(c)
    except OSError:
        pass  # reset by the peer: nothing to do
    finally:
        c.close()


def listener(family, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.listen(1024)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--echo", type=int)
    ap.add_argument("--close", type=int)
    ap.add_argument("--http", type=int)
    a = ap.parse_args()
    for port, handler in ((a.echo, echo), (a.close, None), (a.http, http)):
        if port is None:
            continue
        for family in (socket.AF_INET, socket.AF_INET6):
            threading.Thread(target=serve, args=(listener(family, port), handler), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
