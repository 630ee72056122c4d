// Every type of the wire chapter's encoding table, encoded by the generated
// TypeScript as Rust's bincode encodes it, and decoded back.
//
// Run by `cargo test` (tests/it/typescript_client.rs): GAMEWIRE_WIRE_TABLE
// is the compiled module generated from the test's `WireTable` protocol,
// GAMEWIRE_VECTORS a module of `{ name, message, hex }` that Rust wrote.
import { test } from "node:test";
import assert from "node:assert/strict";

const table = process.env.GAMEWIRE_WIRE_TABLE;
const vectors = process.env.GAMEWIRE_VECTORS;
const skip = table === undefined || vectors === undefined
  ? "run by `cargo test -p gamewire-tests --test it typescript`, which writes the vectors"
  : false;
const wire = skip ? null : await import(table);
const cases = skip ? [] : (await import(vectors)).vectors;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
const unhex = (text) => Uint8Array.from(text.split(" ").filter(Boolean), (b) => parseInt(b, 16));

test("there are vectors", { skip }, () => {
  assert.ok(cases.length > 40, `${cases.length} vectors`);
});

for (const { name, message, hex: expected } of cases) {
  test(`${name} encodes as Rust does`, () => {
    assert.equal(hex(wire.encodeWireTable(message)), expected);
  });
  test(`${name} decodes to the value`, () => {
    assert.deepEqual(wire.decodeWireTable(unhex(expected)), message);
  });
}
