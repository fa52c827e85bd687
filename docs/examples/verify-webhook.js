// Verify a coderun webhook: node verify-webhook.js SECRET SIGNATURE_HEADER BODY_FILE
//
// Exits 0 when the signature is valid and recent, 1 otherwise. The function is what a receiver
// needs; give it the raw body bytes exactly as received, before any JSON parsing.
const crypto = require("crypto");
const fs = require("fs");

function verify(secret, header, body, toleranceSeconds = 300) {
  const fields = Object.fromEntries(
    header.split(",").map((part) => part.split("=", 2)).filter((pair) => pair.length === 2)
  );
  const timestamp = Number(fields.t);
  if (!Number.isInteger(timestamp) || Math.abs(Date.now() / 1000 - timestamp) > toleranceSeconds) {
    return false; // missing, or too old or too new: a replay
  }
  const expected = crypto
    .createHmac("sha256", secret)
    .update(`${fields.t}.`)
    .update(body)
    .digest();
  const given = Buffer.from(fields.v1 || "", "hex");
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

const [secret, header, path] = process.argv.slice(2);
process.exit(verify(secret, header, fs.readFileSync(path)) ? 0 : 1);
