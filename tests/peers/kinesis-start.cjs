// Starts kinesis-local (kinesis-mock) for the integration tests, listening on loopback only.
// kinesis-local has no host option and listens on all interfaces; this wrapper rewrites the
// wildcard listen address to KINESIS_BIND (default 127.0.0.1) and then loads the main.js given
// as the first argument. All other settings come from kinesis-mock's own env variables.
"use strict";
const net = require("node:net");
const path = require("node:path");

const bind = process.env.KINESIS_BIND || "127.0.0.1";
const wildcard = (h) => h === undefined || h === null || h === "" || h === "0.0.0.0" || h === "::";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === "object" && !("fd" in args[0]) && !("path" in args[0]) && wildcard(args[0].host)) {
    args[0] = { ...args[0], host: bind };
  } else if (typeof args[0] === "number" && (typeof args[1] !== "string" || wildcard(args[1]))) {
    if (typeof args[1] === "string") args[1] = bind;
    else args.splice(1, 0, bind);
  }
  return listen.apply(this, args);
};

const main = process.argv[2];
if (!main) {
  console.error("usage: node kinesis-start.cjs /path/to/kinesis-local/main.js");
  process.exit(2);
}
process.argv.splice(2, 1); // main.js sees the argv it would see when run directly
require(path.resolve(main));
