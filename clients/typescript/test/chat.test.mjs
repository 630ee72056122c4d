// The generated chat client against a live gamewire server.
//
// Run by `cargo test` (tests/it/typescript_client.rs), which starts the
// server and compiles the client: GAMEWIRE_WS_URL is the server's
// WebSocket endpoint, GAMEWIRE_CLIENT the compiled module. The server's
// message burst is GAMEWIRE_MESSAGE_BURST.
import { test } from "node:test";
import assert from "node:assert/strict";

const url = process.env.GAMEWIRE_WS_URL;
const client = process.env.GAMEWIRE_CLIENT;
const skip = url === undefined || client === undefined
  ? "run by `cargo test -p gamewire-tests --test it typescript`, which starts a server"
  : false;
const chat = skip ? null : await import(client);

/** The next message of `type`, skipping others (notices of other tests). */
async function next(connection, type) {
  for (;;) {
    const message = await connection.receive();
    if (message.type === type) return message;
  }
}

test("the handshake gives a welcome", { skip }, async () => {
  const alice = await chat.connect(url);
  assert.ok(alice.userId > 0);
  assert.equal(alice.welcome.maxFrameLen, 65536);
  assert.equal(alice.welcome.heartbeatIntervalMs, 10_000);
  alice.close();
  const closed = await alice.closed;
  assert.ok(closed instanceof chat.ConnectionClosed);
});

test("two clients join a room, talk and list it", { skip }, async () => {
  const alice = await chat.connect(url);
  const bob = await chat.connect(url);
  alice.send({ type: "JoinRoom", room_id: 41 });
  const joined = await next(alice, "RoomJoined");
  assert.deepEqual(joined, { type: "RoomJoined", room_id: 41, users: [alice.userId] });

  bob.send({ type: "JoinRoom", room_id: 41 });
  assert.deepEqual((await next(bob, "RoomJoined")).users, [alice.userId, bob.userId]);
  assert.deepEqual(await next(alice, "UserJoined"), {
    type: "UserJoined",
    room_id: 41,
    user_id: bob.userId,
  });

  bob.send({ type: "SendChat", room_id: 41, text: "héllo ✓" });
  for (const member of [alice, bob]) {
    const line = await next(member, "ChatBroadcast");
    assert.equal(line.sender, bob.userId);
    assert.equal(line.text, "héllo ✓");
    assert.equal(typeof line.timestamp_ms, "bigint");
  }

  alice.send({ type: "ListRooms" });
  const list = await next(alice, "RoomList");
  assert.deepEqual(
    list.rooms.find((room) => room.room_id === 41),
    { room_id: 41, user_count: 2 },
  );

  bob.close();
  assert.deepEqual(await next(alice, "UserLeft"), { type: "UserLeft", room_id: 41, user_id: bob.userId });
  alice.close();
});

test("an error frame is a typed ServerError and the connection stays open", { skip }, async () => {
  const alice = await chat.connect(url);
  alice.send({ type: "LeaveRoom", room_id: 977 });
  await assert.rejects(alice.receive(), (error) => {
    assert.ok(error instanceof chat.ServerError);
    assert.equal(error.code, chat.ErrorCode.HandlerFailed);
    assert.equal(error.codeName, "HandlerFailed");
    assert.match(error.detail, /not in room 977/);
    return true;
  });
  alice.send({ type: "JoinRoom", room_id: 977 });
  assert.equal((await next(alice, "RoomJoined")).room_id, 977);
  alice.close();
});

test("a refused hello is a typed ConnectionClosed", { skip }, async () => {
  const stranger = { ...chat.codec, fingerprint: 1n };
  await assert.rejects(chat.GamewireClient.connect(url, stranger), (error) => {
    assert.ok(error instanceof chat.ConnectionClosed);
    assert.equal(error.code, chat.CloseCode.ProtocolMismatch);
    assert.equal(error.codeName, "ProtocolMismatch");
    assert.match(error.reason, /fingerprint/);
    return true;
  });
});

test("a client over its rate gets RateLimited errors, then a RateLimited close", { skip }, async () => {
  const burst = Number(process.env.GAMEWIRE_MESSAGE_BURST ?? "4096");
  const flooder = await chat.connect(url);
  const errors = [];
  flooder.onerror = (error) => errors.push(error);
  flooder.onmessage = () => {};
  for (let i = 0; i < burst + 64; i++) {
    try {
      flooder.send({ type: "ListRooms" });
    } catch (error) {
      assert.ok(error instanceof chat.ConnectionClosed);
      break;
    }
  }
  const closed = await flooder.closed;
  assert.equal(closed.code, chat.CloseCode.RateLimited);
  assert.equal(closed.codeName, "RateLimited");
  assert.ok(errors.length >= 16, `${errors.length} error frames`);
  assert.ok(errors.every((error) => error.code === chat.ErrorCode.RateLimited));
  await assert.rejects(flooder.receive(), chat.ConnectionClosed);
  assert.throws(() => flooder.send({ type: "ListRooms" }), chat.ConnectionClosed);
});

test("the encoder refuses values its type cannot hold", { skip }, () => {
  assert.throws(() => chat.encodeChatMessage({ type: "JoinRoom", room_id: -1 }), RangeError);
  assert.throws(() => chat.encodeChatMessage({ type: "JoinRoom", room_id: 2 ** 32 }), RangeError);
  assert.throws(() => chat.encodeChatMessage({ type: "JoinRoom", room_id: 1.5 }), RangeError);
  assert.throws(() => chat.encodeChatMessage({ type: "Nope" }), RangeError);
  assert.throws(() => chat.decodeChatMessage(Uint8Array.of(10)), chat.DecodeError);
  assert.throws(() => chat.decodeChatMessage(Uint8Array.of(0, 1, 0)), chat.DecodeError);
  assert.throws(() => chat.decodeChatMessage(Uint8Array.of(2, 1, 9, 0x68)), chat.DecodeError);
});
