// Starts fauxqs (SQS/SNS emulator) for the integration tests.
// The fauxqs CLI hard-codes logger:true, and startFauxqs() always listens on 0.0.0.0 (its `host`
// option only changes the host inside queue URLs, to "sqs.<region>.<host>", which does not
// resolve). This script keeps the log quiet and rewrites the wildcard listen address to
// FAUXQS_BIND (default 127.0.0.1), so the peer is reachable on loopback only. Queue URLs then
// carry the request's Host header (http://127.0.0.1:4566/000000000000/NAME).
// scripts/peers.sh copies this file next to node_modules so that the import resolves.
// Env: FAUXQS_PORT (default 4566), FAUXQS_BIND (default 127.0.0.1).
import net from "node:net";
import { startFauxqs } from "fauxqs";

const bind = process.env.FAUXQS_BIND ?? "127.0.0.1";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === "object" && (args[0].host === "0.0.0.0" || args[0].host === "::")) {
    args[0] = { ...args[0], host: bind };
  } else if (typeof args[0] === "number" && (args[1] === "0.0.0.0" || args[1] === "::")) {
    args[1] = bind;
  }
  return listen.apply(this, args);
};

const port = parseInt(process.env.FAUXQS_PORT ?? "4566", 10);
const server = await startFauxqs({ port, logger: false });
console.log(`fauxqs listening on http://${bind}:${server.port}`);

const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
