// Starts fauxqs (the SQS emulator) for Autogate's tests and run.sh.
//
// fauxqs's own cli.js always enables request logging and ignores
// FAUXQS_LOGGER, so this wrapper starts it quietly. FAUXQS_PORT picks the
// port; 0 (the default) lets the kernel choose a free one. Once the server
// accepts connections it prints exactly one line, "fauxqs listening on port
// N", which internal/emulator and run.sh read to learn the port.
import { startFauxqs } from "fauxqs";

const port = Number.parseInt(process.env.FAUXQS_PORT ?? "0", 10);
const server = await startFauxqs({ port, host: "127.0.0.1", logger: false });
console.log(`fauxqs listening on port ${server.port}`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
