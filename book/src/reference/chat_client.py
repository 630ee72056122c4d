"""A gamewire chat client written from the wire-protocol chapter alone.

Usage: python3 chat_client.py [HOST:PORT] [ROOM] [TEXT]
Joins ROOM, says TEXT, prints what the server sends until the line comes back.
"""
import socket
import struct
import sys

CHAT_FINGERPRINT = 0x0CB3A068034BD912


def varint(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfb" + struct.pack("<H", n)
    if n < 1 << 32:
        return b"\xfc" + struct.pack("<I", n)
    return b"\xfd" + struct.pack("<Q", n)


def string(s):
    data = s.encode("utf-8")
    return varint(len(data)) + data


class Reader:
    def __init__(self, payload):
        self.data, self.pos = payload, 0

    def byte(self):
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self):
        first = self.byte()
        size = {0xFB: 2, 0xFC: 4, 0xFD: 8}.get(first)
        if size is None:
            return first
        value = int.from_bytes(self.data[self.pos:self.pos + size], "little")
        self.pos += size
        return value

    def string(self):
        n = self.varint()
        self.pos += n
        return self.data[self.pos - n:self.pos].decode("utf-8")


def send(sock, payload):
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def recv(sock):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return buf
    (length,) = struct.unpack(">I", exactly(4))
    return Reader(exactly(length))


def main():
    host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7878").rsplit(":", 1)
    room = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    text = sys.argv[3] if len(sys.argv) > 3 else "hello from Python"
    sock = socket.create_connection((host, int(port)))
    # Frame::Hello: version 1, protocol name, fingerprint, empty token.
    send(sock, b"\x00" + varint(1) + string("ChatMessage") + varint(CHAT_FINGERPRINT) + string(""))
    reply = recv(sock)
    if reply.byte() != 1:
        sys.exit("refused: " + str(reply.data))
    me = reply.varint()
    print("welcome, user", me)
    send(sock, b"\x06" + varint(0) + varint(room))                  # JoinRoom
    send(sock, b"\x06" + varint(2) + varint(room) + string(text))   # SendChat
    while True:
        frame = recv(sock)
        kind = frame.byte()
        if kind == 2:                                               # Ping -> Pong
            send(sock, b"\x03" + varint(frame.varint()))
        elif kind == 4:                                             # Error
            print("error", frame.varint(), frame.string())
        elif kind == 5:                                             # Close
            sys.exit(f"closed: {frame.varint()} {frame.string()}")
        elif kind == 6:                                             # App
            variant = frame.varint()
            if variant == 4:                                        # RoomJoined
                room_id, count = frame.varint(), frame.varint()
                print("joined room", room_id, "with", [frame.varint() for _ in range(count)])
            elif variant == 8:                                      # ChatBroadcast
                room_id, sender, line = frame.varint(), frame.varint(), frame.string()
                print(f"[room {room_id}] user {sender}: {line}")
                if sender == me:
                    return

if __name__ == "__main__":
    main()
